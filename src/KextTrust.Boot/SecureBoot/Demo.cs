using System.Collections.Immutable;
using System.Diagnostics;
using KextTrust.Boot.KernelManagement;
using KextTrust.Boot.Policy;
using KextTrust.Boot.Receipt;
using KextTrust.Consent;
using KextTrust.Consent.Policy;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;
using KextTrust.Kexts.Signing;
using KextTrust.Machine;

using KextTrust.Kexts.Trust;

namespace KextTrust.Boot.SecureBoot;

/// <summary>One step of the demo: what was expected, what happened, and the evidence.</summary>
/// <param name="Code">The refusal's stable code in kebab-case (<c>aux-kc-rollback</c>), as every JSON document writes codes; null when none.</param>
public sealed record DemoStep(string Title, string Expected, string Outcome, bool AsExpected, ImmutableArray<string> Evidence, string? Code = null);

/// <summary>The whole demo run.</summary>
public sealed record DemoReport(ImmutableArray<DemoStep> Steps, double ElapsedSeconds, string MachineDirectory)
{
    /// <summary>True when every step had its expected outcome.</summary>
    public bool Succeeded => Steps.Length > 0 && Steps.All(s => s.AsExpected);
}

/// <summary>
/// <c>kextrust demo</c>: in a fresh simulated Apple-silicon Mac, with a private test PKI and kexts it writes, plays Apple's guide's
/// story (install, blocked, One True Recovery + Reduced Security + kexts, approve, kmd rebuild, restart, loaded, Apple Pay)
/// and three attacks (AuxKC rollback, UAKL edited on disk, lowering security from macOS), each refused.
/// </summary>
public static class Demo
{
    /// <summary>The demo team id.</summary>
    public const string TeamId = "DEMOTEAM42";
    /// <summary>The admin account.</summary>
    public const string Admin = "admin";
    /// <summary>The admin password.</summary>
    public const string Password = "correct horse battery staple";

    /// <summary>Bundle ids of the demo kexts.</summary>
    public const string Signed = "com.example.driver", Unsigned = "com.example.unsigned", Kauth = "com.example.kauthwatch",
        Banned = "com.example.banned", IntelOnly = "com.example.intelonly";

    /// <summary>Runs the demo in <paramref name="workDir"/> (created if needed), narrating to <paramref name="log"/>.</summary>
    public static DemoReport Run(string workDir, TextWriter? log = null)
    {
        ArgumentNullException.ThrowIfNull(workDir);
        var sw = Stopwatch.StartNew();
        var steps = new List<DemoStep>();
        void Step(string title, string expected, bool ok, string outcome, IEnumerable<string> evidence, string? code = null)
        {
            var s = new DemoStep(title, expected, outcome, ok, [.. evidence], code is null ? null : System.Text.Json.JsonNamingPolicy.KebabCaseLower.ConvertName(code));
            steps.Add(s);
            if (log is not null)
            {
                log.WriteLine($"[{steps.Count,2}] {title}");
                log.WriteLine($"     expected: {expected}");
                log.WriteLine($"     {(ok ? "ok" : "UNEXPECTED")}: {outcome}");
                foreach (var e in s.Evidence)
                {
                    log.WriteLine($"       - {e}");
                }
            }
        }

        Directory.CreateDirectory(workDir);
        var macDir = Path.Combine(workDir, "mac");
        var kextDir = Path.Combine(workDir, "kexts");
        Directory.CreateDirectory(kextDir);
        using var pki = TestPki.Create(new TestPki.Options("KextTrust Demo Developer", TeamId));
        using var mac = Mac.Init(macDir, new MachineInitOptions(MacPlatform.AppleSilicon, "14.5", Admin, Password)
        {
            TrustRootPem = pki.Root.ExportCertificatePem(),
            PasswordIterations = 10_000,
        });
        var initial = mac.ReadLocalPolicy();
        Step("A new Mac with Apple silicon (macOS 14.5) and its Secure Enclave", "Full Security LocalPolicy signed by the SEP",
            initial.SecurityMode == SecurityMode.Full && !initial.ThirdPartyKextsEnabled, $"LocalPolicy: {initial.SecurityMode} Security, smb2 = {initial.ThirdPartyKextsEnabled}",
            [$"ECID 0x{mac.Description.Ecid:x16}", $"LocalPolicy: {SecureBootLayout.LocalPolicy}", $"lpnh {initial.LocalPolicyNonceHash}"]);

        // ---- kexts
        var kpis = new Dictionary<string, string> { ["com.apple.kpi.iokit"] = "20.0", ["com.apple.kpi.libkern"] = "20.0" };
        var bsd = new Dictionary<string, string> { ["com.apple.kpi.bsd"] = "20.0", ["com.apple.kpi.libkern"] = "20.0" };
        KextSliceSpec Arm(params string[] s) => new(MachOTargetArchitecture.Arm64e, s);
        KextSliceSpec X86(params string[] s) => new(MachOTargetArchitecture.X86_64, s);
        string Write(string id, IReadOnlyDictionary<string, string> libs, KextSliceSpec[] slices) =>
            KextBundleWriter.Write(kextDir, new KextBundleSpec(id, "1.0.0") { Libraries = libs, Slices = slices });
        var paths = new[]
        {
            Write(Signed, kpis, [Arm("_IOLog"), X86("_IOLog")]),
            Write(Unsigned, kpis, [Arm("_IOLog"), X86("_IOLog")]),
            Write(Kauth, bsd, [Arm("_kauth_listen_scope"), X86("_kauth_listen_scope")]),
            Write(Banned, kpis, [Arm("_IOLog"), X86("_IOLog")]),
            Write(IntelOnly, kpis, [X86("_IOLog")]),
        };
        using (var identity = KextSigningIdentity.Create(pki.Leaf, [pki.Intermediate, pki.Root]))
        {
            foreach (var p in paths.Where((_, i) => i != 1))
            {
                KextSigner.Sign(p, new KextSigningOptions { Identity = identity });
            }
        }

        // ---- 1. install → blocked
        var installed = mac.Install(paths);
        var signedInstall = installed.First(r => r.BundleId == Signed);
        var blocked = mac.Why(Signed);
        Step("Install five kexts (signed with kext authority; unsigned; KAUTH; banned; x86_64-only)",
            "the signed kext is staged and blocked: the \"System Extension Blocked\" alert is shown",
            signedInstall.AlertShown && !blocked.Allowed, $"{Signed}: {(blocked.Allowed ? "allowed" : "blocked")} ({blocked.Code?.Name()}): {blocked.Reason}",
            installed.Select(r => $"{r.BundleId}: signature {r.Signature.Kind}{(r.AlertShown ? ", alert shown" : "")}{(r.Staged ? ", staged" : "")}"));

        // ---- 2. 1TR + Reduced + kexts
        var r1 = mac.Startup(recovery: true);
        var reduced = mac.Bputil(new BputilRequest(SecurityMode.Reduced, EnableKexts: true, EnableMdm: false, Admin, Password));
        Step("Hold the power button: One True Recovery; Startup Security Utility → Reduced Security + allow kexts (bputil -g -k), admin password",
            "a new SEP-signed LocalPolicy with smb0 and smb2",
            r1.RunningOS == nameof(RunningOS.OneTrueRecovery) && reduced.ReducedSecurity && reduced.ThirdPartyKextsEnabled,
            $"running {r1.RunningOS}; LocalPolicy: {reduced.SecurityMode} Security, smb2 = {reduced.ThirdPartyKextsEnabled}",
            [$"new lpnh {reduced.LocalPolicyNonceHash} (the old policy no longer verifies)"]);

        // ---- 3. approve
        mac.Startup(recovery: false);
        var approval = mac.Approve(TeamId, null, Admin, Password);
        var allowed = mac.Why(Signed);
        Step("Back in macOS: System Settings → Privacy & Security → Allow (admin password)", "the team is approved in KextPolicy",
            allowed.Allowed, $"{Signed}: {(allowed.Allowed ? "allowed" : $"blocked ({allowed.Code?.Name()})")}",
            [$"approved team {approval.TeamId} by {approval.User}: {string.Join(", ", approval.BundleIds)}"]);

        // ---- 4. kmd rebuild
        var first = mac.KmutilCreate(Admin, Password);
        var d = first.Build.Decisions;
        TrustCode? Ex(string id) => d.FirstOrDefault(x => x.BundleId == id)?.Exclusion;
        var rebuildOk = first.Build.IncludedBundleIds.SequenceEqual([Signed]) && Ex(Banned) == TrustCode.ExcludeListed
            && Ex(Kauth) == TrustCode.UnsupportedKpi && Ex(IntelOnly) == TrustCode.MissingArchitecture
            && first.Policy?.AuxKcImage4Hash is not null && first.Policy.AuxKextPolicyHash == first.UaklHash;
        Step("kmd rebuilds the AuxKC (kmutil create): only UAKL kexts, signatures checked (SIP on); SEP signs the AuxKC Image4; new LocalPolicy",
            $"only {Signed} included; banned, KAUTH and x86_64-only dropped with reasons; receipt written; auxp/auxi/auxr set",
            rebuildOk, $"included: {string.Join(", ", first.Build.IncludedBundleIds)}",
            [.. d.Select(x => x.Included ? $"{x.BundleId}: included (cdhash {x.CdHash})" : $"{x.BundleId}: dropped ({x.Exclusion?.Name()}{(x.KMErrorCode is { } k ? $", KMErrorDomain {k}" : "")}): {x.ExclusionDetail}"),
             $"auxp {first.Policy?.AuxKextPolicyHash}", $"auxi {first.Policy?.AuxKcImage4Hash}", $"auxr {first.Policy?.AuxKcReceiptHash}"]);

        // ---- 5. restart → loaded
        var boot = mac.Startup(recovery: false);
        Step("Restart: iBoot verifies LocalPolicy, AuxKC Image4 (auxi) and receipt (auxr); the kernel loads the AuxKC",
            $"{Signed} loaded and recorded in kext_load_history_v3",
            boot.Refusal is null && boot.Loaded.Any(k => k.BundleId == Signed) && HistoryHas(mac, Signed),
            boot.Refusal is { } rf ? $"refused: {rf.Code?.Name()}: {rf.Detail}" : $"loaded: {string.Join(", ", boot.Loaded.Select(k => $"{k.BundleId} (tag {k.LoadTag})"))}",
            boot.Trace.Select(c => c.ToString()));

        // ---- 6. Apple Pay
        var pay = ApplePay.Status(mac.ReadReceipt());
        Step("Apple Pay reads the kext receipt", $"Apple Pay disabled: {Signed} could interfere",
            !pay.Available && pay.InterferingKexts.Any(k => k.BundleId == Signed), pay.Describe(), []);

        // ---- attack a: rollback
        var plat = MacPlatform.AppleSilicon;
        string[] auxFiles = [SecureBootLayout.AuxKc(plat), SecureBootLayout.AuxKcImage4(plat), SecureBootLayout.Receipt(plat)];
        var saved = auxFiles.ToDictionary(f => f, f => File.ReadAllBytes(mac.Store.PathOf(f)));
        var second = mac.KmutilCreate(Admin, Password);
        var current = auxFiles.ToDictionary(f => f, f => File.ReadAllBytes(mac.Store.PathOf(f)));
        foreach (var (f, bytes) in saved)
        {
            File.WriteAllBytes(mac.Store.PathOf(f), bytes);
        }
        var rollback = mac.Startup(recovery: false);
        Step("Attack (a): roll back to the older SEP-signed AuxKC (first build's AuxKC + Image4) under the newer LocalPolicy",
            "iBoot refuses (auxi mismatch: AuxKcRollback) and boots without third-party kexts",
            rollback.Refusal?.Code == TrustCode.AuxKcRollback && rollback.Loaded.IsEmpty,
            rollback.Refusal is { } ra ? $"refused: {ra.Code?.Name()}: {ra.Detail}" : "NOT refused",
            [$"LocalPolicy auxi {second.Policy?.AuxKcImage4Hash}", "loaded third-party kexts: " + rollback.Loaded.Length], rollback.Refusal?.Code?.ToString());
        foreach (var (f, bytes) in current)
        {
            File.WriteAllBytes(mac.Store.PathOf(f), bytes);
        }

        // ---- attack b: UAKL edited on disk
        // As sqlite3 would, straight into the file: no transaction of the Mac, no kmd rebuild.
        using (var db = KextPolicyDatabase.OpenReadWrite(mac.Store.PathOf(MachineLayout.KextPolicy)))
        {
            new KextPolicyDatabase.Writer(db, null).Allow("EVILTEAM01", "", "Attacker", KextPolicyFlags.UserApproved);
        }
        var edited = mac.Startup(recovery: false);
        Step("Attack (b): add a team row to the KextPolicy database by hand (no authorized kmd rebuild)",
            "the boot detects the auxp mismatch and loads no third-party kexts",
            edited.Refusal?.Code == TrustCode.UaklModified && edited.Loaded.IsEmpty,
            edited.Refusal is { } rb ? $"refused: {rb.Code?.Name()}: {rb.Detail}" : "NOT refused", [], edited.Refusal?.Code?.ToString());

        // ---- attack c: lower security from macOS
        string? code = null;
        string outcome;
        try
        {
            mac.Bputil(new BputilRequest(SecurityMode.Permissive, true, false, Admin, Password));
            outcome = "NOT refused";
        }
        catch (SecureBootException e)
        {
            code = e.Code.ToString();
            outcome = $"refused: {e.Code}: {e.Message}";
        }
        Step("Attack (c): lower security from macOS (bputil -n while running macOS, even with the admin password)",
            "refused: needs One True Recovery", code == nameof(SecureBootCode.NotInOneTrueRecovery), outcome,
            [$"LocalPolicy unchanged: {mac.ReadLocalPolicy().SecurityMode} Security"], code);

        return new DemoReport([.. steps], sw.Elapsed.TotalSeconds, macDir);
    }

    private static bool HistoryHas(Mac mac, string bundleId)
    {
        using var db = mac.Store.OpenDatabaseReadOnly();
        return KextPolicyDatabase.HistoryHas(db, bundleId);
    }
}

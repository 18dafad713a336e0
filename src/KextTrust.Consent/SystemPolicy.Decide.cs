using System.Security.Cryptography;
using KextTrust.Consent.Mdm;
using KextTrust.Consent.Policy;
using KextTrust.Formats;
using KextTrust.Formats.PropertyLists;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;
using KextTrust.Kexts.Signing;
using KextTrust.Kexts.Trust;
using KextTrust.Machine;
using Microsoft.Data.Sqlite;

namespace KextTrust.Consent;

// Load decisions (why): the ordered checks with their evidence.
public sealed partial class SystemPolicy
{
    /// <summary>Everything a decision reads, loaded once.</summary>
    private sealed record State(MachineDescription Machine, KextPolicyContent Policy, KextConsentNvram Nvram, CombinedKextPolicy Mdm, string? ConsentNotInForce);

    private State LoadState(KextPolicyContent? policy = null)
    {
        var p = policy ?? ReadPolicy();
        var nvram = ReadNvram();
        var mdm = CombinedKextPolicy.Combine(ReadProfiles());
        var d = Description;
        string? off = d.Version < new MacOSVersion(10, 13) ? "macOS 10.12 or earlier"
            : (d.CsrActiveConfig & CsrConfig.AllowUnapprovedKexts) != 0 ? "SIP CSR_ALLOW_UNAPPROVED_KEXTS is set"
            : d.Version < new MacOSVersion(10, 13, 2) && d.Mdm != MdmEnrollment.None ? "on 10.13.0–10.13.1 MDM enrollment disables user consent"
            : !nvram.ConsentEnabled ? "spctl kext-consent disable"
            : null;
        return new State(d, p, nvram, mdm, off);
    }

    private static ConsentFinding Found(ConsentSource s, string rule, params (string, string)[] evidence) =>
        new(s, rule, evidence.ToDictionary(e => e.Item1, e => e.Item2));

    private ConsentFinding FindConsent(State s, KextSignatureVerification sig, string bundleId)
    {
        var d = s.Machine;
        if (s.ConsentNotInForce is { } off)
        {
            var source = d.Version < new MacOSVersion(10, 13) ? ConsentSource.NotRequiredBeforeHighSierra
                : (d.CsrActiveConfig & CsrConfig.AllowUnapprovedKexts) != 0 ? ConsentSource.NotRequiredCsrUnapprovedKexts
                : d.Version < new MacOSVersion(10, 13, 2) && d.Mdm != MdmEnrollment.None ? ConsentSource.MdmEnrollmentDisablesConsent
                : ConsentSource.SpctlConsentDisabled;
            return Found(source, "user consent not in force: " + off, ("macOS", d.MacOSVersion), ("csr-active-config", d.CsrActiveConfig.ToHex()), ("mdm", d.Mdm.ToString()));
        }
        var team = PolicyTeamId(sig);
        var mdm = s.Policy.Mdm.FirstOrDefault(r => r.Allowed && r.TeamId == team && r.BundleId == bundleId)
            ?? (team.Length > 0 ? s.Policy.Mdm.FirstOrDefault(r => r.Allowed && r.TeamId == team && r.BundleId is null) : null);
        if (mdm is not null)
        {
            return Found(ConsentSource.Mdm, mdm.BundleId is null ? $"MDM AllowedTeamIdentifiers contains {team}" : $"MDM AllowedKernelExtensions[{(team.Length == 0 ? "''" : team)}] contains {bundleId}",
                ("table", "kext_policy_mdm"), ("team_id", team), ("bundle_id", mdm.BundleId ?? "NULL (whole team)"), ("payload_uuid", mdm.PayloadUuid ?? ""));
        }
        if (team.Length > 0 && s.Nvram.Teams.Contains(team, StringComparer.Ordinal))
        {
            return Found(ConsentSource.Spctl, $"spctl kext-consent add {team} (from recoveryOS)", ("nvram", "kext-consent teams"), ("team_id", team));
        }
        var userAllowed = !s.Mdm.Present || s.Mdm.AllowUserOverrides;
        var row = s.Policy.Policy.FirstOrDefault(r => r.Allowed && r.TeamId == team && r.BundleId == bundleId);
        (string, string)[] Ev(KextPolicyRow r) => [("table", "kext_policy"), ("team_id", r.TeamId ?? ""), ("bundle_id", r.BundleId ?? ""), ("developer_name", r.DeveloperName ?? ""), ("flags", (r.Flags ?? 0).ToString(System.Globalization.CultureInfo.InvariantCulture))];
        if (row is not null && userAllowed && ((row.Flags ?? 0) & KextPolicyFlags.Replacement) != 0)
        {
            return Found(ConsentSource.Replacement, "replaces a previously approved kext (same team and bundle id)", Ev(row));
        }
        if (row is not null && ((row.Flags ?? 0) & KextPolicyFlags.Grandfathered) != 0)
        {
            return Found(ConsentSource.Grandfathered, "installed on macOS 10.12 or earlier and present at the upgrade", Ev(row));
        }
        if (userAllowed)
        {
            var user = (row is not null && ((row.Flags ?? 0) & KextPolicyFlags.UserApproved) != 0 ? row : null)
                ?? (team.Length > 0 ? s.Policy.Policy.FirstOrDefault(r => r.Allowed && r.TeamId == team && ((r.Flags ?? 0) & KextPolicyFlags.UserApproved) != 0) : null);
            if (user is not null)
            {
                return Found(ConsentSource.User, team.Length > 0 ? $"team {team} approved by a user" : $"unsigned kext {bundleId} approved by a user", Ev(user));
            }
        }
        var alert = s.Policy.History.FirstOrDefault(h => h.BundleId == bundleId && ((h.Flags ?? 0) & KextPolicyFlags.HistoryAlertShown) != 0);
        var ev = new List<(string, string)> { ("team_id", team), ("bundle_id", bundleId) };
        if (alert is not null)
        {
            ev.Add(("alert_shown_at", alert.LastSeen ?? ""));
            var at = KextPolicyDatabase.ParseTimestamp(alert.LastSeen);
            ev.Add(("approval_window_open", at is { } t && d.Clock - t <= ApprovalWindow ? "yes" : "no"));
        }
        if (!userAllowed)
        {
            ev.Add(("user_overrides", "forbidden by MDM (AllowUserOverrides false)"));
        }
        return Found(ConsentSource.None, "needs user approval (no MDM, spctl, grandfathered, replacement or user consent)", ev.ToArray());
    }

    /// <summary>Decides for an installed kext by bundle id, or for the kext bundle at a path.</summary>
    public KextDecision Why(string kextPathOrBundleId)
    {
        string path;
        if (Directory.Exists(kextPathOrBundleId))
        {
            path = Path.GetFullPath(kextPathOrBundleId);
        }
        else
        {
            var k = InstalledKexts().FirstOrDefault(k => k.BundleId == kextPathOrBundleId)
                ?? throw new ConsentException(ConsentCode.NotInstalled, null, $"{kextPathOrBundleId} is neither a kext folder nor the bundle id of a kext in /Library/Extensions");
            path = Store.PathOf(k.RelativePath);
        }
        return Decide(path, LoadState());
    }

    /// <summary>Decides for every kext in /Library/Extensions.</summary>
    public IReadOnlyList<KextDecision> DecideAll()
    {
        var s = LoadState();
        return InstalledKexts().Select(k => Decide(Store.PathOf(k.RelativePath), s)).ToArray();
    }

    private KextDecision Decide(string path, State s)
    {
        var bundle = OpenKext(path);
        var bundleId = bundle.BundleId!;
        var d = s.Machine;
        var steps = new List<TrustCheck>();
        void Step(TrustStep step, TrustOutcome o, TrustCode? code, string detail, params (string, string)[] ev) =>
            steps.Add(new TrustCheck(step, o, code, detail).With(ev));

        // 1. Exclude list.
        var exclude = ReadExcludeList();
        var hit = exclude.Match(bundleId, bundle.Version!.Value);
        if (hit is null)
        {
            Step(TrustStep.ExcludeList, TrustOutcome.Passed, null, $"{bundleId} {bundle.VersionString} not on the exclude list", ("exclude_list_version", exclude.Version));
        }
        else
        {
            Step(TrustStep.ExcludeList, TrustOutcome.Failed, TrustCode.ExcludeListed, $"excluded: {hit.Rule}", ("exclude_list_version", exclude.Version), ("version_spec", hit.VersionSpec));
        }

        // 2. Architecture.
        var arches = new List<string>();
        var wanted = d.KextArchitecture.SliceName();
        IReadOnlyList<string> imports = [];
        if (bundle.ExecutablePath is { } exe && File.Exists(exe))
        {
            try
            {
                using var file = Formats.MachO.MachOFile.Open(exe);
                arches.AddRange(file.Slices.Select(x => x.Architecture));
                var slice = file.Slices.FirstOrDefault(x => x.Architecture == wanted);
                imports = slice?.UndefinedSymbols ?? [];
            }
            catch (KextTrustFormatException e)
            {
                arches.Add("unreadable: " + e.Message);
            }
            if (arches.Contains(wanted))
            {
                Step(TrustStep.Architecture, TrustOutcome.Passed, null, $"has a {wanted} slice", ("slices", string.Join(",", arches)));
            }
            else
            {
                Step(TrustStep.Architecture, TrustOutcome.Failed, TrustCode.MissingArchitecture, $"no {wanted} slice for this {d.Platform} Mac", ("slices", string.Join(",", arches)));
            }
        }
        else
        {
            Step(TrustStep.Architecture, TrustOutcome.Passed, null, "codeless kext");
        }

        // 3. Filesystem validation.
        var fsProblem = FilesystemProblem(path);
        Step(TrustStep.FilesystemValidation, fsProblem is null ? TrustOutcome.Passed : TrustOutcome.Failed, fsProblem is null ? null : TrustCode.ValidationFailed,
            fsProblem ?? "no group- or other-writable file (ownership modelled by mode bits)");

        // 4. Signature under SIP.
        var sig = VerifySignature(path);
        var refusal = sig.Refusal;
        var sigEv = new List<(string, string)> { ("kind", ConsentSignature.Kind(sig)), ("team_id", sig.TeamId ?? ""), ("developer_name", sig.Signer ?? ""), ("cdhash", sig.PrimaryCdHash ?? ""), ("csr-active-config", d.CsrActiveConfig.ToHex()) };
        if (refusal is not null)
        {
            sigEv.Add(("problem", refusal.Code));
            if (refusal.Page is { } page)
            {
                sigEv.Add(("page", page.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            }
        }
        if (!d.SipEnforcesKexts)
        {
            Step(TrustStep.Signature, TrustOutcome.Skipped, null, $"SIP kext protection off: signature not enforced ({sig.Summary})", [.. sigEv]);
        }
        else if (refusal is null)
        {
            Step(TrustStep.Signature, TrustOutcome.Passed, null, $"Developer ID signed: {sig.Summary}", [.. sigEv]);
        }
        else
        {
            Step(TrustStep.Signature, TrustOutcome.Failed, TrustCodes.ForSignature(sig), $"SIP requires a valid Developer ID kext signature: {refusal}", [.. sigEv]);
        }

        // 5. Staging.
        var rel = Path.GetRelativePath(Store.Root, path).Replace(Path.DirectorySeparatorChar, '/');
        if (!d.SipEnforcesKexts)
        {
            Step(TrustStep.Staging, TrustOutcome.Skipped, null, "SIP off: staging disabled, every location is secure");
        }
        else
        {
            var staged = Store.PathOf(MachineLayout.StagedPathOf(rel));
            var ok = rel.StartsWith(MachineLayout.LibraryExtensions + "/", StringComparison.Ordinal) && Directory.Exists(staged) && TreeHash(staged) == TreeHash(path);
            Step(TrustStep.Staging, ok ? TrustOutcome.Passed : TrustOutcome.Failed, ok ? null : TrustCode.ValidationFailed,
                ok ? "validated copy present in /Library/StagedExtensions" : "no matching validated copy in /Library/StagedExtensions", ("staged_path", "/" + MachineLayout.StagedPathOf(rel)));
        }

        // 6. Consent.
        var consent = FindConsent(s, sig, bundleId);
        Step(TrustStep.Consent, consent.Source == ConsentSource.None ? TrustOutcome.Failed : TrustOutcome.Passed,
            consent.Source == ConsentSource.None ? TrustCode.NotApproved : null, $"{consent.Source}: {consent.Rule}", consent.Evidence.Select(e => (e.Key, e.Value)).ToArray());

        // 7. Deprecated KPIs (Apple's deprecation footnote: not enforced with SIP off or for MDM-approved kexts).
        var release = MacOSRelease.ForVersion(d.Version);
        var libs = bundle.Libraries.GroupBy(l => l.BundleId).ToDictionary(g => g.Key, g => g.First().RequestedVersion);
        var context = new KpiEnforcementContext(!d.SipEnforcesKexts, consent.Source == ConsentSource.Mdm);
        if (release is null)
        {
            Step(TrustStep.Kpi, TrustOutcome.Passed, null, $"no KPI deprecation rules before macOS 10.15 (this Mac runs {d.MacOSVersion})");
        }
        else
        {
            var verdict = KpiRuleEvaluator.Evaluate(imports, libs, context).On(release);
            var rules = string.Join(",", verdict.Findings.Select(f => $"{f.Finding.Rule.Id}:{f.Status}"));
            var (outcome, code) = TrustCodes.ForKpi(verdict);
            var detail = code switch
            {
                TrustCode.UnsupportedKpi => $"uses KPIs unsupported on {release.DisplayName}",
                TrustCode.KpiNotEnforced => $"unsupported KPIs not enforced: {(context.SipDisabled ? "SIP disabled" : "approved by MDM")}",
                _ => verdict.Findings.Length == 0 ? "no deprecated KPI used" : $"deprecated KPIs still load on {release.DisplayName}",
            };
            Step(TrustStep.Kpi, outcome, code, detail, ("rules", rules), ("release", release.Key));
        }

        var fail = steps.FirstOrDefault(x => x.Outcome == TrustOutcome.Failed);
        return new KextDecision(bundleId, bundle.VersionString ?? "", "/" + rel, fail is null, fail?.Code,
            fail is null ? $"allowed ({consent.Source})" : $"blocked by {fail.Step}: {fail.Detail}", consent.Source, sig, steps);
    }

    private static string TreeHash(string dir)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var f in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(dir, f)).Order(StringComparer.Ordinal))
        {
            h.AppendData(System.Text.Encoding.UTF8.GetBytes(f + "\0"));
            h.AppendData(SHA256.HashData(File.ReadAllBytes(Path.Combine(dir, f))));
        }
        return Convert.ToHexString(h.GetHashAndReset());
    }
}

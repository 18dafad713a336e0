using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using KextTrust.Boot.Enclave;
using KextTrust.Boot.Kernel;
using KextTrust.Boot.KernelManagement;
using KextTrust.Boot.Policy;
using KextTrust.Boot.Receipt;
using KextTrust.Boot.Startup;
using KextTrust.Consent.Machine;
using KextTrust.Consent.Policy;
using KextTrust.Formats;
using KextTrust.Formats.Image4;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;
using KextTrust.Kexts.Signing;
using Microsoft.Data.Sqlite;
using ConsentUakl = KextTrust.Consent.Policy.UserApprovedKextList;
using ConsentUaklEntry = KextTrust.Consent.Policy.UaklEntry;
using LocalPolicyRecord = KextTrust.Boot.Policy.LocalPolicy;

namespace KextTrust.Boot.SecureBoot;

/// <summary>Where the secure-boot state lives in the machine folder.</summary>
public static class SecureBootLayout
{
    /// <summary>The Secure Enclave's sealed key and nonce.</summary>
    public const string Enclave = "SEP";
    /// <summary>The Secure Enclave's sealed Local Policy Nonce: replaced only in the same transaction as the LocalPolicy.</summary>
    public const string EnclaveNonce = Enclave + "/" + SecureEnclave.NonceFileName;
    /// <summary>The Secure Enclave's sealed signing key: written once, at <c>machine init</c>.</summary>
    public const string EnclaveKey = Enclave + "/" + SecureEnclave.KeyFileName;
    /// <summary>The SEP-signed LocalPolicy (IM4M).</summary>
    public const string LocalPolicy = MachineLayout.Preboot + "/LocalPolicy/LocalPolicy.im4m";
    /// <summary>Apple silicon: the AuxKC folder on the Preboot volume.</summary>
    public const string AppleSiliconAuxKcFolder = MachineLayout.Preboot + "/boot/AuxiliaryKernelExtensions";
    /// <summary>Intel: the AuxKC lives on the data volume.</summary>
    public const string IntelAuxKcFolder = "Library/KernelCollections";
    /// <summary>The last startup's report (what iBoot decided, what the kernel loaded).</summary>
    public const string LastStartup = "var/run/kextrust-startup.json";

    /// <summary>The AuxKC folder of the platform.</summary>
    public static string AuxKcFolder(MachinePlatform p) => p == MachinePlatform.AppleSilicon ? AppleSiliconAuxKcFolder : IntelAuxKcFolder;
    /// <summary>The AuxKC Mach-O.</summary>
    public static string AuxKc(MachinePlatform p) => AuxKcFolder(p) + "/AuxiliaryKernelExtensions.kc";
    /// <summary>The SEP-signed AuxKC Image4 (Apple silicon).</summary>
    public static string AuxKcImage4(MachinePlatform p) => AuxKcFolder(p) + "/AuxiliaryKernelExtensions.img4";
    /// <summary>The kext receipt.</summary>
    public static string Receipt(MachinePlatform p) => AuxKcFolder(p) + "/KextReceipt.plist";
}

/// <summary>Stable codes of secure-boot refusals.</summary>
public enum SecureBootCode
{
    /// <summary>Security settings change only in One True Recovery (or recoveryOS on Intel).</summary>
    NotInOneTrueRecovery,
    /// <summary>Wrong password.</summary>
    AuthenticationFailed,
    /// <summary>The user is not an administrator.</summary>
    AdminRequired,
    /// <summary>Intel Macs have no LocalPolicy.</summary>
    NotOnIntel,
    /// <summary>The Mac has no Secure Enclave / LocalPolicy (not initialized for secure boot).</summary>
    NoLocalPolicy,
    /// <summary>The LocalPolicy does not allow third-party kexts (smb2).</summary>
    ThirdPartyKextsDisabled,
    /// <summary>The requested settings contradict each other.</summary>
    InconsistentPolicy,
    /// <summary>The LocalPolicy file cannot be read: not a well-formed Image4 manifest, or not a well-formed policy.</summary>
    LocalPolicyMalformed,
}

/// <summary>A refused secure-boot operation.</summary>
public sealed class SecureBootException(SecureBootCode code, string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>The stable code.</summary>
    public SecureBootCode Code { get; } = code;
}

/// <summary>The Consent UAKL seen by kmd: its hash (<c>auxp</c>) is SHA-384 of the on-disk UAKL bytes; a team-wide entry covers every bundle of that team.</summary>
public sealed class MachineUakl : IUserApprovedKextList
{
    private readonly ConsentUakl _list;

    /// <summary>Wraps <paramref name="list"/>.</summary>
    public MachineUakl(ConsentUakl list)
    {
        _list = list;
        Hash = Sha384Digest.Compute(list.ToBytes());
    }

    /// <inheritdoc/>
    public Sha384Digest Hash { get; }

    /// <inheritdoc/>
    public bool TryFind(string teamId, string bundleId, [NotNullWhen(true)] out KernelManagement.UaklEntry? entry)
    {
        var e = _list.Entries.FirstOrDefault(x => x.TeamId == teamId && x.BundleId == bundleId)
            ?? _list.Entries.FirstOrDefault(x => x.TeamId == teamId && teamId.Length > 0 && x.BundleId.Length == 0);
        entry = e is null ? null : new KernelManagement.UaklEntry(teamId, bundleId, Map(e.Source));
        return entry is not null;
    }

    /// <inheritdoc/>
    public IReadOnlyList<string> TeamsFor(string bundleId) => _list.Entries.Where(e => e.BundleId == bundleId).Select(e => e.TeamId).Distinct().ToArray();

    private static KextConsentSource Map(ConsentSource s) => s switch
    {
        ConsentSource.Mdm => KextConsentSource.Mdm,
        ConsentSource.Spctl => KextConsentSource.Spctl,
        ConsentSource.Grandfathered => KextConsentSource.Legacy,
        ConsentSource.Replacement => KextConsentSource.Replacement,
        _ => KextConsentSource.User,
    };
}

/// <summary>What <c>bputil</c> sets.</summary>
public sealed record BputilRequest(SecurityMode Mode, bool EnableKexts, bool EnableMdm, string User, string Password);

/// <summary>The result of one kmd rebuild (<c>kmutil create</c>).</summary>
public sealed record KmutilCreateResult(AuxKcBuildResult Build, SignedAuxKc? Signed, LocalPolicyRecord? Policy, Sha384Digest UaklHash);

/// <summary>Why a startup booted without third-party kexts.</summary>
public sealed record StartupRefusal(string Code, string Detail);

/// <summary>
/// What one startup did: iBoot's verdict, the refusal if any, what the kernel loaded, and the kexts kmd left out of the
/// AuxKC the kernel loaded (from its verified receipt, with kmd's code and detail: a refused signature's problem code and page).
/// </summary>
public sealed record StartupReport(string RunningOS, string BootSession, bool ThirdPartyKextsLoaded, StartupRefusal? Refusal,
    ImmutableArray<string> Trace, ImmutableArray<LoadedKextInfo> Loaded, ImmutableArray<string> NotLoaded, ImmutableArray<ReceiptExcludedKext> Excluded);

/// <summary>One loaded kext, as <c>kmutil showloaded</c> prints it.</summary>
public sealed record LoadedKextInfo(int LoadTag, string BundleId, string Version, string TeamId, string CdHash)
{
    /// <summary>Load address (the fileset entry's vmaddr); null for a codeless kext.</summary>
    public ulong? Address { get; init; }

    /// <summary>Bytes of its image (and wired bytes: kexts are wired).</summary>
    public ulong Size { get; init; }

    /// <summary>LC_UUID of its executable, upper case; null when it has none.</summary>
    public string? Uuid { get; init; }

    /// <summary>Load tags of the loaded kexts it links against.</summary>
    public IReadOnlyList<int> LinkedAgainst { get; init; } = [];
}

/// <summary>
/// The secure-boot services of a simulated Mac: the Secure Enclave and LocalPolicy (Apple silicon), bputil and csrutil
/// (One True Recovery only, admin password), kmd (<c>kmutil create</c>), and the startup hook that runs iBoot and the kernel.
/// </summary>
public static class SecureBootMac
{
    private static readonly Lazy<KpiCatalog> Catalog = new(KpiCatalog.Load);

    /// <summary>
    /// <c>machine init</c> with secure boot: creates the Mac (<see cref="Mac.Init"/>) and, on Apple silicon, in the same
    /// transaction, its Secure Enclave (sealed key and first Local Policy Nonce, sealed with the hardware UID) and a Full
    /// Security LocalPolicy it signed. All or nothing: a failure at any write leaves no Mac, and init can run again.
    /// </summary>
    public static Mac Init(string directory, MachineInitOptions options, IMachineFileSystem? fs = null, IKextSignatureVerifier? verifier = null) =>
        Mac.Init(directory, options, fs, verifier, StageSecureBoot);

    /// <summary>
    /// Sets up secure boot on a Mac created without it (<see cref="Mac.Init"/> alone): on Apple silicon the Secure
    /// Enclave and a Full Security LocalPolicy, in one transaction. Does nothing on Intel or when a LocalPolicy exists.
    /// </summary>
    public static void Initialize(Mac mac)
    {
        ArgumentNullException.ThrowIfNull(mac);
        var d = mac.Description;
        if (d.Platform != MachinePlatform.AppleSilicon || File.Exists(mac.Store.PathOf(SecureBootLayout.LocalPolicy)))
        {
            return;
        }
        var tx = mac.Store.Begin();
        StageSecureBoot(mac.Store, d, tx);
        tx.Commit();
    }

    /// <summary>Stages the Secure Enclave's sealed files and the first LocalPolicy (Apple silicon; nothing on Intel).</summary>
    private static void StageSecureBoot(MachineStore store, MachineDescription d, MachineTransaction tx)
    {
        if (d.Platform != MachinePlatform.AppleSilicon)
        {
            return;
        }
        var dir = store.PathOf(SecureBootLayout.Enclave);
        if (File.Exists(Path.Combine(dir, SecureEnclave.KeyFileName)))
        {
            // A Mac of an earlier version whose Secure Enclave was provisioned without a LocalPolicy: keep its key.
            using var existing = SecureEnclave.Open(dir, Convert.FromHexString(d.HardwareUid), d.Ecid);
            var nonce = existing.PrepareLocalPolicyNonce();
            StageSigned(tx, (LocalPolicyRecord.CreateFullSecurity(existing, VolumeGroup(d)) with { LocalPolicyNonceHash = nonce.Hash }).Sign(existing, nonce).Encode(), nonce);
            return;
        }
        var provisioned = SecureEnclave.Provision(dir, Convert.FromHexString(d.HardwareUid), d.Ecid);
        using var sep = provisioned.Enclave;
        tx.StageFile(SecureBootLayout.EnclaveKey, provisioned.SealedKey.Span);
        StageSigned(tx, LocalPolicyRecord.CreateFullSecurity(sep, VolumeGroup(d)).Sign(sep).Encode(), provisioned.FirstNonce);
    }

    /// <summary>The volume group UUID (derived from the hardware UID).</summary>
    public static Guid VolumeGroup(MachineDescription d) => new(SHA256.HashData(Convert.FromHexString(d.HardwareUid)).AsSpan(0, 16));

    /// <summary>Opens this Mac's Secure Enclave.</summary>
    public static SecureEnclave OpenEnclave(Mac mac)
    {
        var d = mac.Description;
        if (d.Platform != MachinePlatform.AppleSilicon)
        {
            throw new SecureBootException(SecureBootCode.NotOnIntel, "Intel Macs have no Secure Enclave LocalPolicy");
        }
        var dir = mac.Store.PathOf(SecureBootLayout.Enclave);
        if (!File.Exists(Path.Combine(dir, SecureEnclave.KeyFileName)))
        {
            throw new SecureBootException(SecureBootCode.NoLocalPolicy, "this Mac has no Secure Enclave (re-create it with `kextrust machine init`)");
        }
        return SecureEnclave.Open(dir, Convert.FromHexString(d.HardwareUid), d.Ecid);
    }

    /// <summary>
    /// The LocalPolicy on disk verified as iBoot verifies it at startup: signed by this Mac's Secure Enclave key, for its
    /// ECID, carrying the SEP's current Local Policy Nonce hash, well formed and consistent. The failures say why not.
    /// </summary>
    /// <exception cref="SecureBootException"><see cref="SecureBootCode.NoLocalPolicy"/>, <see cref="SecureBootCode.NotOnIntel"/>.</exception>
    public static LocalPolicyVerification VerifyPolicy(Mac mac)
    {
        ArgumentNullException.ThrowIfNull(mac);
        var (bytes, path) = LocalPolicyFile(mac);
        using var sep = OpenEnclave(mac);
        return LocalPolicyVerifier.Verify(bytes, path, sep);
    }

    /// <summary>The LocalPolicy on disk (decoded, not verified: see <see cref="VerifyPolicy"/>).</summary>
    /// <exception cref="SecureBootException">
    /// <see cref="SecureBootCode.LocalPolicyMalformed"/> (naming the file, and the offset when the DER broke) when the file
    /// cannot be decoded; <see cref="SecureBootCode.NoLocalPolicy"/>, <see cref="SecureBootCode.NotOnIntel"/>.
    /// </exception>
    public static LocalPolicyRecord ReadPolicy(Mac mac)
    {
        var (bytes, path) = LocalPolicyFile(mac);
        try
        {
            return LocalPolicyRecord.FromBytes(bytes, path);
        }
        catch (Image4FormatException e)
        {
            throw new SecureBootException(SecureBootCode.LocalPolicyMalformed, e.Message, e);
        }
        catch (LocalPolicyException e)
        {
            throw new SecureBootException(SecureBootCode.LocalPolicyMalformed, $"{path}: invalid LocalPolicy: {string.Join("; ", e.Failures.Select(f => f.Detail))}", e);
        }
    }

    /// <summary>The LocalPolicy file's bytes and path, for <see cref="ReadPolicy"/> and <see cref="VerifyPolicy"/>.</summary>
    private static (byte[] Bytes, string Path) LocalPolicyFile(Mac mac)
    {
        if (mac.Description.Platform != MachinePlatform.AppleSilicon)
        {
            throw new SecureBootException(SecureBootCode.NotOnIntel, "Intel Macs have no LocalPolicy: their AuxKC lives on the data volume");
        }
        var bytes = ReadOptional(mac, SecureBootLayout.LocalPolicy)
            ?? throw new SecureBootException(SecureBootCode.NoLocalPolicy, "no LocalPolicy on the Preboot volume");
        return (bytes, mac.Store.PathOf(SecureBootLayout.LocalPolicy));
    }

    /// <summary>Checks that the Mac runs One True Recovery (recoveryOS on Intel) and that <paramref name="user"/> is an admin with this password.</summary>
    public static void AuthorizeRecovery(Mac mac, string user, string password, string what)
    {
        if (!mac.Description.InRecovery)
        {
            throw new SecureBootException(SecureBootCode.NotInOneTrueRecovery,
                $"{what} is allowed only in One True Recovery (hold the power button at startup): from macOS a software-only attacker cannot lower security");
        }
        AuthorizeAdmin(mac, user, password);
    }

    /// <summary>Checks an administrator's password (the Mac's PBKDF2 users).</summary>
    public static void AuthorizeAdmin(Mac mac, string user, string password)
    {
        var u = mac.Description.FindUser(user);
        if (u is null || !u.Password.Verify(password))
        {
            throw new SecureBootException(SecureBootCode.AuthenticationFailed, $"authentication failed for '{user}'");
        }
        if (!u.IsAdmin)
        {
            throw new SecureBootException(SecureBootCode.AdminRequired, $"'{user}' is not an administrator");
        }
    }

    /// <summary><c>bputil</c>: sets the security mode, third-party kexts (smb2) and MDM kext management (smb3) in a new SEP-signed LocalPolicy.</summary>
    public static LocalPolicyRecord Bputil(Mac mac, BputilRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (mac.Description.Platform != MachinePlatform.AppleSilicon)
        {
            throw new SecureBootException(SecureBootCode.NotOnIntel, "bputil: not on Intel (Intel Macs have no LocalPolicy)");
        }
        AuthorizeRecovery(mac, request.User, request.Password, "changing the security policy (bputil)");
        var current = ReadPolicy(mac);
        var full = request.Mode == SecurityMode.Full;
        var proposed = current with
        {
            ReducedSecurity = !full,
            PermissiveSecurity = request.Mode == SecurityMode.Permissive,
            ThirdPartyKextsEnabled = !full && request.EnableKexts,
            MdmManagesKexts = !full && request.EnableMdm,
            SipConfig = request.Mode == SecurityMode.Permissive ? current.SipConfig : CsrConfig.None,
        };
        if (!proposed.ThirdPartyKextsEnabled)
        {
            proposed = proposed with { AuxKextPolicyHash = null, AuxKcImage4Hash = null, AuxKcReceiptHash = null };
        }
        return WritePolicy(mac, proposed);
    }

    /// <summary><c>csrutil enable|disable [--without kext]</c>: recovery only, admin password. Apple silicon: also the LocalPolicy's sip0.</summary>
    public static uint Csrutil(Mac mac, bool enable, bool withoutKext, string user, string password)
    {
        AuthorizeRecovery(mac, user, password, "changing System Integrity Protection (csrutil)");
        var csr = enable ? (withoutKext ? Csr.AllowUntrustedKexts | Csr.AllowUnapprovedKexts : 0u) : Csr.Disabled;
        if (mac.Description.Platform == MachinePlatform.AppleSilicon)
        {
            var current = ReadPolicy(mac);
            var proposed = current with { SipConfig = (CsrConfig)(ushort)csr };
            if (csr != 0)
            {
                proposed = proposed with { ReducedSecurity = true, PermissiveSecurity = true };
            }
            // The new LocalPolicy, its nonce and the NVRAM SIP setting switch in together: one commit.
            var tx = mac.Store.Begin();
            StagePolicy(mac, tx, proposed);
            mac.SetCsr(csr, tx);
        }
        else
        {
            mac.SetCsr(csr);
        }
        return csr;
    }

    private static LocalPolicyRecord WritePolicy(Mac mac, LocalPolicyRecord proposed)
    {
        var tx = mac.Store.Begin();
        var policy = StagePolicy(mac, tx, proposed);
        tx.Commit();
        return policy;
    }

    /// <summary>
    /// Stages a new SEP-signed LocalPolicy and, in the same transaction, the new Local Policy Nonce it carries: until the
    /// commit point the old policy and nonce stay in force; after it only the new pair verifies.
    /// </summary>
    private static LocalPolicyRecord StagePolicy(Mac mac, MachineTransaction tx, LocalPolicyRecord proposed)
    {
        var failures = proposed.CheckConsistency();
        if (failures.Count > 0)
        {
            throw new SecureBootException(SecureBootCode.InconsistentPolicy, string.Join("; ", failures.Select(f => f.Detail)));
        }
        using var sep = OpenEnclave(mac);
        var nonce = sep.PrepareLocalPolicyNonce();
        var policy = proposed with { LocalPolicyNonceHash = nonce.Hash };
        StageSigned(tx, policy.Sign(sep, nonce).Encode(), nonce);
        return policy;
    }

    private static void StageSigned(MachineTransaction tx, ReadOnlySpan<byte> policy, PendingLocalPolicyNonce nonce)
    {
        tx.StageFile(SecureBootLayout.EnclaveNonce, nonce.SealedBytes.Span);
        tx.StageFile(SecureBootLayout.LocalPolicy, policy);
    }

    /// <summary>The macOS release of the Mac.</summary>
    public static MacOSRelease Release(MachineDescription d) => MacOSRelease.ForVersion(d.Version) ?? MacOSRelease.All[^1];

    /// <summary>The kext architecture of the Mac.</summary>
    public static KextArchitecture Architecture(MachineDescription d) => d.Platform == MachinePlatform.AppleSilicon ? KextArchitecture.Arm64 : KextArchitecture.X86_64;

    /// <summary>
    /// kmd (<c>kmutil create</c>): with an administrator's approval, builds the AuxKC from the kexts in the UAKL only,
    /// writes it with its receipt, has the Secure Enclave sign it and records <c>auxp</c>/<c>auxi</c>/<c>auxr</c> in a new
    /// LocalPolicy. Takes effect at the next startup.
    /// </summary>
    public static KmutilCreateResult KmutilCreate(Mac mac, string user, string password)
    {
        AuthorizeAdmin(mac, user, password);
        var d = mac.Description;
        var asi = d.Platform == MachinePlatform.AppleSilicon;
        var policy = asi ? ReadPolicy(mac) : null;
        if (policy is { ThirdPartyKextsEnabled: false })
        {
            throw new SecureBootException(SecureBootCode.ThirdPartyKextsDisabled,
                "third-party kexts are not enabled: start up in One True Recovery, choose Reduced Security and allow kexts (bputil -g -k)");
        }
        var consentUakl = mac.BuildUakl();
        var uakl = new MachineUakl(consentUakl);
        var root = mac.TrustRoot();
        var verifyOptions = new KextSignatureVerifierOptions { TrustedTestRoot = root };
        var exclude = mac.ReadExcludeList();
        KextBundle[] candidates = [.. KextDiscovery.FindKexts(mac.Store.PathOf(MachineLayout.LibraryExtensions)).Select(KextBundle.Open)];
        var request = new AuxKcBuildRequest
        {
            Candidates = candidates,
            Uakl = uakl,
            Architecture = Architecture(d),
            Release = Release(d),
            Sip = (CsrConfig)(ushort)d.CsrActiveConfig,
            IsBanned = (id, v) => exclude.Match(id, v) is not null,
            VerifySignature = VerifySignatures(candidates, verifyOptions),
            Catalog = Catalog.Value,
            VolumeRoot = mac.Store.Root,
        };
        var build = Kmd.BuildAuxKc(request);
        var tx = mac.Store.Begin();
        tx.StageFile(MachineLayout.Uakl, consentUakl.ToBytes());
        tx.StageFile(SecureBootLayout.AuxKc(d.Platform), build.AuxKc.Bytes.Span);
        tx.StageFile(SecureBootLayout.Receipt(d.Platform), build.ReceiptBytes());
        SignedAuxKc? signed = null;
        LocalPolicyRecord? updated = null;
        if (asi)
        {
            using var sep = OpenEnclave(mac);
            signed = Kmd.SignAuxKc(build, sep);
            var update = Kmd.UpdateLocalPolicy(policy!, sep, signed);
            updated = update.Policy;
            tx.StageFile(SecureBootLayout.AuxKcImage4(d.Platform), signed.Image4Bytes.Span);
            StageSigned(tx, update.ToBytes(), update.Nonce);
        }
        tx.Commit();
        return new KmutilCreateResult(build, signed, updated, uakl.Hash);
    }

    /// <summary>
    /// kmd's signature verdicts for <paramref name="bundles"/> (and their plug-ins). With <paramref name="parallel"/> every
    /// signature is checked up front across all cores in one <see cref="KextSignatureVerifier.VerifyMany"/> pass, which
    /// shares chain verdicts between kexts signed by the same certificates; the returned function then looks a bundle's
    /// verdict up (throwing what verifying it alone throws), so kmd's decisions, the AuxKC and the receipt are those of
    /// the sequential check (<paramref name="parallel"/> false: each bundle verified when kmd asks, one at a time).
    /// </summary>
    public static Func<KextBundle, KextSignatureVerification> VerifySignatures(IReadOnlyList<KextBundle> bundles, KextSignatureVerifierOptions options,
        bool parallel = true)
    {
        ArgumentNullException.ThrowIfNull(bundles);
        ArgumentNullException.ThrowIfNull(options);
        KextSignatureVerification One(string path) => KextSignatureVerifier.Verify(path, options);
        if (!parallel)
        {
            return b => One(b.Path);
        }
        string[] paths = [.. bundles.SelectMany(b => b.SelfAndPlugIns()).Select(b => b.Path).Distinct(StringComparer.Ordinal)];
        IReadOnlyList<KextVerifyItem> items;
        try
        {
            items = KextSignatureVerifier.VerifyMany(paths, options);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Something no single verification reports as its own verdict: ask per bundle, as kmd would.
            return b => One(b.Path);
        }
        var byPath = new Dictionary<string, KextVerifyItem>(paths.Length, StringComparer.Ordinal);
        for (var i = 0; i < paths.Length; i++)
        {
            byPath[paths[i]] = items[i];
        }
        return b => byPath.TryGetValue(b.Path, out var item) ? item.Result ?? throw item.Error! : One(b.Path);
    }

    /// <summary>The startup hook: iBoot verifies the chain, the kernel loads the AuxKC and records the loads.</summary>
    public static SecureBootStartupHook StartupHook() => new();

    /// <summary>Starts the Mac up through iBoot and the kernel; returns what happened.</summary>
    public static StartupReport Startup(Mac mac, bool recovery)
    {
        var hook = StartupHook();
        mac.Startup(recovery, [hook]);
        return hook.Report!;
    }

    /// <summary>The last startup's report, if any.</summary>
    public static StartupReport? LastStartup(Mac mac)
    {
        var path = mac.Store.PathOf(SecureBootLayout.LastStartup);
        return File.Exists(path) ? JsonSerializer.Deserialize(File.ReadAllBytes(path), ReportJson) : null;
    }

    /// <summary>The receipt on disk, if any.</summary>
    public static KextReceipt? ReadReceipt(Mac mac)
    {
        var path = mac.Store.PathOf(SecureBootLayout.Receipt(mac.Description.Platform));
        return File.Exists(path) ? KextReceipt.FromBytes(File.ReadAllBytes(path), path) : null;
    }

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, TypeInfoResolver = StartupReportJsonContext.Default };

    internal static JsonTypeInfo<StartupReport> ReportJson => (JsonTypeInfo<StartupReport>)Json.GetTypeInfo(typeof(StartupReport));

    internal static byte[]? ReadOptional(Mac mac, string relative)
    {
        var p = mac.Store.PathOf(relative);
        return File.Exists(p) ? File.ReadAllBytes(p) : null;
    }

    internal static KpiCatalog KpiCatalog => Catalog.Value;
}

/// <summary>Compile-time JSON metadata of the last startup's report (same bytes as the reflection-based serializer, no emitted accessors).</summary>
[JsonSerializable(typeof(StartupReport))]
internal sealed partial class StartupReportJsonContext : JsonSerializerContext;

/// <summary>The secure-boot seam of <see cref="Mac.Startup"/>: iBoot, then the kernel.</summary>
public sealed class SecureBootStartupHook : IStartupHook
{
    /// <summary>What the startup did (set by <see cref="OnStartup"/>).</summary>
    public StartupReport? Report { get; private set; }

    /// <inheritdoc/>
    public void OnStartup(Mac mac, MachineDescription next, MachineTransaction transaction)
    {
        ArgumentNullException.ThrowIfNull(mac);
        ArgumentNullException.ThrowIfNull(next);
        ArgumentNullException.ThrowIfNull(transaction);
        var mapped = new List<MappedFile>();
        try
        {
            Run(mac, next, transaction, mapped);
        }
        finally
        {
            // The kernel's view of the AuxKC ends with the startup: nothing in the report refers to its bytes.
            mapped.ForEach(m => m.Dispose());
        }
    }

    private void Run(Mac mac, MachineDescription next, MachineTransaction transaction, List<MappedFile> mapped)
    {
        var trace = new List<string>();
        StartupRefusal? refusal = null;
        AuxiliaryKernelCollection? auxKc = null;
        KextReceipt? receipt = null;
        var p = next.Platform;
        if (next.RunningOS != RunningOS.MacOS)
        {
            trace.Add("recoveryOS: no third-party kexts are loaded");
        }
        else if (p == MachinePlatform.AppleSilicon && !File.Exists(mac.Store.PathOf(SecureBootLayout.LocalPolicy)))
        {
            trace.Add("no LocalPolicy (secure boot not initialized): no third-party kexts are loaded");
        }
        else if (p == MachinePlatform.AppleSilicon)
        {
            using var sep = SecureBootMac.OpenEnclave(mac);
            var policyBytes = SecureBootMac.ReadOptional(mac, SecureBootLayout.LocalPolicy)
                ?? throw new SecureBootException(SecureBootCode.NoLocalPolicy, "no LocalPolicy on the Preboot volume");
            // The AuxKC and its Image4 are read in place (memory-mapped): iBoot hashes the IM4P and compares the AuxKC
            // file with the signed payload without copying either, and the kernel loads the verified payload.
            var image4File = Map(mac, SecureBootLayout.AuxKcImage4(p), mapped);
            var auxKcFile = Map(mac, SecureBootLayout.AuxKc(p), mapped);
            var inputs = IbootInputs.For(sep, policyBytes) with
            {
                AuxKcImage4 = image4File?.Memory,
                AuxKc = auxKcFile?.Memory,
                Receipt = SecureBootMac.ReadOptional(mac, SecureBootLayout.Receipt(p)),
                AuxKcName = mac.Store.PathOf(SecureBootLayout.AuxKc(p)),
                ReceiptName = mac.Store.PathOf(SecureBootLayout.Receipt(p)),
            };
            var boot = Iboot.Boot(inputs);
            trace.AddRange(boot.Trace.Select(c => c.ToString()));
            if (boot.Refusal is { } code)
            {
                refusal = new StartupRefusal(code.ToString(), boot.Failures.First().Detail);
            }
            else if (boot.ThirdPartyKextsLoaded)
            {
                var uaklHash = Sha384Digest.Compute(mac.BuildUakl().ToBytes());
                if (boot.Policy?.AuxKextPolicyHash is { } auxp && auxp != uaklHash)
                {
                    // Say what most likely changed: with consent not in force (csrutil disable sets
                    // CSR_ALLOW_UNAPPROVED_KEXTS) the list names every installed kext, which is no tampering.
                    var cause = mac.UserConsentNotInForce is { } off
                        ? $"user consent is not in force ({off}), so the list now names every installed kext"
                        : "it changed since the last authorized kmd rebuild: an approval or removal, a change of SIP or kext consent, or an edit by hand";
                    refusal = new StartupRefusal("UaklModified",
                        $"auxp mismatch: the user-authorized kext list on disk (SHA-384 {uaklHash}) is not the one the LocalPolicy names ({auxp}): {cause}; no third-party kext loads until an administrator runs kmutil create");
                    trace.Add($"UserApprovedKextList: Failed (UaklModified) {refusal.Detail}");
                }
                else
                {
                    trace.Add("UserApprovedKextList: Passed auxp matches the UAKL");
                    auxKc = boot.AuxKc;
                    receipt = boot.Receipt;
                }
            }
            if (refusal is not null)
            {
                trace.Add("booting without third-party kexts");
            }
        }
        else
        {
            var bytes = SecureBootMac.ReadOptional(mac, SecureBootLayout.AuxKc(p));
            var r = SecureBootMac.ReadOptional(mac, SecureBootLayout.Receipt(p));
            if (bytes is not null && r is not null)
            {
                auxKc = AuxiliaryKernelCollection.Read(bytes, mac.Store.PathOf(SecureBootLayout.AuxKc(p)));
                receipt = KextReceipt.FromBytes(r, mac.Store.PathOf(SecureBootLayout.Receipt(p)));
                trace.Add("Intel: AuxKC read from the data volume (no LocalPolicy)");
            }
        }
        var loaded = ImmutableArray<LoadedKextInfo>.Empty;
        var notLoaded = ImmutableArray<string>.Empty;
        if (auxKc is not null && receipt is not null)
        {
            var result = KernelLinker.LoadAuxKc(auxKc, receipt, SecureBootMac.KpiCatalog, SecureBootMac.Release(next), SecureBootMac.Architecture(next),
                Guid.Parse(next.BootSessionUuid), next.Clock);
            var tags = result.Loaded.ToDictionary(k => k.BundleId, k => k.LoadTag, StringComparer.Ordinal);
            loaded = [.. result.Loaded.Select(k => new LoadedKextInfo(k.LoadTag, k.BundleId, k.Version, k.TeamId, k.CdHash)
            {
                Address = k.LoadAddress, Size = k.Size, Uuid = k.Uuid,
                LinkedAgainst = [.. k.Dependencies.Select(d => tags[d]).OrderDescending()],
            })];
            notLoaded = [.. result.NotLoaded.Select(n => $"{n.BundleId}: {n.Code}: {n.Detail}")];
            var history = result.LoadHistory;
            if (history.Length > 0)
            {
                transaction.StageDatabase((db, tx) =>
                {
                    // One prepared statement for every row, inside the staged copy's single transaction.
                    using var cmd = db.CreateCommand();
                    cmd.Transaction = tx;
                    cmd.CommandText = "INSERT OR REPLACE INTO kext_load_history_v3 (path, team_id, bundle_id, boot_uuid, created_at, last_seen, flags, cdhash) " +
                        "VALUES ($p, $t, $b, $u, COALESCE((SELECT created_at FROM kext_load_history_v3 WHERE path = $p), $c), $l, $f, $h)";
                    var parameters = new[] { "$p", "$t", "$b", "$u", "$c", "$l", "$f", "$h" }.Select(name => cmd.Parameters.Add(name, SqliteType.Text)).ToArray();
                    parameters[6].SqliteType = SqliteType.Integer;
                    cmd.Prepare();
                    foreach (var h in history)
                    {
                        object[] values = [h.Path, h.TeamId, h.BundleId, h.BootUuid, h.CreatedAt, h.LastSeen, h.Flags, h.CdHash];
                        for (var i = 0; i < values.Length; i++)
                        {
                            parameters[i].Value = values[i];
                        }
                        cmd.ExecuteNonQuery();
                    }
                });
            }
        }
        Report = new StartupReport(next.RunningOS.ToString(), next.BootSessionUuid, loaded.Length > 0, refusal, [.. trace], loaded, notLoaded,
            receipt?.Excluded ?? []);
        transaction.StageFile(SecureBootLayout.LastStartup, JsonSerializer.SerializeToUtf8Bytes(Report, SecureBootMac.ReportJson));
    }

    private static MappedFile? Map(Mac mac, string relative, List<MappedFile> mapped)
    {
        var file = MappedFile.OpenOptional(mac.Store.PathOf(relative));
        if (file is not null)
        {
            mapped.Add(file);
        }
        return file;
    }
}

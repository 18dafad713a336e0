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
using KextTrust.Consent;
using KextTrust.Consent.Mdm;
using KextTrust.Consent.Policy;
using KextTrust.Formats;
using KextTrust.Formats.Image4;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;
using KextTrust.Kexts.Signing;
using KextTrust.Machine;
using LocalPolicyRecord = KextTrust.Boot.Policy.LocalPolicy;

using KextTrust.Kexts.Trust;

namespace KextTrust.Boot.SecureBoot;

/// <summary>
/// A simulated Mac, opened under its lock for one command: the one public way to a Mac. It composes the consent side
/// (<see cref="SystemPolicy"/>: install, approve, <c>why</c>, MDM, spctl, the UAKL) with secure boot (the Secure Enclave
/// and LocalPolicy, bputil and csrutil, kmd, iBoot and the kernel), so every Mac it creates on Apple silicon has its Secure
/// Enclave and LocalPolicy, every startup runs iBoot, and every SIP change goes through the LocalPolicy's <c>sip0</c>.
/// </summary>
public sealed partial class Mac : IDisposable
{
    private readonly SystemPolicy _policy;

    private Mac(SystemPolicy policy) => _policy = policy;

    /// <summary>
    /// <c>machine init</c>: creates the Mac and, on Apple silicon, in the same transaction, its Secure Enclave (sealed key and
    /// first Local Policy Nonce, sealed with the hardware UID) and a Full Security LocalPolicy it signed. All or nothing: a
    /// failure at any write leaves no Mac, and init can run again.
    /// </summary>
    /// <param name="directory">The machine folder (must not hold a Mac).</param>
    /// <param name="options">Platform, macOS, users, MDM, SIP, clock, trust root.</param>
    /// <param name="fs">The file-system seam (fault injection in tests).</param>
    /// <param name="verifier">The signature verifier; default <see cref="KextSignatureVerifier"/> with the Mac's trust root.</param>
    public static Mac Init(string directory, MachineInitOptions options, IMachineFileSystem? fs = null, IKextSignatureVerifier? verifier = null) =>
        new(SystemPolicy.Init(directory, options, fs, verifier, StageSecureBoot));

    /// <summary>Opens the Mac in <paramref name="directory"/>, waiting for its lock.</summary>
    public static Mac Open(string directory, IMachineFileSystem? fs = null, IKextSignatureVerifier? verifier = null, TimeSpan? lockTimeout = null) =>
        new(SystemPolicy.Open(directory, fs, verifier, lockTimeout));

    /// <summary>The consent side (syspolicyd): install, approve, decisions, profiles, spctl, the UAKL.</summary>
    public SystemPolicy Consent => _policy;

    /// <summary>The store (folder, lock, transactions).</summary>
    public MachineStore Store => _policy.Store;

    /// <summary>The description as of the last commit.</summary>
    public MachineDescription Description => _policy.Description;

    /// <summary>The machine's extra trusted root, if it has one.</summary>
    internal System.Security.Cryptography.X509Certificates.X509Certificate2? TrustRoot() => _policy.TrustRoot();

    /// <summary>Moves the machine clock forward.</summary>
    public void AdvanceClock(TimeSpan by) => _policy.AdvanceClock(by);

    /// <summary>Upgrades macOS (see <see cref="SystemPolicy.Upgrade"/>).</summary>
    public IReadOnlyList<string> Upgrade(string version) => _policy.Upgrade(version);

    /// <summary>Installs kexts (see <see cref="SystemPolicy.Install"/>).</summary>
    public IReadOnlyList<InstallResult> Install(IEnumerable<string> kextPaths) => _policy.Install(kextPaths);

    /// <summary>The "Allow" button (see <see cref="SystemPolicy.Approve"/>).</summary>
    public ApprovalResult Approve(string? teamId, string? bundleId, string userName, string password) => _policy.Approve(teamId, bundleId, userName, password);

    /// <summary>The load decision for a kext folder or an installed bundle id.</summary>
    public KextTrust.Consent.Policy.KextDecision Why(string kextPathOrBundleId) => _policy.Why(kextPathOrBundleId);

    /// <summary>The load decision for every kext in /Library/Extensions.</summary>
    public IReadOnlyList<KextTrust.Consent.Policy.KextDecision> DecideAll() => _policy.DecideAll();

    /// <summary>The kexts in /Library/Extensions.</summary>
    public IReadOnlyList<SystemPolicy.InstalledKext> InstalledKexts() => _policy.InstalledKexts();

    /// <summary>The KextPolicy database content.</summary>
    public KextPolicyContent ReadKextPolicy() => _policy.ReadPolicy();

    /// <summary>The <c>spctl kext-consent</c> NVRAM state.</summary>
    public KextConsentNvram ReadNvram() => _policy.ReadNvram();

    /// <summary>The installed exclude list.</summary>
    public ExcludeList ReadExcludeList() => _policy.ReadExcludeList();

    /// <summary>Installed configuration profiles.</summary>
    public IReadOnlyList<MdmProfile> ReadProfiles() => _policy.ReadProfiles();

    /// <summary>Delivers a profile over MDM.</summary>
    public ProfileInstallResult PushProfile(string path) => _policy.PushProfile(path);

    /// <summary><c>profiles install</c> (refused for kext policy payloads).</summary>
    public ProfileInstallResult InstallProfileManually(string path) => _policy.InstallProfileManually(path);

    /// <summary><c>spctl kext-consent enable|disable</c> (recoveryOS only).</summary>
    public KextConsentNvram SpctlSetEnabled(bool enabled) => _policy.SpctlSetEnabled(enabled);

    /// <summary><c>spctl kext-consent add|remove TEAMID</c> (recoveryOS only).</summary>
    public KextConsentNvram SpctlTeam(string teamId, bool add) => _policy.SpctlTeam(teamId, add);

    /// <summary>Replaces the exclude list with a newer one.</summary>
    public ExcludeList ReplaceExcludeList(string path) => _policy.ReplaceExcludeList(path);

    /// <summary>Why user consent is not in force on this Mac, or null when it is.</summary>
    public string? UserConsentNotInForce => _policy.UserConsentNotInForce;

    /// <summary>The user-authorized kext list derived from the Mac's state.</summary>
    public KextTrust.Consent.Policy.UserApprovedKextList BuildUakl() => _policy.BuildUakl();

    /// <summary>Releases the machine lock.</summary>
    public void Dispose() => _policy.Dispose();

    private static readonly Lazy<KpiCatalog> Catalog = new(KpiCatalog.Load);

    /// <summary>The volume group UUID (derived from the hardware UID).</summary>
    internal static Guid VolumeGroup(MachineDescription d) => new(SHA256.HashData(Convert.FromHexString(d.HardwareUid)).AsSpan(0, 16));

    /// <summary>Opens this Mac's Secure Enclave.</summary>
    public SecureEnclave OpenEnclave()
    {
        var d = Description;
        if (d.Platform != MacPlatform.AppleSilicon)
        {
            throw new SecureBootException(SecureBootCode.NotOnIntel, "Intel Macs have no Secure Enclave LocalPolicy");
        }
        var dir = Store.PathOf(SecureBootLayout.Enclave);
        if (!File.Exists(Path.Combine(dir, SecureEnclave.KeyFileName)))
        {
            throw new SecureBootException(SecureBootCode.NoLocalPolicy, "this Mac has no Secure Enclave (re-create it with `kextrust machine init`)");
        }
        return SecureEnclave.Open(dir, Convert.FromHexString(d.HardwareUid), d.Ecid);
    }

    /// <summary>Checks that the Mac runs One True Recovery (recoveryOS on Intel) and that <paramref name="user"/> is an admin with this password.</summary>
    internal void AuthorizeRecovery(string user, string password, string what)
    {
        if (!Description.InRecovery)
        {
            throw new SecureBootException(SecureBootCode.NotInOneTrueRecovery,
                $"{what} is allowed only in One True Recovery (hold the power button at startup): from macOS a software-only attacker cannot lower security");
        }
        AuthorizeAdmin(user, password);
    }

    /// <summary>Checks an administrator's password (the Mac's PBKDF2 users).</summary>
    internal void AuthorizeAdmin(string user, string password)
    {
        var u = Description.FindUser(user);
        if (u is null || !u.Password.Verify(password))
        {
            throw new SecureBootException(SecureBootCode.AuthenticationFailed, $"authentication failed for '{user}'");
        }
        if (!u.IsAdmin)
        {
            throw new SecureBootException(SecureBootCode.AdminRequired, $"'{user}' is not an administrator");
        }
    }

    /// <summary>The macOS release of the Mac.</summary>
    internal static MacOSRelease Release(MachineDescription d) => MacOSRelease.ForVersion(d.Version) ?? MacOSRelease.All[^1];

    /// <summary>The last startup's report as written to disk: enum values in kebab-case, as in every JSON document.</summary>
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        TypeInfoResolver = StartupReportJsonContext.Default,
        Converters =
        {
            new JsonStringEnumConverter<TrustStep>(JsonNamingPolicy.KebabCaseLower),
            new JsonStringEnumConverter<TrustOutcome>(JsonNamingPolicy.KebabCaseLower),
            new JsonStringEnumConverter<TrustCode>(JsonNamingPolicy.KebabCaseLower),
        },
    };

    internal static JsonTypeInfo<StartupReport> ReportJson => (JsonTypeInfo<StartupReport>)Json.GetTypeInfo(typeof(StartupReport));

    internal byte[]? ReadOptional(string relative)
    {
        var p = Store.PathOf(relative);
        return File.Exists(p) ? File.ReadAllBytes(p) : null;
    }

    internal static KpiCatalog KpiCatalog => Catalog.Value;
}

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
using KextTrust.Consent.Policy;
using KextTrust.Formats;
using KextTrust.Formats.Image4;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;
using KextTrust.Kexts.Signing;
using KextTrust.Kexts.Trust;
using KextTrust.Machine;
using LocalPolicyRecord = KextTrust.Boot.Policy.LocalPolicy;

namespace KextTrust.Boot.SecureBoot;

/// <summary>Where the secure-boot state lives in the machine folder.</summary>
public static class SecureBootLayout
{
    /// <summary>The Secure Enclave's sealed key and nonce.</summary>
    public const string Enclave = "SEP";
    /// <summary>The Secure Enclave's sealed Local Policy Nonce: replaced only in the same transaction as the LocalPolicy.</summary>
    internal const string EnclaveNonce = Enclave + "/" + SecureEnclave.NonceFileName;
    /// <summary>The Secure Enclave's sealed signing key: written once, at <c>machine init</c>.</summary>
    internal const string EnclaveKey = Enclave + "/" + SecureEnclave.KeyFileName;
    /// <summary>The SEP-signed LocalPolicy (IM4M).</summary>
    public const string LocalPolicy = MachineLayout.Preboot + "/LocalPolicy/LocalPolicy.im4m";
    /// <summary>Apple silicon: the AuxKC folder on the Preboot volume.</summary>
    internal const string AppleSiliconAuxKcFolder = MachineLayout.Preboot + "/boot/AuxiliaryKernelExtensions";
    /// <summary>Intel: the AuxKC lives on the data volume.</summary>
    internal const string IntelAuxKcFolder = "Library/KernelCollections";
    /// <summary>The last startup's report (what iBoot decided, what the kernel loaded).</summary>
    public const string LastStartup = "var/run/kextrust-startup.json";

    /// <summary>The AuxKC folder of the platform.</summary>
    internal static string AuxKcFolder(MacPlatform p) => p == MacPlatform.AppleSilicon ? AppleSiliconAuxKcFolder : IntelAuxKcFolder;
    /// <summary>The AuxKC Mach-O.</summary>
    public static string AuxKc(MacPlatform p) => AuxKcFolder(p) + "/AuxiliaryKernelExtensions.kc";
    /// <summary>The SEP-signed AuxKC Image4 (Apple silicon).</summary>
    internal static string AuxKcImage4(MacPlatform p) => AuxKcFolder(p) + "/AuxiliaryKernelExtensions.img4";
    /// <summary>The kext receipt.</summary>
    public static string Receipt(MacPlatform p) => AuxKcFolder(p) + "/KextReceipt.plist";
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
public sealed class SecureBootException(SecureBootCode code, string message, Exception? inner = null) : KextTrustException(message, inner)
{
    /// <summary>The stable code.</summary>
    public SecureBootCode Code { get; } = code;

    /// <inheritdoc/>
    public override string ErrorCode => Code.ToString();

    /// <summary>A LocalPolicy file that cannot be decoded is unreadable input; everything else is a refusal.</summary>
    public override ErrorKind Kind => Code == SecureBootCode.LocalPolicyMalformed ? ErrorKind.InvalidInput : ErrorKind.Refused;
}

/// <summary>What <c>bputil</c> sets.</summary>
public sealed record BputilRequest(SecurityMode Mode, bool EnableKexts, bool EnableMdm, string User, string Password);

/// <summary>The result of one kmd rebuild (<c>kmutil create</c>).</summary>
public sealed record KmutilCreateResult(AuxKcBuildResult Build, SignedAuxKc? Signed, LocalPolicyRecord? Policy, Sha384Digest UaklHash);

/// <summary>
/// What one startup did: iBoot's trace (the one trace record <c>why</c> and kmd write), the failed check that made the Mac
/// start without third-party kexts if any, what the kernel loaded and did not load, and the kexts kmd left out of the
/// AuxKC the kernel loaded (from its verified receipt, with kmd's code and detail: a refused signature's problem code and page).
/// </summary>
/// <param name="Refusal">iBoot's first failed check (its code: <c>aux-kc-rollback</c>, <c>uakl-modified</c>, …), or null.</param>
/// <param name="Trace">Every check of the startup in order: iBoot's on Apple silicon, else why no AuxKC is checked.</param>
public sealed record StartupReport(string RunningOS, string BootSession, bool ThirdPartyKextsLoaded, TrustCheck? Refusal,
    ImmutableArray<TrustCheck> Trace, ImmutableArray<LoadedKextInfo> Loaded, ImmutableArray<KextNotLoaded> NotLoaded, ImmutableArray<ReceiptExcludedKext> Excluded);

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

/// <summary>Compile-time JSON metadata of the last startup's report (same bytes as the reflection-based serializer, no emitted accessors).</summary>
[JsonSerializable(typeof(StartupReport))]
internal sealed partial class StartupReportJsonContext : JsonSerializerContext;

using System.Globalization;
using System.Text.Json.Serialization;
using KextTrust.Boot.KernelManagement;
using KextTrust.Boot.Policy;
using KextTrust.Boot.Receipt;
using KextTrust.Boot.SecureBoot;
using KextTrust.Machine;

namespace KextTrust.Cli;

// The JSON the secure-boot commands write with --json (camelCase through CliOutput). Codes are the stable names of
// the library's enums (SecureBootCode, TrustCode, TrustStep, TrustOutcome, ConsentCode) as
// kebab-case strings (MachineOption.Kebab), as every JSON document writes enum values. Hashes are lowercase hex; absent values are null.

/// <summary>A refused or failed command with <c>--json</c>: <c>{"error": {...}}</c> on standard output.</summary>
internal sealed record BootErrorJson(BootErrorDetailJson Error);

/// <summary>The error: its stable code, the message, and the process exit code (1 refused, 2 input or usage).</summary>
internal sealed record BootErrorDetailJson(string Code, string Message, int ExitCode);

/// <summary>The LocalPolicy (<c>bputil -d --json</c>; also inside the mode-change and rebuild results), keyed by its 4CCs.</summary>
internal sealed record LocalPolicyJson(
    string Ecid,
    string Lpnh,
    string Vuid,
    string SecurityMode,
    bool Smb0,
    bool Smb1,
    bool Smb2,
    bool Smb3,
    string Sip0,
    string? Auxp,
    string? Auxi,
    string? Auxr,
    bool Verified,
    IReadOnlyList<string> VerificationFailures)
{
    /// <summary>
    /// The JSON of <paramref name="p"/> and of its verification as iBoot performs it (this Mac's Secure Enclave key,
    /// ECID and current nonce): <c>verified</c>, and each failure as <c>code: detail</c> with the code startup's trace gives it
    /// (<c>local-policy-not-signed-by-this-mac: …</c>).
    /// </summary>
    public static LocalPolicyJson From(LocalPolicy p, LocalPolicyVerification check) => new(
        $"0x{p.Ecid:x16}", p.LocalPolicyNonceHash.ToString(), p.VolumeGroupUuid.ToString(), MachineOption.Kebab(p.SecurityMode),
        p.ReducedSecurity, p.PermissiveSecurity, p.ThirdPartyKextsEnabled, p.MdmManagesKexts, Hex((ushort)p.SipConfig),
        p.AuxKextPolicyHash?.ToString(), p.AuxKcImage4Hash?.ToString(), p.AuxKcReceiptHash?.ToString(),
        check.Valid, check.Failures.Select(f => f.ToString()).ToArray());

    /// <summary><c>0x1f</c>.</summary>
    public static string Hex(uint value) => "0x" + value.ToString("x", CultureInfo.InvariantCulture);
}

/// <summary><c>bputil (-f|-g|-n) --json</c>: the new SEP-signed LocalPolicy.</summary>
internal sealed record BputilJson(string Action, LocalPolicyJson Policy);

/// <summary><c>csrutil status --json</c>, and the result of <c>csrutil enable|disable --json</c>.</summary>
/// <param name="Action">status, enable or disable.</param>
/// <param name="Sip">enabled, disabled or custom.</param>
/// <param name="CsrActiveConfig">The csr-active-config bits, <c>0x…</c>.</param>
/// <param name="KextSigningEnforced">False when CSR_ALLOW_UNTRUSTED_KEXTS is set: kmd does not check kext signatures.</param>
/// <param name="UserConsentRequired">False when CSR_ALLOW_UNAPPROVED_KEXTS is set.</param>
/// <param name="PolicySip0">Apple silicon: the LocalPolicy's <c>sip0</c>; null on Intel.</param>
/// <param name="RestartRequired">True after enable/disable: the change takes effect at the next startup.</param>
internal sealed record CsrutilJson(string Action, string Sip, string CsrActiveConfig, bool KextSigningEnforced, bool UserConsentRequired,
    string? PolicySip0, bool RestartRequired);

/// <summary>A kext kmd put into the AuxKC.</summary>
internal sealed record IncludedKextJson(string BundleId, string Version, string TeamId, string CdHash, string Consent, string Path)
{
    /// <summary>The JSON of a receipt entry.</summary>
    public static IncludedKextJson From(ReceiptIncludedKext k) => new(k.BundleId, k.Version, k.TeamId, k.CdHash, MachineOption.Kebab(k.Consent), k.BundlePath);
}

/// <summary>A kext kmd left out, with the stable reason code (<see cref="Kexts.Trust.TrustCode"/>) and its <c>KMErrorDomain</c> code where kmutil has one.</summary>
internal sealed record ExcludedKextJson(string BundleId, string Version, string Path, string Code, int? KmErrorCode, string Detail)
{
    /// <summary>The JSON of a receipt's excluded entry.</summary>
    public static ExcludedKextJson From(ReceiptExcludedKext k) => new(k.BundleId, k.Version, k.BundlePath, MachineOption.Kebab(k.Reason),
        k.KMErrorCode, k.Detail);
}

/// <summary><c>kmutil create --json</c>.</summary>
/// <param name="Included">The kexts in the AuxKC, in load order.</param>
/// <param name="Excluded">The kexts left out, with reasons (as the receipt records them).</param>
/// <param name="AuxKc">The collection written.</param>
/// <param name="Auxp">SHA-384 of the UAKL the AuxKC was built from.</param>
/// <param name="Auxi">SHA-384 of the AuxKC Image4 manifest (Apple silicon; null on Intel).</param>
/// <param name="Auxr">SHA-384 of the kext receipt (Apple silicon; null on Intel).</param>
/// <param name="Policy">The new LocalPolicy (Apple silicon; null on Intel).</param>
internal sealed record KmutilCreateJson(IReadOnlyList<IncludedKextJson> Included, IReadOnlyList<ExcludedKextJson> Excluded, AuxKcJson AuxKc,
    string Auxp, string? Auxi, string? Auxr, LocalPolicyJson? Policy, bool RestartRequired)
{
    /// <summary>The JSON of a rebuild written to <paramref name="auxKcPath"/>, with the new LocalPolicy as verified from disk.</summary>
    public static KmutilCreateJson From(KmutilCreateResult r, string auxKcPath, LocalPolicyVerification? policyCheck)
    {
        var receipt = ReceiptJson.From(r.Build.Receipt);
        return new(receipt.Included, receipt.Excluded, new AuxKcJson(auxKcPath, r.Build.AuxKc.Kexts.Length, r.Build.AuxKc.Bytes.Length, r.Build.Measurement.ToString()),
            r.UaklHash.ToString(), r.Signed?.AuxKcImage4Hash.ToString(), r.Signed?.ReceiptHash.ToString(),
            r.Policy is { } p && policyCheck is { } check ? LocalPolicyJson.From(p, check) : null, true);
    }
}

/// <summary>The AuxKC file: where, how many fileset entries, its size and SHA-384.</summary>
internal sealed record AuxKcJson(string Path, int Kexts, long Bytes, string Sha384);

/// <summary>The kext receipt: the kexts included, and those left out with the reason.</summary>
internal sealed record ReceiptJson(string AuxKcSha384, string UaklSha384, string Sip, IReadOnlyList<IncludedKextJson> Included, IReadOnlyList<ExcludedKextJson> Excluded)
{
    /// <summary>The JSON of <paramref name="r"/>.</summary>
    public static ReceiptJson From(KextReceipt r) => new(r.AuxKcMeasurement.ToString(), r.UaklHash.ToString(), LocalPolicyJson.Hex((ushort)r.Sip),
        [.. r.Included.Select(IncludedKextJson.From)],
        [.. r.Excluded.Select(ExcludedKextJson.From)]);
}

/// <summary>A fileset entry of the AuxKC.</summary>
internal sealed record FilesetEntryJson(string BundleId, string Version, string Path);

/// <summary><c>kmutil inspect --json</c>: the AuxKC's fileset entries and the receipt next to it (null when absent).</summary>
internal sealed record KmutilInspectJson(AuxKcJson? AuxKc, IReadOnlyList<FilesetEntryJson> Entries, ReceiptJson? Receipt);

/// <summary>A loaded kext (<c>startup --json</c>, <c>kmutil showloaded --json</c>).</summary>
internal sealed record LoadedKextJson(int LoadTag, string BundleId, string Version, string TeamId, string CdHash);

/// <summary>A kext of the AuxKC the kernel did not load: its code (<c>missing-library</c>, <c>unresolved-symbols</c>, …) and the detail.</summary>
internal sealed record NotLoadedKextJson(string BundleId, string Code, int? KmErrorCode, string Detail);

/// <summary><c>startup --json</c> (and <c>kmutil showloaded --json</c>: the last startup, all null/empty before the first).</summary>
/// <param name="RunningOS">mac-os, recovery-os or one-true-recovery (as <c>machine show --json</c>).</param>
/// <param name="BootSession">The boot session UUID.</param>
/// <param name="ThirdPartyKextsLoaded">True when the kernel loaded at least one kext from the AuxKC.</param>
/// <param name="Refusal">iBoot's failed check (the AuxKC, the UAKL or the LocalPolicy refused), or null.</param>
/// <param name="Loaded">The kexts the kernel loaded, in load order.</param>
/// <param name="NotLoaded">The AuxKC kexts the kernel did not load, with their codes.</param>
/// <param name="Trace">iBoot's checks in order (the record <c>why</c> writes as its steps).</param>
/// <param name="Excluded">The kexts kmd left out of the AuxKC the kernel loaded, from its verified receipt (as <c>kmutil create --json</c> lists them).</param>
internal sealed record StartupJson(string? RunningOS, string? BootSession, bool ThirdPartyKextsLoaded, TrustCheckJson? Refusal,
    IReadOnlyList<LoadedKextJson> Loaded, IReadOnlyList<NotLoadedKextJson> NotLoaded, IReadOnlyList<TrustCheckJson> Trace, IReadOnlyList<ExcludedKextJson> Excluded)
{
    /// <summary>The JSON of a startup report (null: no startup yet).</summary>
    public static StartupJson From(StartupReport? r, string? runningOS) => r is null
        ? new(runningOS, null, false, null, [], [], [], [])
        : new(runningOS, r.BootSession, r.ThirdPartyKextsLoaded, r.Refusal is { } f ? TrustCheckJson.From(f) : null,
            [.. r.Loaded.Select(k => new LoadedKextJson(k.LoadTag, k.BundleId, k.Version, k.TeamId, k.CdHash))],
            [.. r.NotLoaded.Select(n => new NotLoadedKextJson(n.BundleId, MachineOption.Kebab(n.Code), n.KMErrorCode, n.Detail))],
            [.. r.Trace.Select(TrustCheckJson.From)],
            [.. (r.Excluded.IsDefault ? [] : r.Excluded).Select(ExcludedKextJson.From)]);
}

/// <summary><c>applepay status --json</c>.</summary>
/// <param name="Available">True when Apple Pay can be used.</param>
/// <param name="Reason">no-aux-kc, receipt-lists-no-kexts or third-party-kexts-loaded.</param>
/// <param name="InterferingKexts">The receipt's kexts that could interfere.</param>
internal sealed record ApplePayJson(bool Available, string Reason, IReadOnlyList<IncludedKextJson> InterferingKexts)
{
    /// <summary>The JSON of <paramref name="s"/>.</summary>
    public static ApplePayJson From(ApplePayStatus s) => new(s.Available, MachineOption.Kebab(s.Reason),
        [.. s.InterferingKexts.Select(IncludedKextJson.From)]);
}

/// <summary>
/// Compile-time JSON metadata of the secure-boot commands' <c>--json</c> output: no reflection and no emitted
/// accessors at run time (the naming policy, the enum converter and the encoder still come from
/// <see cref="CliOutput"/>'s options, so the bytes do not change).
/// </summary>
[JsonSerializable(typeof(BootErrorJson))]
[JsonSerializable(typeof(BputilJson))]
[JsonSerializable(typeof(CsrutilJson))]
[JsonSerializable(typeof(KmutilCreateJson))]
[JsonSerializable(typeof(KmutilInspectJson))]
[JsonSerializable(typeof(StartupJson))]
[JsonSerializable(typeof(ApplePayJson))]
internal sealed partial class BootJsonContext : JsonSerializerContext;

using System.Text.Json;
using KextTrust.Kexts.Kpi;
using KextTrust.Kexts.Signing;

namespace KextTrust.Kexts.Trust;

/// <summary>
/// The one vocabulary of reasons a kext does not load (or loads with a note), shared by the load decision (<c>why</c>),
/// kmd (and the kext receipt), iBoot/startup, the kernel and the audit. One fact has one code everywhere: a kext without
/// a slice for the Mac's architecture is <see cref="MissingArchitecture"/> (<c>KMErrorDomain</c> 71) in <c>why</c>, in
/// kmd's exclusion and receipt, and in the audit. JSON and text write the kebab-case name (<see cref="TrustCodes.Name"/>);
/// the receipt writes the member name. Where macOS reports the same condition with a <c>KMErrorDomain</c> code, it is
/// <see cref="TrustCodes.KMErrorCode"/> (one table, with its sources).
/// </summary>
public enum TrustCode
{
    // Bundle and executable.

    /// <summary>Info.plist missing or unreadable, no bundle id or (valid) version, or another bundle problem (<c>KMErrorDomain</c> 30).</summary>
    MalformedBundle,
    /// <summary>Another candidate has the same bundle id and a higher version (or an earlier path).</summary>
    DuplicateBundleId,
    /// <summary>Info.plist names a CFBundleExecutable that is not in the bundle.</summary>
    MissingExecutable,
    /// <summary>The executable is not a well-formed kext Mach-O that can be placed in a fileset.</summary>
    MalformedExecutable,
    /// <summary>The executable (or the slice the platform's kernel loads) is not an <c>MH_KEXT_BUNDLE</c>.</summary>
    NotAKext,
    /// <summary>A slice that is no kext beside the one the platform's kernel loads: ignored, as xnu does (a note).</summary>
    IgnoredSlice,
    /// <summary>No slice for the Mac's architecture: arm64e on Apple silicon (a plain arm64 slice is not one), x86_64 on Intel (<c>KMErrorDomain</c> 71).</summary>
    MissingArchitecture,
    /// <summary>No such Mac: macOS 10.15 never ran on Apple silicon (a note).</summary>
    NotApplicable,

    // Policy.

    /// <summary>On the exclude list (AppleKextExcludeList).</summary>
    ExcludeListed,
    /// <summary>Ownership or permissions, or no matching validated copy in /Library/StagedExtensions (<c>KMErrorDomain</c> 30).</summary>
    ValidationFailed,
    /// <summary>Unsigned while SIP enforces kext signatures (<c>KMErrorDomain</c> 29).</summary>
    SignatureUnsigned,
    /// <summary>Ad hoc signed while SIP enforces kext signatures (<c>KMErrorDomain</c> 29).</summary>
    SignatureAdHoc,
    /// <summary>The signature does not validate, or does not meet the kext-load requirement (<c>KMErrorDomain</c> 29).</summary>
    SignatureInvalid,
    /// <summary>A valid signature whose certificate lacks the kext-signing authority (<c>KMErrorDomain</c> 29).</summary>
    NotKextSigningAuthority,
    /// <summary>The kext needs user consent and has none; for kmd, its bundle id is not in the UAKL (<c>KMErrorDomain</c> 27).</summary>
    NotApproved,
    /// <summary>kmd: the bundle id is in the UAKL, but for another team than the signature's.</summary>
    UaklTeamMismatch,
    /// <summary>Uses a KPI unsupported on the Mac's macOS release (refuses); the audit adds the rule: <c>unsupported-kpi:&lt;RULE&gt;</c>.</summary>
    UnsupportedKpi,
    /// <summary>Uses a deprecated KPI (legacy system extension alert; a warning): <c>deprecated-kpi:&lt;RULE&gt;</c>.</summary>
    DeprecatedKpi,
    /// <summary>An unsupported KPI the deprecation footnote exempts (SIP disabled or MDM approval; a warning): <c>kpi-not-enforced:&lt;RULE&gt;</c>.</summary>
    KpiNotEnforced,

    // Libraries and linking.

    /// <summary>A declared library is neither a KPI of this release, an Apple family, nor another kext of the collection.</summary>
    MissingLibrary,
    /// <summary>A library exists but not in a version compatible with the one requested.</summary>
    LibraryVersion,
    /// <summary>kmd: a library is another third-party kext that was itself left out.</summary>
    DependencyExcluded,
    /// <summary>The kernel: a third-party library did not load (or the libraries form a cycle).</summary>
    DependencyNotLoaded,
    /// <summary>kmd: part of (or depends on) a cycle of OSBundleLibraries.</summary>
    DependencyCycle,
    /// <summary>Some undefined symbols are exported by no declared library.</summary>
    UnresolvedSymbols,

    // iBoot.

    /// <summary>The LocalPolicy does not decode (bad DER, unknown or mistyped properties).</summary>
    LocalPolicyMalformed,
    /// <summary>The LocalPolicy is not signed by this Mac's Secure Enclave (modified, or another Mac's).</summary>
    LocalPolicyNotSignedByThisMac,
    /// <summary>The LocalPolicy is personalized for another ECID.</summary>
    LocalPolicyForAnotherMac,
    /// <summary>The LocalPolicy carries an old nonce hash: a replayed older policy.</summary>
    LocalPolicyReplayed,
    /// <summary>The LocalPolicy's settings contradict each other.</summary>
    LocalPolicyInconsistent,
    /// <summary>The LocalPolicy names an AuxKC but there is no AuxKC Image4.</summary>
    AuxKcImage4Missing,
    /// <summary>The AuxKC Image4 does not decode or is not an <c>auxk</c> Image4.</summary>
    AuxKcImage4Malformed,
    /// <summary>The AuxKC Image4 is not signed by the LocalPolicy's SEP key.</summary>
    AuxKcImage4NotSignedByThisMac,
    /// <summary>The AuxKC Image4 is personalized for another ECID.</summary>
    AuxKcImage4ForAnotherMac,
    /// <summary>A SEP-signed AuxKC Image4 that is not the one the LocalPolicy names (<c>auxi</c>): an older AuxKC (rollback).</summary>
    AuxKcRollback,
    /// <summary>The Image4's payload does not match its signed digest.</summary>
    AuxKcImage4PayloadModified,
    /// <summary>The AuxKC file differs from the signed payload (modified, or kexts added by hand).</summary>
    AuxKcModified,
    /// <summary>The signed AuxKC is not a well-formed kernel collection.</summary>
    AuxKcMalformed,
    /// <summary>There is no kext receipt.</summary>
    ReceiptMissing,
    /// <summary>SHA-384 of the receipt is not the LocalPolicy's <c>auxr</c>.</summary>
    ReceiptModified,
    /// <summary>The LocalPolicy names a user-approved kext list (<c>auxp</c>) but there is none.</summary>
    UaklMissing,
    /// <summary>SHA-384 of the user-approved kext list is not the LocalPolicy's <c>auxp</c> (changed since the last authorized kmd rebuild, or edited by hand).</summary>
    UaklModified,

    // The kernel.

    /// <summary>The AuxKC is not the one the receipt describes (its SHA-384 differs), or not for this architecture: nothing loads.</summary>
    ReceiptMismatch,
    /// <summary>The kext is in the AuxKC but not in the receipt.</summary>
    NotInReceipt,
}

/// <summary>The names and <c>KMErrorDomain</c> numbers of <see cref="TrustCode"/>s, in one place.</summary>
public static class TrustCodes
{
    /// <summary>
    /// The <c>KMErrorDomain</c> code macOS (kmutil, kernelmanagerd) reports for the same condition, or null where none is
    /// known. Only numbers seen in real kmutil error captures are used:
    /// <list type="bullet">
    /// <item>27 — <c>Error Domain=KMErrorDomain Code=27 "Extension with identifiers … not approved to load. Please approve using
    /// System Settings."</c> (kmutil load of an unapproved kext; the number is also kext_tools' <c>kOSKextReturnSystemPolicy</c>,
    /// <c>libkern_kext_err(0x1b)</c>, that kextload reports as "error 27" for a blocked kext).</item>
    /// <item>29 — <c>Code=29 "Authenticating extension failed: Bad code signature"</c> (kmutil load of an unsigned or ad-hoc
    /// signed kext with SIP on).</item>
    /// <item>30 — <c>Code=30 … "Invalid ownership (501:0) should be (0:0)"</c> and <c>Code=30 "CFBundleVersion must be a valid
    /// kext version"</c> (kmutil's validation of ownership, permissions and Info.plist).</item>
    /// <item>71 — <c>Code=71 "Incompatible architecture: Binary is for x86_64, but needed arm64"</c> (an x86_64-only kext on an
    /// Apple-silicon Mac).</item>
    /// </list>
    /// </summary>
    public static int? KMErrorCode(this TrustCode code) => code switch
    {
        TrustCode.NotApproved => 27,
        TrustCode.SignatureUnsigned or TrustCode.SignatureAdHoc or TrustCode.SignatureInvalid or TrustCode.NotKextSigningAuthority => 29,
        TrustCode.ValidationFailed or TrustCode.MalformedBundle => 30,
        TrustCode.MissingArchitecture => 71,
        _ => null,
    };

    /// <summary>The stable kebab-case name every JSON document and text output writes: <c>missing-architecture</c>.</summary>
    public static string Name(this TrustCode code) => Kebab(code);

    /// <summary>The name with its argument where the code has one (the audit's KPI rule): <c>unsupported-kpi:KPI-KAUTH</c>.</summary>
    public static string Name(this TrustCode code, string? argument) => argument is null ? code.Name() : $"{code.Name()}:{argument}";

    /// <summary>
    /// The code the one signature verdict gives when SIP refuses it (null when it loads), as <c>why</c>, kmd and the audit
    /// report it: unsigned, ad hoc, no kext-signing authority, or invalid (including a kext-load requirement not met).
    /// </summary>
    public static TrustCode? ForSignature(KextSignatureVerification signature)
    {
        ArgumentNullException.ThrowIfNull(signature);
        return signature.Refusal is not { } refusal ? null : ForSignature(signature.Status, refusal.Code);
    }

    /// <summary>The code for a refused signature's status and refusal code (<see cref="KextSignatureRefusal.Code"/>).</summary>
    public static TrustCode ForSignature(KextSignatureStatus status, string refusalCode) => status switch
    {
        KextSignatureStatus.Unsigned => TrustCode.SignatureUnsigned,
        KextSignatureStatus.AdHoc => TrustCode.SignatureAdHoc,
        KextSignatureStatus.Valid when refusalCode == KextSignatureRefusal.NotKextSigningAuthorityCode => TrustCode.NotKextSigningAuthority,
        _ => TrustCode.SignatureInvalid,
    };

    /// <summary>
    /// How the KPI step ends for one release's verdict, in <c>why</c> and kmd as in the audit's reasons: failed with
    /// <see cref="TrustCode.UnsupportedKpi"/> when an unsupported KPI refuses the kext; a warning with
    /// <see cref="TrustCode.KpiNotEnforced"/> when one is exempt (SIP's kext bit off, MDM approval), else with
    /// <see cref="TrustCode.DeprecatedKpi"/> when a KPI is deprecated there; passed otherwise.
    /// </summary>
    public static (TrustOutcome Outcome, TrustCode? Code) ForKpi(KpiReleaseVerdict verdict)
    {
        ArgumentNullException.ThrowIfNull(verdict);
        return verdict.BlocksLoad ? (TrustOutcome.Failed, TrustCode.UnsupportedKpi)
            : verdict.Findings.Any(f => f.Status == KpiSupportStatus.Unsupported) ? (TrustOutcome.Warning, TrustCode.KpiNotEnforced)
            : verdict.Findings.Any(f => f.Status == KpiSupportStatus.Deprecated) ? (TrustOutcome.Warning, TrustCode.DeprecatedKpi)
            : (TrustOutcome.Passed, null);
    }

    /// <summary>An enum value's kebab-case name (the one spelling of codes, steps and statuses in this library).</summary>
    internal static string Kebab<T>(T value) where T : struct, Enum => JsonNamingPolicy.KebabCaseLower.ConvertName(value.ToString());
}

using KextTrust.Kexts.Signing;

namespace KextTrust.Consent.Policy;

/// <summary>The checks of a load decision, in the order they run (kext_tools <c>authenticateKext</c>, then consent, then the KPI audit).</summary>
public enum DecisionCheck
{
    /// <summary>AppleKextExcludeList.</summary>
    ExcludeList,
    /// <summary>A slice for this Mac's architecture.</summary>
    Architecture,
    /// <summary>Ownership and permissions (modelled on Unix mode bits: no group/other write).</summary>
    FilesystemValidation,
    /// <summary>The code signature, enforced when SIP's kext bit is on.</summary>
    Signature,
    /// <summary>The staged copy in /Library/StagedExtensions (SIP on only).</summary>
    Staging,
    /// <summary>User-Approved Kernel Extension Loading.</summary>
    Consent,
    /// <summary>Deprecated / unsupported KPIs (Apple's deprecation rules and their footnote).</summary>
    DeprecatedKpi,
}

/// <summary>How one check ended.</summary>
public enum CheckOutcome
{
    /// <summary>Passed.</summary>
    Pass,
    /// <summary>Failed: the kext does not load.</summary>
    Fail,
    /// <summary>Not enforced in this configuration (e.g. SIP off).</summary>
    NotEnforced,
}

/// <summary>Where the consent for a kext comes from.</summary>
public enum ConsentSource
{
    /// <summary>No consent: the kext needs approval.</summary>
    None,
    /// <summary>This macOS (10.12 or earlier) has no user consent.</summary>
    NotRequiredBeforeHighSierra,
    /// <summary>SIP's CSR_ALLOW_UNAPPROVED_KEXTS bit is set.</summary>
    NotRequiredCsrUnapprovedKexts,
    /// <summary>On 10.13.0–10.13.1, MDM enrollment disables user consent.</summary>
    MdmEnrollmentDisablesConsent,
    /// <summary><c>spctl kext-consent disable</c> from recoveryOS.</summary>
    SpctlConsentDisabled,
    /// <summary>An MDM kernel-extension-policy payload.</summary>
    Mdm,
    /// <summary>A team added with <c>spctl kext-consent add</c> from recoveryOS.</summary>
    Spctl,
    /// <summary>It replaced a previously approved kext (same team and bundle id).</summary>
    Replacement,
    /// <summary>Installed on 10.12 or earlier and present at the upgrade.</summary>
    Grandfathered,
    /// <summary>A user pressed "Allow" (per team id).</summary>
    User,
}

/// <summary>How consent names a kext's signature (from the one verdict, <see cref="KextSignatureVerification"/>).</summary>
public static class ConsentSignature
{
    /// <summary>
    /// <c>developer-id</c> (loads where SIP enforces signatures), <c>unsigned</c>, <c>ad-hoc</c>, or <c>invalid</c> (present but
    /// refused: it does not validate, or it is valid without the kext-signing authority or the kext requirement).
    /// </summary>
    public static string Kind(KextSignatureVerification signature)
    {
        ArgumentNullException.ThrowIfNull(signature);
        return signature.Refusal is null ? "developer-id"
            : signature.Status is KextSignatureStatus.Unsigned or KextSignatureStatus.AdHoc ? KextSignatureRefusal.CodeName(signature.Status)
            : "invalid";
    }
}

/// <summary>One check of a decision with its evidence (rows, payload UUIDs, team ids, rules).</summary>
public sealed record DecisionStep(DecisionCheck Check, CheckOutcome Outcome, ConsentCode Code, string Rule, IReadOnlyDictionary<string, string> Evidence);

/// <summary>Consent found for a kext, with its evidence.</summary>
public sealed record ConsentFinding(ConsentSource Source, string Rule, IReadOnlyDictionary<string, string> Evidence);

/// <summary>
/// The decision for one kext on one Mac: allowed or blocked, by which rule (the first failing check), with the
/// trace of every check in order.
/// </summary>
public sealed record KextDecision(
    string BundleId,
    string Version,
    string Path,
    bool Allowed,
    ConsentCode Code,
    string Reason,
    ConsentSource ConsentSource,
    KextSignatureVerification Signature,
    IReadOnlyList<DecisionStep> Steps);

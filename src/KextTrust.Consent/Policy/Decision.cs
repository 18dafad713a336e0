using KextTrust.Kexts.Signing;
using KextTrust.Kexts.Trust;

namespace KextTrust.Consent.Policy;

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

/// <summary>Consent found for a kext, with its evidence.</summary>
internal sealed record ConsentFinding(ConsentSource Source, string Rule, IReadOnlyDictionary<string, string> Evidence);

/// <summary>
/// The decision for one kext on one Mac: allowed or blocked, by which rule (the first failing check, whose code is
/// <paramref name="Code"/>), with the trace of every check in order (kext_tools <c>authenticateKext</c>: exclude list,
/// architecture, filesystem validation, signature, staging; then consent, then the KPI rules), each with its evidence.
/// </summary>
/// <param name="Code">The first failed check's code (the one vocabulary kmd and the audit share), or null when allowed.</param>
public sealed record KextDecision(
    string BundleId,
    string Version,
    string Path,
    bool Allowed,
    TrustCode? Code,
    string Reason,
    ConsentSource ConsentSource,
    KextSignatureVerification Signature,
    IReadOnlyList<TrustCheck> Steps);

using KextTrust.Formats;
using KextTrust.Formats.CodeSigning;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Trust;

namespace KextTrust.Kexts.Audit;

/// <summary>What is known about a kext's code signature.</summary>
public enum KextSignatureState
{
    /// <summary>No embedded code signature.</summary>
    Unsigned,

    /// <summary>Signed ad hoc (CS_ADHOC, no CMS): no identity, never accepted for a kext with SIP on.</summary>
    AdHoc,

    /// <summary>A CMS signature is present but nobody verified it (presence read only).</summary>
    CmsNotVerified,

    /// <summary>Verified: a valid signature chaining to Apple.</summary>
    Valid,

    /// <summary>Verified and found invalid (broken hashes, bad chain, tampered).</summary>
    Invalid,
}

/// <summary>
/// The audit's signature input: a fact about the bundle's signature, from the bundle verifier when plugged in
/// (<see cref="KextAuditOptions.SignatureFacts"/>) or from <see cref="KextSignaturePresence"/>.
/// </summary>
/// <param name="State">Unsigned, ad hoc, CMS not verified, valid or invalid.</param>
/// <param name="KextSigningAuthorized">The signing certificate carries the Developer ID kext-signing authority
/// (only meaningful for <see cref="KextSignatureState.Valid"/>).</param>
/// <param name="TeamId">Team identifier the signature claims, when any.</param>
/// <param name="Detail">Who established the fact and how, for people.</param>
public sealed record KextSignatureFacts(KextSignatureState State, bool KextSigningAuthorized, string? TeamId, string Detail)
{
    /// <summary>
    /// True when these facts prove the kext lacks a Developer ID kext signature (unsigned, ad hoc, invalid, or valid
    /// without kext-signing authority). <see cref="KextSignatureState.CmsNotVerified"/> proves nothing either way.
    /// </summary>
    public bool LacksKextSignature => State switch
    {
        KextSignatureState.Unsigned or KextSignatureState.AdHoc or KextSignatureState.Invalid => true,
        KextSignatureState.Valid => !KextSigningAuthorized,
        _ => false,
    };

    /// <summary>
    /// The code the audit refuses with when <see cref="LacksKextSignature"/>: the one verdict's (<see cref="TrustCodes.ForSignature(Signing.KextSignatureVerification)"/>,
    /// as <c>why</c> and kmd report it) when the facts come from it, else by state — unsigned, ad hoc, invalid, or valid
    /// without the kext-signing authority.
    /// </summary>
    internal TrustCode RefusalCode => VerdictCode ?? State switch
    {
        KextSignatureState.Unsigned => TrustCode.SignatureUnsigned,
        KextSignatureState.AdHoc => TrustCode.SignatureAdHoc,
        KextSignatureState.Valid => TrustCode.NotKextSigningAuthority,
        _ => TrustCode.SignatureInvalid,
    };

    /// <summary>The one verdict's refusal code when the facts come from it (<see cref="From"/>).</summary>
    private TrustCode? VerdictCode { get; init; }

    /// <summary>
    /// The audit's facts from the one signature verdict (<see cref="Signing.KextSignatureVerifier"/>): authorized only when
    /// the verdict lets a kext load where SIP enforces signatures; the detail is the verdict's summary, so a refusal names
    /// the same problem code and page as <c>verify</c>, <c>why</c> and kmd.
    /// </summary>
    public static KextSignatureFacts From(Signing.KextSignatureVerification verdict)
    {
        ArgumentNullException.ThrowIfNull(verdict);
        var state = verdict.Status switch
        {
            Signing.KextSignatureStatus.Valid => KextSignatureState.Valid,
            Signing.KextSignatureStatus.AdHoc => KextSignatureState.AdHoc,
            Signing.KextSignatureStatus.Unsigned => KextSignatureState.Unsigned,
            _ => KextSignatureState.Invalid,
        };
        return new KextSignatureFacts(state, verdict.Refusal is null, verdict.TeamId, "verified: " + verdict.Summary) { VerdictCode = TrustCodes.ForSignature(verdict) };
    }
}

/// <summary>
/// Reads what a kext executable's embedded signature is, without verifying it: absent, ad hoc (CodeDirectory
/// CS_ADHOC flag, no CMS), or carrying a CMS blob ("CMS not verified").
/// </summary>
internal static class KextSignaturePresence
{
    /// <summary>Facts for one slice.</summary>
    public static KextSignatureFacts Read(MachOSlice slice, string? sourceName)
    {
        ArgumentNullException.ThrowIfNull(slice);
        if (slice.CodeSignature is null)
        {
            return new KextSignatureFacts(KextSignatureState.Unsigned, false, null, "no embedded code signature");
        }
        try
        {
            var sig = EmbeddedSignature.Parse(slice.CodeSignatureData, sourceName);
            var cd = sig.CodeDirectory;
            if (sig.Signature is null || (cd.Flags & CodeDirectoryFlags.Adhoc) != 0)
            {
                return new KextSignatureFacts(KextSignatureState.AdHoc, false, cd.TeamId, "ad-hoc signature (no CMS signer)");
            }
            return new KextSignatureFacts(KextSignatureState.CmsNotVerified, false, cd.TeamId, "CMS signature present, not verified");
        }
        catch (KextTrustFormatException ex)
        {
            return new KextSignatureFacts(KextSignatureState.Invalid, false, null, "malformed code signature: " + ex.Message);
        }
    }

    /// <summary>
    /// Facts for a whole executable: the weakest slice decides (an unsigned slice makes the kext unsigned), since the
    /// kernel checks the slice it loads and every slice must carry the signature.
    /// </summary>
    public static KextSignatureFacts Combine(IReadOnlyList<KextSignatureFacts> slices)
    {
        ArgumentNullException.ThrowIfNull(slices);
        if (slices.Count == 0)
        {
            return new KextSignatureFacts(KextSignatureState.Unsigned, false, null, "no executable slices");
        }
        static int Rank(KextSignatureState s) => s switch
        {
            KextSignatureState.Invalid => 0,
            KextSignatureState.Unsigned => 1,
            KextSignatureState.AdHoc => 2,
            KextSignatureState.CmsNotVerified => 3,
            _ => 4,
        };
        return slices.MinBy(s => Rank(s.State))!;
    }
}

using KextTrust.Formats;
using KextTrust.Formats.CodeSigning;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Signing;

namespace KextTrust.Consent.Signing;

/// <summary>What kind of signature a kext carries.</summary>
public enum KextSignatureKind
{
    /// <summary>No code signature (or a codeless kext with no _CodeSignature).</summary>
    Unsigned,
    /// <summary>Ad-hoc: a CodeDirectory without CMS.</summary>
    AdHoc,
    /// <summary>A CMS signature that verifies and meets the third-party kext requirement (Developer ID + kext OID).</summary>
    DeveloperId,
    /// <summary>A CMS signature that does not verify or does not meet the kext requirement.</summary>
    Invalid,
}

/// <summary>The signature facts consent needs about one kext.</summary>
/// <param name="Kind">Signed, ad-hoc, unsigned or invalid.</param>
/// <param name="TeamId">Team id (leaf subject OU / CodeDirectory team) or null.</param>
/// <param name="DeveloperName">Subject CN of the signing certificate, shown in the alert.</param>
/// <param name="CdHash">Hex cdhash of the slot-0 CodeDirectory of the first slice, when signed.</param>
/// <param name="Detail">Why it is invalid, or a summary.</param>
public sealed record KextSignatureFacts(KextSignatureKind Kind, string? TeamId, string? DeveloperName, string? CdHash, string Detail)
{
    /// <summary>The team id the KextPolicy database uses: the signer's team for valid signatures, '' otherwise.</summary>
    public string PolicyTeamId => Kind == KextSignatureKind.DeveloperId ? TeamId ?? "" : "";
}

/// <summary>
/// The seam through which consent learns a kext's signature facts. <see cref="MachOKextSignatureVerifier"/>
/// implements it over the CMS verifier of <c>KextTrust.Kexts.Signing</c>; a full bundle-level verifier
/// (sealed resources, every architecture) plugs in here.
/// </summary>
public interface IKextSignatureVerifier
{
    /// <summary>Verifies the kext bundle at <paramref name="bundlePath"/>.</summary>
    KextSignatureFacts Verify(string bundlePath);
}

/// <summary>
/// Verifies the embedded signature of the kext's executable: every slice must carry one; the first slice's
/// CMS is checked by <see cref="CodeSignatureVerifier"/> (pinned Apple Root CA, plus an optional test root)
/// and the leaf must carry the Developer ID Application and Developer ID kext-signing extensions.
/// Resource sealing (<c>_CodeSignature/CodeResources</c>) is not checked here.
/// </summary>
public sealed class MachOKextSignatureVerifier(CodeSignatureVerifierOptions? options = null) : IKextSignatureVerifier
{
    /// <inheritdoc/>
    public KextSignatureFacts Verify(string bundlePath)
    {
        var bundle = KextBundle.Open(bundlePath);
        if (bundle.ExecutablePath is null || !File.Exists(bundle.ExecutablePath))
        {
            return new(KextSignatureKind.Unsigned, null, null, null, "codeless kext (no executable to sign)");
        }
        try
        {
            using var file = MachOFile.Open(bundle.ExecutablePath);
            if (file.Slices.Any(s => s.CodeSignature is null))
            {
                return new(KextSignatureKind.Unsigned, null, null, null, "the executable has no code signature");
            }
            var slice = file.Slices[0];
            var sig = EmbeddedSignature.Parse(slice.CodeSignatureData, bundle.ExecutablePath);
            var cdhash = Convert.ToHexStringLower(sig.CodeDirectory.ComputeCdHash());
            var v = CodeSignatureVerifier.Verify(sig, options);
            if (v.Has(SignatureProblemCode.NoCmsSignature))
            {
                return new(KextSignatureKind.AdHoc, sig.CodeDirectory.TeamId, null, cdhash, "ad-hoc signature (no CMS)");
            }
            if (!v.IsValid)
            {
                return new(KextSignatureKind.Invalid, v.Signer?.TeamId, v.Signer?.CommonName, cdhash, string.Join("; ", v.Problems.Select(p => $"{p.Code}: {p.Detail}")));
            }
            if (v.Signer is not { IsDeveloperIdApplication: true, IntermediateIsDeveloperIdCa: true, HasKextSigningAuthority: true })
            {
                return new(KextSignatureKind.Invalid, v.Signer?.TeamId, v.Signer?.CommonName, cdhash, "the signer does not meet the third-party kext requirement (Developer ID CA, Developer ID Application, kext-signing OID 1.2.840.113635.100.6.1.18)");
            }
            return new(KextSignatureKind.DeveloperId, v.Signer.TeamId, v.Signer.CommonName, cdhash, $"Developer ID signed, team {v.Signer.TeamId}");
        }
        catch (KextTrustFormatException e)
        {
            return new(KextSignatureKind.Invalid, null, null, null, "malformed executable or signature: " + e.Message);
        }
    }
}

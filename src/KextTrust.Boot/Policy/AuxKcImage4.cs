using KextTrust.Boot.Enclave;
using KextTrust.Formats.Image4;

namespace KextTrust.Boot.Policy;

/// <summary>
/// The SEP-signed Image4 of an Auxiliary Kernel Collection. The IM4P (type <c>auxk</c>) holds the
/// <b>whole AuxKC file</b> as its payload, so the manifest's digest covers every byte iBoot maps. The
/// IM4M's MANP holds <c>ECID</c> (personalized, but no nonce: a new LocalPolicy nonce does not
/// invalidate the AuxKC; the policy's <c>auxi</c> binds the pair instead) and its object set
/// <c>auxk</c> holds <c>DGST</c> = SHA-384 of the whole IM4P DER element. iBoot alone verifies it, step by step with
/// the one trace's codes (<see cref="Startup.Iboot"/>: <c>aux-kc-image4-*</c>, <c>aux-kc-rollback</c>).
/// </summary>
internal static class AuxKcImage4
{
    /// <summary>The IM4P type and manifest object 4CC.</summary>
    public const string PayloadType = "auxk";

    /// <summary>The digest property 4CC.</summary>
    public const string DigestTag = "DGST";

    /// <summary>Wraps the AuxKC bytes in an IM4P and has the SEP sign its digest into a full IMG4.</summary>
    public static Img4 Create(SecureEnclave secureEnclave, ReadOnlySpan<byte> auxKc, string description = "AuxiliaryKernelExtensions")
    {
        ArgumentNullException.ThrowIfNull(secureEnclave);
        var payload = new Im4Payload(PayloadType, description, auxKc);
        var body = new Im4ManifestBody(
            new Im4PropertySet(new Im4Property(LocalPolicy.EcidTag, new Im4Integer(secureEnclave.Ecid))),
            [new Im4ObjectProperties(PayloadType, new Im4PropertySet(
                new Im4Property(DigestTag, new Im4OctetString(payload.ComputeDigest().Span))))]);
        return new Img4(payload, secureEnclave.SignManifest(body));
    }

    /// <summary>The value a LocalPolicy's <c>auxi</c> holds for this AuxKC: SHA-384 of its IM4M DER.</summary>
    public static Sha384Digest ManifestHash(Img4 auxKcImage4)
    {
        ArgumentNullException.ThrowIfNull(auxKcImage4);
        return Sha384Digest.Compute(auxKcImage4.Manifest.Encode());
    }
}

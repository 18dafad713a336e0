using System.Security.Cryptography;
using KextTrust.Boot.Enclave;
using KextTrust.Formats.Image4;

namespace KextTrust.Boot.Policy;

/// <summary>The outcome of verifying an AuxKC Image4; lists every failed check.</summary>
internal sealed record AuxKcVerification(IReadOnlyList<LocalPolicyFailure> Failures)
{
    /// <summary>True when no check failed.</summary>
    public bool Valid => Failures.Count == 0;

    /// <summary>True if some failure has this code.</summary>
    public bool Has(LocalPolicyFailureCode code) => Failures.Any(f => f.Code == code);
}

/// <summary>
/// The SEP-signed Image4 of an Auxiliary Kernel Collection. The IM4P (type <c>auxk</c>) holds the
/// <b>whole AuxKC file</b> as its payload, so the manifest's digest covers every byte iBoot maps. The
/// IM4M's MANP holds <c>ECID</c> (personalized, but no nonce: a new LocalPolicy nonce does not
/// invalidate the AuxKC; the policy's <c>auxi</c> binds the pair instead) and its object set
/// <c>auxk</c> holds <c>DGST</c> = SHA-384 of the whole IM4P DER element.
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

    /// <summary>
    /// Checks the Image4 on its own: IM4P type <c>auxk</c>, signed by this Mac's SEP key, personalized
    /// for <paramref name="ecid"/>, and the manifest's <c>auxk</c> <c>DGST</c> equal to SHA-384 of the IM4P.
    /// </summary>
    public static AuxKcVerification VerifyImage(Img4 auxKcImage4, ECDsa sepPublicKey, ulong ecid)
    {
        ArgumentNullException.ThrowIfNull(auxKcImage4);
        var failures = new List<LocalPolicyFailure>();
        var payload = auxKcImage4.Payload;
        var manifest = auxKcImage4.Manifest;
        if (payload.Type != PayloadType)
        {
            failures.Add(new(LocalPolicyFailureCode.Malformed, $"IM4P type is '{payload.Type}', not '{PayloadType}'"));
        }
        var signature = SecureEnclaveSignature.Verify(manifest, sepPublicKey);
        if (!signature.Valid)
        {
            failures.Add(new(LocalPolicyFailureCode.BadSignature, signature.Failure!));
        }
        if (manifest.ManifestProperties.Find(LocalPolicy.EcidTag) is not Im4Integer { Value: var manifestEcid } || manifestEcid != ecid)
        {
            failures.Add(new(LocalPolicyFailureCode.EcidMismatch, $"the AuxKC manifest is not personalized for ECID 0x{ecid:x16}"));
        }
        var digest = manifest.Body.FindObject(PayloadType)?.Find(DigestTag);
        if (digest is not Im4OctetString { Value.Length: Sha384Digest.Length } dgst)
        {
            failures.Add(new(LocalPolicyFailureCode.Malformed, $"the manifest has no 48-byte '{PayloadType}' {DigestTag}"));
        }
        else if (Sha384Digest.FromBytes(dgst.Value.Span) != payload.ComputeDigest())
        {
            failures.Add(new(LocalPolicyFailureCode.DigestMismatch, "DGST does not match SHA-384 of the IM4P"));
        }
        return new AuxKcVerification(failures);
    }

    /// <summary>
    /// What iBoot checks before loading an AuxKC: the (already verified) LocalPolicy enables
    /// third-party kexts and its <c>auxi</c> equals <see cref="ManifestHash"/>, plus every check of
    /// <see cref="VerifyImage"/> with the same SEP key as the LocalPolicy.
    /// </summary>
    public static AuxKcVerification Verify(Img4 auxKcImage4, ECDsa sepPublicKey, LocalPolicy verifiedPolicy)
    {
        ArgumentNullException.ThrowIfNull(verifiedPolicy);
        var failures = new List<LocalPolicyFailure>();
        if (!verifiedPolicy.ThirdPartyKextsEnabled)
        {
            failures.Add(new(LocalPolicyFailureCode.AuxKcNotAllowed, "the LocalPolicy does not enable third-party kexts (smb2)"));
        }
        if (verifiedPolicy.AuxKcImage4Hash is null)
        {
            failures.Add(new(LocalPolicyFailureCode.DigestMismatch, "the LocalPolicy holds no AuxKC Image4 hash (auxi)"));
        }
        else if (verifiedPolicy.AuxKcImage4Hash != ManifestHash(auxKcImage4))
        {
            failures.Add(new(LocalPolicyFailureCode.DigestMismatch, "auxi does not match SHA-384 of the AuxKC manifest"));
        }
        failures.AddRange(VerifyImage(auxKcImage4, sepPublicKey, verifiedPolicy.Ecid).Failures);
        return new AuxKcVerification(failures);
    }
}

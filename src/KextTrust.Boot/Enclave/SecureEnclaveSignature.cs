using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using KextTrust.Formats.Image4;

namespace KextTrust.Boot.Enclave;

/// <summary>The outcome of checking a SEP signature: valid, or the reason it is not.</summary>
internal sealed record SepSignatureResult(bool Valid, string? Failure)
{
    /// <summary>The valid result.</summary>
    public static SepSignatureResult Ok { get; } = new(true, null);

    internal static SepSignatureResult Fail(string reason) => new(false, reason);
}

/// <summary>
/// Verifies that an IM4M was signed by a given Mac's Secure Enclave. The embedded certificate is
/// never trusted by itself: the caller supplies this Mac's SEP public key, the signature must
/// verify with it over the original body bytes, and the single embedded certificate must carry
/// that same key.
/// </summary>
internal static class SecureEnclaveSignature
{
    /// <summary>Checks the manifest's signature with <paramref name="expectedPublicKey"/> (P-384).</summary>
    public static SepSignatureResult Verify(Im4Manifest manifest, ECDsa expectedPublicKey)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(expectedPublicKey);
        if (expectedPublicKey.KeySize != 384)
        {
            throw new ArgumentException("a Secure Enclave key is ECDSA P-384", nameof(expectedPublicKey));
        }
        if (manifest.CertificateChain.Count != 1)
        {
            return SepSignatureResult.Fail($"expected exactly one SEP certificate, found {manifest.CertificateChain.Count}");
        }
        try
        {
            using var certificate = X509CertificateLoader.LoadCertificate(manifest.CertificateChain[0].Span);
            var expected = expectedPublicKey.ExportSubjectPublicKeyInfo();
            if (!certificate.PublicKey.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(expected))
            {
                return SepSignatureResult.Fail("the embedded certificate does not carry this Mac's SEP key");
            }
        }
        catch (CryptographicException e)
        {
            return SepSignatureResult.Fail($"the embedded certificate cannot be read: {e.Message}");
        }
        bool valid;
        try
        {
            valid = expectedPublicKey.VerifyData(manifest.BodyBytes.Span, manifest.Signature.Span,
                HashAlgorithmName.SHA384, DSASignatureFormat.Rfc3279DerSequence);
        }
        catch (CryptographicException)
        {
            valid = false;
        }
        return valid ? SepSignatureResult.Ok : SepSignatureResult.Fail("the signature does not verify with this Mac's SEP key");
    }
}

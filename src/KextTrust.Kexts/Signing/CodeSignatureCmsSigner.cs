using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using KextTrust.Formats.CodeSigning;

namespace KextTrust.Kexts.Signing;

/// <summary>
/// Creates the CMS of a code signature: detached SignedData over the slot-0 CodeDirectory, SHA-256,
/// signed attributes content type, message digest, signing time, the <c>.9.1</c> cdhashes plist and
/// <c>.9.2</c> digests of every CodeDirectory; certificates = the given chain.
/// </summary>
internal static class CodeSignatureCmsSigner
{
    /// <summary>
    /// Signs. <paramref name="codeDirectories"/> are the CodeDirectory blobs in slot order (slot 0 first, then
    /// alternates); <paramref name="signer"/> must carry its private key; <paramref name="chain"/> are the extra
    /// certificates to embed (intermediate, optionally root).
    /// </summary>
    public static byte[] Sign(IReadOnlyList<byte[]> codeDirectories, X509Certificate2 signer, IEnumerable<X509Certificate2> chain, DateTimeOffset signingTime)
    {
        ArgumentNullException.ThrowIfNull(codeDirectories);
        ArgumentNullException.ThrowIfNull(signer);
        ArgumentNullException.ThrowIfNull(chain);
        if (codeDirectories.Count == 0)
        {
            throw new ArgumentException("at least the slot-0 CodeDirectory is needed", nameof(codeDirectories));
        }
        if (!signer.HasPrivateKey)
        {
            throw new ArgumentException("the signer certificate has no private key", nameof(signer));
        }
        var parsed = codeDirectories.Select(cd => CodeDirectory.Parse(cd, "to-sign")).ToArray();
        var cms = new SignedCms(new ContentInfo(codeDirectories[0]), detached: true);
        var cmsSigner = new CmsSigner(SubjectIdentifierType.IssuerAndSerialNumber, signer)
        {
            DigestAlgorithm = new Oid("2.16.840.1.101.3.4.2.1"),
            IncludeOption = X509IncludeOption.EndCertOnly,
        };
        foreach (var c in chain)
        {
            cmsSigner.Certificates.Add(c);
        }
        cmsSigner.SignedAttributes.Add(new Pkcs9SigningTime(signingTime.UtcDateTime));
        cmsSigner.SignedAttributes.Add(new AsnEncodedData(AppleOids.CdHashesPlistAttribute,
            CdHashAttributes.EncodePlistAttribute(parsed.Select(cd => cd.ComputeCdHash()))));
        var v2 = new AsnEncodedDataCollection();
        foreach (var cd in parsed)
        {
            v2.Add(new AsnEncodedData(AppleOids.CdHashesV2Attribute,
                CdHashAttributes.EncodeV2Value(CodeSigningHash.DigestOid(cd.HashType), cd.ComputeFullHash())));
        }
        cmsSigner.SignedAttributes.Add(new CryptographicAttributeObject(new Oid(AppleOids.CdHashesV2Attribute), v2));
        cms.ComputeSignature(cmsSigner, silent: true);
        return cms.Encode();
    }
}

using System.Diagnostics.CodeAnalysis;
using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace KextTrust.Kexts.Signing;

/// <summary>
/// The signer-info signature check of RFC 5652 §5.4 for the common shape of code signatures, with the signer's public
/// key imported once per certificate and run instead of once per file (<c>SignerInfo.CheckSignature</c> imports it
/// again every time, ~0.12 ms, and finds the signer certificate again by decoding issuer names to strings).
/// It only ever confirms: it answers true when the signed attributes are DER (the encoding RFC 5652 says is signed,
/// the set sorted, so the bytes are exactly what <c>SignerInfo.CheckSignature</c> re-encodes and hashes first), hold
/// exactly one messageDigest equal to the content's digest, and the signature over them verifies with the
/// certificate's RSA (PKCS #1 v1.5) or ECDSA key under an algorithm that agrees with the digest algorithm. Anything
/// else (false) goes to <c>SignerInfo.CheckSignature</c>, which decides and words the failure: unsorted attributes
/// signed in document order, PSS, other key types, algorithm mismatches, a bad signature.
/// </summary>
internal static class CmsSignatureCheck
{
    private const string MessageDigestOid = "1.2.840.113549.1.9.4";
    private static readonly Asn1Tag Context0 = new(TagClass.ContextSpecific, 0, isConstructed: true);

    /// <summary>The digest algorithm a CMS digest-algorithm OID names (SHA-1 and SHA-2), or null.</summary>
    public static HashAlgorithmName? DigestAlgorithm(string? oid) => oid switch
    {
        "1.3.14.3.2.26" => HashAlgorithmName.SHA1,
        "2.16.840.1.101.3.4.2.1" => HashAlgorithmName.SHA256,
        "2.16.840.1.101.3.4.2.2" => HashAlgorithmName.SHA384,
        "2.16.840.1.101.3.4.2.3" => HashAlgorithmName.SHA512,
        _ => null,
    };

    /// <summary>
    /// True when <paramref name="signer"/>'s signature over the detached <paramref name="content"/> verifies as
    /// described above with <paramref name="leaf"/>'s key (from <paramref name="cache"/>); then also the signed
    /// attributes as read (each value's encoding, in document order).
    /// </summary>
    public static bool Confirms(CmsSignerParts signer, X509Certificate2 leaf, ReadOnlySpan<byte> content, ChainVerdictCache cache,
        [NotNullWhen(true)] out IReadOnlyList<CmsAttribute>? signedAttributes)
    {
        signedAttributes = null;
        if (!IsAbsentOrNull(signer.DigestAlgorithmParameters) || DigestAlgorithm(signer.DigestAlgorithm) is not { } digest
            || signer.SignedAttributes is not { } attributes
            || ReadDerWithDigest(attributes, CryptographicOperations.HashData(digest, content)) is not { } read)
        {
            return false;
        }
        var key = cache.PublicKeyOf(leaf);
        var scheme = SchemeOf(signer.SignatureAlgorithm, digest);
        if (key is null || scheme is null || !IsAbsentOrNull(signer.SignatureAlgorithmParameters))
        {
            return false;
        }

        // The signed attributes are hashed as a SET OF (tag 0x31), not under their [0] IMPLICIT tag (RFC 5652 §5.4).
        Span<byte> hash = stackalloc byte[64];
        using (var hasher = IncrementalHash.CreateHash(digest))
        {
            hasher.AppendData([0x31]);
            hasher.AppendData(attributes.Span[1..]);
            hash = hash[..hasher.GetHashAndReset(hash)];
        }
        bool verified;
        lock (key)
        {
            try
            {
                verified = (scheme, key) switch
                {
                    (Scheme.RsaPkcs1, RSA rsa) => rsa.VerifyHash(hash, signer.Signature.Span, digest, RSASignaturePadding.Pkcs1),
                    (Scheme.Ecdsa, ECDsa ecdsa) => ecdsa.VerifyHash(hash, signer.Signature.Span, DSASignatureFormat.Rfc3279DerSequence),
                    _ => false,
                };
            }
            catch (CryptographicException)
            {
                verified = false; // a signature value the key cannot even read: SignedCms words that failure
            }
        }
        signedAttributes = verified ? read : null;
        return verified;
    }

    /// <summary>
    /// The attributes of the <c>[0]</c> signed-attributes element when it is DER throughout its structure (definite
    /// minimal lengths, the attribute set and each value set sorted) and carries exactly one messageDigest attribute,
    /// of exactly one OCTET STRING value equal to <paramref name="contentDigest"/>; else null.
    /// </summary>
    private static List<CmsAttribute>? ReadDerWithDigest(ReadOnlyMemory<byte> attributes, ReadOnlySpan<byte> contentDigest)
    {
        if (attributes.IsEmpty || attributes.Span[0] != 0xA0)
        {
            return null;
        }
        try
        {
            var reader = new AsnReader(attributes, AsnEncodingRules.DER);
            var set = reader.ReadSetOf(Context0);
            reader.ThrowIfNotEmpty();
            var digests = 0;
            var matches = false;
            var read = new List<CmsAttribute>();
            while (set.HasData)
            {
                var attribute = set.ReadSequence();
                var type = attribute.ReadObjectIdentifier();
                var values = attribute.ReadSetOf();
                attribute.ThrowIfNotEmpty();
                var encoded = new List<ReadOnlyMemory<byte>>(1);
                while (values.HasData)
                {
                    encoded.Add(values.ReadEncodedValue());
                }
                read.Add(new CmsAttribute(type, encoded));
                if (type == MessageDigestOid)
                {
                    digests++;
                    var value = new AsnReader(encoded.Count == 1 ? encoded[0] : default, AsnEncodingRules.DER);
                    matches = encoded.Count == 1 && value.TryReadPrimitiveOctetString(out var messageDigest) && !value.HasData
                        && CryptographicOperations.FixedTimeEquals(messageDigest.Span, contentDigest);
                }
            }
            return digests == 1 && matches ? read : null;
        }
        catch (AsnContentException)
        {
            return null;
        }
    }

    private enum Scheme
    {
        RsaPkcs1,
        Ecdsa,
    }

    /// <summary>The signature scheme of a signature algorithm that agrees with <paramref name="digest"/>, or null.</summary>
    private static Scheme? SchemeOf(string signatureAlgorithm, HashAlgorithmName digest) => signatureAlgorithm switch
    {
        "1.2.840.113549.1.1.1" => Scheme.RsaPkcs1, // rsaEncryption: the digest algorithm names the hash
        "1.2.840.113549.1.1.5" when digest == HashAlgorithmName.SHA1 => Scheme.RsaPkcs1,
        "1.2.840.113549.1.1.11" when digest == HashAlgorithmName.SHA256 => Scheme.RsaPkcs1,
        "1.2.840.113549.1.1.12" when digest == HashAlgorithmName.SHA384 => Scheme.RsaPkcs1,
        "1.2.840.113549.1.1.13" when digest == HashAlgorithmName.SHA512 => Scheme.RsaPkcs1,
        "1.2.840.10045.4.1" when digest == HashAlgorithmName.SHA1 => Scheme.Ecdsa,
        "1.2.840.10045.4.3.2" when digest == HashAlgorithmName.SHA256 => Scheme.Ecdsa,
        "1.2.840.10045.4.3.3" when digest == HashAlgorithmName.SHA384 => Scheme.Ecdsa,
        "1.2.840.10045.4.3.4" when digest == HashAlgorithmName.SHA512 => Scheme.Ecdsa,
        _ => null,
    };

    private static bool IsAbsentOrNull(ReadOnlyMemory<byte>? parameters) =>
        parameters is not { } p || p.Span.SequenceEqual((ReadOnlySpan<byte>)[0x05, 0x00]);

    /// <summary>
    /// The certificate of <paramref name="certificates"/> whose issuer name and serial number are byte for byte those
    /// of the signer identifier (RFC 5652 §5.3, IssuerAndSerialNumber), or null.
    /// </summary>
    public static X509Certificate2? FindByIssuerAndSerial(CmsSignerParts signer, IReadOnlyList<X509Certificate2> certificates)
    {
        if (!signer.HasIssuerAndSerialNumber)
        {
            return null;
        }
        foreach (var c in certificates)
        {
            if (c.SerialNumberBytes.Span.SequenceEqual(signer.SerialNumber.Span) && c.IssuerName.RawData.AsSpan().SequenceEqual(signer.IssuerName.Span))
            {
                return c;
            }
        }
        return null;
    }
}

using System.Formats.Asn1;

namespace KextTrust.Kexts.Signing;

/// <summary>One CMS attribute (RFC 5652 §5.3): its type and the encoding of each of its values, in document order.</summary>
internal sealed record CmsAttribute(string Oid, IReadOnlyList<ReadOnlyMemory<byte>> Values);

/// <summary>
/// The fields of one CMS <c>SignerInfo</c> (RFC 5652 §5.3) that a signature check reads, as slices of the message:
/// the signer identifier (issuer name and serial number; both empty for a subject key identifier), the digest and
/// signature algorithms with their parameters, the signed attributes as the whole <c>[0]</c> element, and the
/// signature value. Structure only: nothing here is trusted until <see cref="CmsSignatureCheck"/> has checked it.
/// </summary>
internal sealed record CmsSignerParts(
    ReadOnlyMemory<byte> IssuerName,
    ReadOnlyMemory<byte> SerialNumber,
    string DigestAlgorithm,
    ReadOnlyMemory<byte>? DigestAlgorithmParameters,
    ReadOnlyMemory<byte>? SignedAttributes,
    string SignatureAlgorithm,
    ReadOnlyMemory<byte>? SignatureAlgorithmParameters,
    ReadOnlyMemory<byte> Signature)
{
    private static readonly Asn1Tag Context0 = new(TagClass.ContextSpecific, 0, isConstructed: true);
    private static readonly Asn1Tag Context0Primitive = new(TagClass.ContextSpecific, 0);

    /// <summary>True when the signer is named by issuer and serial number (else by subject key identifier).</summary>
    public bool HasIssuerAndSerialNumber => !IssuerName.IsEmpty;

    /// <summary>
    /// True when the <c>EncapsulatedContentInfo</c> element carries no <c>eContent</c>: the content is detached (the
    /// CodeDirectory) and nothing else enters the digest.
    /// </summary>
    public static bool IsDetached(ReadOnlyMemory<byte> encapsulatedContentInfo)
    {
        if (encapsulatedContentInfo.IsEmpty)
        {
            return false;
        }
        try
        {
            var reader = new AsnReader(encapsulatedContentInfo, AsnEncodingRules.BER);
            var sequence = reader.ReadSequence();
            sequence.ReadObjectIdentifier();
            return !sequence.HasData && !reader.HasData;
        }
        catch (AsnContentException)
        {
            return false;
        }
    }

    /// <summary>
    /// Every signer info of the <c>SignerInfos</c> SET, or null when the element is not one or any signer info is in a
    /// shape this reader does not take (a constructed OCTET STRING, say): the caller then relies on <c>SignedCms</c> alone.
    /// </summary>
    public static IReadOnlyList<CmsSignerParts>? TryReadAll(ReadOnlyMemory<byte> signerInfos)
    {
        if (signerInfos.IsEmpty)
        {
            return null;
        }
        try
        {
            var outer = new AsnReader(signerInfos, AsnEncodingRules.BER);
            var set = outer.ReadSetOf(skipSortOrderValidation: true);
            if (outer.HasData)
            {
                return null;
            }
            var result = new List<CmsSignerParts>();
            while (set.HasData)
            {
                var parts = TryRead(set.ReadSequence());
                if (parts is null)
                {
                    return null;
                }
                result.Add(parts);
            }
            return result;
        }
        catch (AsnContentException)
        {
            return null;
        }
    }

    private static CmsSignerParts? TryRead(AsnReader signerInfo)
    {
        signerInfo.ReadEncodedValue(); // version
        ReadOnlyMemory<byte> issuer = default, serial = default;
        var sidTag = signerInfo.PeekTag();
        if (sidTag.HasSameClassAndValue(Asn1Tag.Sequence))
        {
            var issuerAndSerial = signerInfo.ReadSequence();
            issuer = issuerAndSerial.ReadEncodedValue();
            serial = issuerAndSerial.ReadIntegerBytes();
            if (issuerAndSerial.HasData || issuer.IsEmpty)
            {
                return null;
            }
        }
        else if (sidTag == Context0Primitive)
        {
            signerInfo.ReadEncodedValue(); // subject key identifier: matched by SignedCms's own rules
        }
        else
        {
            return null;
        }
        var (digestAlgorithm, digestParameters) = ReadAlgorithm(signerInfo);
        ReadOnlyMemory<byte>? signedAttributes = null;
        if (signerInfo.HasData && signerInfo.PeekTag() == Context0)
        {
            signedAttributes = signerInfo.ReadEncodedValue();
        }
        var (signatureAlgorithm, signatureParameters) = ReadAlgorithm(signerInfo);
        if (!signerInfo.TryReadPrimitiveOctetString(out var signature))
        {
            return null;
        }
        // Unsigned attributes ([1]) and anything after them are not read: they are not signed.
        return new CmsSignerParts(issuer, serial, digestAlgorithm, digestParameters, signedAttributes, signatureAlgorithm, signatureParameters, signature);
    }

    private static (string Oid, ReadOnlyMemory<byte>? Parameters) ReadAlgorithm(AsnReader reader)
    {
        var algorithm = reader.ReadSequence();
        var oid = algorithm.ReadObjectIdentifier();
        // Typed: a bare null would become empty memory through the array conversion, and absent must stay absent.
        ReadOnlyMemory<byte>? parameters = algorithm.HasData ? algorithm.ReadEncodedValue() : (ReadOnlyMemory<byte>?)null;
        algorithm.ThrowIfNotEmpty();
        return (oid, parameters);
    }
}

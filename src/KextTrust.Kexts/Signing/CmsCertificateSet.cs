using System.Formats.Asn1;

namespace KextTrust.Kexts.Signing;

/// <summary>
/// Splits a CMS <c>ContentInfo</c> (SignedData, RFC 5652 §5.1) into the encoded certificates of its
/// <c>certificates</c> field and the same message without them. <c>SignedCms</c> turns every certificate of the
/// set into an <c>X509Certificate2</c> (an OpenSSL decode, ~0.2 ms each) whenever its <c>Certificates</c> or a
/// signer's <c>Certificate</c> is read, and does so again for every file; with the set removed it decodes none, and
/// the signer certificate comes from the caller's store, whose objects a verification run shares across files
/// with byte-identical certificates. Only structure is read here: no digest, no signature, no certificate field.
/// Every element other than the certificates is copied byte for byte (the signer infos with their signed
/// attributes in document order, the digest algorithms, the encapsulated content info, CRLs, bytes after the
/// message), so the stripped message verifies exactly as the original does.
/// </summary>
internal static class CmsCertificateSet
{
    private static readonly Asn1Tag Context0 = new(TagClass.ContextSpecific, 0, isConstructed: true);

    /// <summary>
    /// The certificates (<c>CertificateChoices</c> of the plain <c>Certificate</c> alternative, in order, as the
    /// encoded values <c>SignedCms.Certificates</c> would load) and the message without them; false when the bytes
    /// are not a ContentInfo / SignedData this reader understands (the caller then decodes the original bytes).
    /// </summary>
    public static bool TrySplit(ReadOnlyMemory<byte> message, out byte[] withoutCertificates, out IReadOnlyList<ReadOnlyMemory<byte>> certificates)
    {
        withoutCertificates = [];
        certificates = [];
        try
        {
            var first = new AsnReader(message, AsnEncodingRules.BER).ReadEncodedValue();
            var trailing = message[first.Length..]; // whatever follows the message (padding) stays as it was
            var contentInfo = new AsnReader(first, AsnEncodingRules.BER).ReadSequence();
            var contentType = contentInfo.ReadEncodedValue();
            var explicitContent = contentInfo.ReadSequence(Context0);
            var signedData = explicitContent.ReadSequence();

            var writer = new AsnWriter(AsnEncodingRules.BER, initialCapacity: first.Length); // enough unless the input used indefinite lengths
            var found = new List<ReadOnlyMemory<byte>>();
            using (writer.PushSequence())
            {
                writer.WriteEncodedValue(contentType.Span);
                using (writer.PushSequence(Context0))
                {
                    using (writer.PushSequence())
                    {
                        writer.WriteEncodedValue(signedData.ReadEncodedValue().Span); // version
                        writer.WriteEncodedValue(signedData.ReadEncodedValue().Span); // digestAlgorithms
                        writer.WriteEncodedValue(signedData.ReadEncodedValue().Span); // encapContentInfo
                        if (signedData.HasData && signedData.PeekTag() == Context0)
                        {
                            var set = signedData.ReadSetOf(skipSortOrderValidation: true, Context0);
                            var others = new List<ReadOnlyMemory<byte>>();
                            while (set.HasData)
                            {
                                var tag = set.PeekTag();
                                var choice = set.ReadEncodedValue();
                                (tag == Asn1Tag.Sequence ? found : others).Add(choice);
                            }
                            if (others.Count > 0)
                            {
                                // Attribute and other certificates: SignedCms ignores them, but they stay in the message.
                                using (writer.PushSetOf(Context0))
                                {
                                    foreach (var o in others)
                                    {
                                        writer.WriteEncodedValue(o.Span);
                                    }
                                }
                            }
                        }
                        while (signedData.HasData)
                        {
                            writer.WriteEncodedValue(signedData.ReadEncodedValue().Span); // crls, signerInfos, anything else
                        }
                    }
                    while (explicitContent.HasData)
                    {
                        writer.WriteEncodedValue(explicitContent.ReadEncodedValue().Span);
                    }
                }
                while (contentInfo.HasData)
                {
                    writer.WriteEncodedValue(contentInfo.ReadEncodedValue().Span);
                }
            }
            var headLength = writer.GetEncodedLength();
            withoutCertificates = new byte[headLength + trailing.Length];
            writer.Encode(withoutCertificates);
            trailing.Span.CopyTo(withoutCertificates.AsSpan(headLength));
            certificates = found;
            return true;
        }
        catch (AsnContentException)
        {
            return false;
        }
    }

    /// <summary>
    /// Reads the same structure without writing anything: the certificates (as <see cref="TrySplit"/> gives them) and
    /// the signer infos (<see cref="CmsSignerParts"/>, slices of <paramref name="message"/>). False when the bytes are
    /// not a ContentInfo / SignedData this reader understands; <paramref name="signers"/> is null when the signer
    /// infos are not in a shape <see cref="CmsSignerParts"/> takes, or when the encapsulated content info carries
    /// content of its own (the message is not detached, and its signature covers more than the CodeDirectory).
    /// </summary>
    public static bool TryRead(ReadOnlyMemory<byte> message, out IReadOnlyList<ReadOnlyMemory<byte>> certificates, out IReadOnlyList<CmsSignerParts>? signers)
    {
        certificates = [];
        signers = null;
        try
        {
            var contentInfo = new AsnReader(message, AsnEncodingRules.BER).ReadSequence();
            contentInfo.ReadEncodedValue(); // contentType
            var signedData = contentInfo.ReadSequence(Context0).ReadSequence();
            signedData.ReadEncodedValue(); // version
            signedData.ReadEncodedValue(); // digestAlgorithms
            var encapsulated = signedData.ReadEncodedValue();
            var found = new List<ReadOnlyMemory<byte>>();
            if (signedData.HasData && signedData.PeekTag() == Context0)
            {
                var set = signedData.ReadSetOf(skipSortOrderValidation: true, Context0);
                while (set.HasData)
                {
                    var tag = set.PeekTag();
                    var choice = set.ReadEncodedValue();
                    if (tag == Asn1Tag.Sequence)
                    {
                        found.Add(choice);
                    }
                }
            }
            ReadOnlyMemory<byte> signerInfos = default;
            while (signedData.HasData)
            {
                signerInfos = signedData.ReadEncodedValue(); // crls, then the signer infos last
            }
            certificates = found;
            signers = CmsSignerParts.IsDetached(encapsulated) ? CmsSignerParts.TryReadAll(signerInfos) : null;
            return true;
        }
        catch (AsnContentException)
        {
            return false;
        }
    }
}

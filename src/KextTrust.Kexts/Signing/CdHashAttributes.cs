using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Text;
using KextTrust.Formats;
using KextTrust.Formats.CodeSigning;
using KextTrust.Formats.PropertyLists;

namespace KextTrust.Kexts.Signing;

/// <summary>One hash-agility v2 entry: digest algorithm OID and full CodeDirectory digest.</summary>
internal sealed record CdHashV2Entry(string DigestOid, string DigestHex);

/// <summary>Encodes and decodes Apple's cdhash signed attributes (<c>…100.9.1</c> plist, <c>…100.9.2</c> DER).</summary>
internal static class CdHashAttributes
{
    /// <summary>The <c>.9.1</c> attribute value: a DER OCTET STRING wrapping the XML plist <c>{cdhashes: [data…]}</c>.</summary>
    public static byte[] EncodePlistAttribute(IEnumerable<byte[]> cdHashes)
    {
        var sb = new StringBuilder();
        sb.Append("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        sb.Append("<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n");
        sb.Append("<plist version=\"1.0\">\n<dict>\n\t<key>cdhashes</key>\n\t<array>\n");
        foreach (var h in cdHashes)
        {
            sb.Append("\t\t<data>\n\t\t").Append(Convert.ToBase64String(h)).Append("\n\t\t</data>\n");
        }
        sb.Append("\t</array>\n</dict>\n</plist>\n");
        var w = new AsnWriter(AsnEncodingRules.DER);
        w.WriteOctetString(Encoding.UTF8.GetBytes(sb.ToString()));
        return w.Encode();
    }

    /// <summary>One <c>.9.2</c> attribute value: SEQUENCE { digest OID, OCTET STRING digest }.</summary>
    public static byte[] EncodeV2Value(string digestOid, ReadOnlySpan<byte> digest)
    {
        var w = new AsnWriter(AsnEncodingRules.DER);
        using (w.PushSequence())
        {
            w.WriteObjectIdentifier(digestOid);
            w.WriteOctetString(digest);
        }
        return w.Encode();
    }

    /// <summary>
    /// Decodes the <c>.9.1</c> value; null when it is malformed. The OCTET STRING holds a property list (Apple writes
    /// XML; like CoreFoundation, which Security.framework reads it with, a binary one is read too) whose root
    /// dictionary's <c>cdhashes</c> is an array of data items, nothing else.
    /// </summary>
    public static IReadOnlyList<byte[]>? TryDecodePlistAttribute(ReadOnlySpan<byte> value)
    {
        try
        {
            var plist = AsnDecoder.ReadOctetString(value, AsnEncodingRules.BER, out var consumed);
            if (consumed != value.Length)
            {
                return null;
            }
            if (PropertyList.Parse(plist, "CMS cdhashes attribute (1.2.840.113635.100.9.1)") is not PlistDictionary root
                || root.GetArray("cdhashes") is not { } array)
            {
                return null;
            }
            var list = new List<byte[]>(array.Count);
            foreach (var item in array)
            {
                if (item is not PlistData data)
                {
                    return null;
                }
                list.Add(data.Span.ToArray());
            }
            return list;
        }
        catch (Exception e) when (e is AsnContentException or KextTrustFormatException)
        {
            return null;
        }
    }

    /// <summary>Decodes one <c>.9.2</c> value; null when malformed.</summary>
    public static CdHashV2Entry? TryDecodeV2Value(ReadOnlyMemory<byte> value)
    {
        try
        {
            var reader = new AsnReader(value, AsnEncodingRules.DER);
            var seq = reader.ReadSequence();
            reader.ThrowIfNotEmpty();
            var oid = seq.ReadObjectIdentifier();
            var digest = seq.ReadOctetString();
            seq.ThrowIfNotEmpty();
            return new CdHashV2Entry(oid, Convert.ToHexString(digest));
        }
        catch (AsnContentException)
        {
            return null;
        }
    }

    /// <summary>The v2 entries every CodeDirectory of a signature should have.</summary>
    public static IReadOnlyList<CdHashV2Entry> ExpectedV2(IEnumerable<CodeDirectory> codeDirectories) =>
        codeDirectories.Select(cd => new CdHashV2Entry(CodeSigningHash.DigestOid(cd.HashType), Convert.ToHexString(cd.ComputeFullHash()))).ToArray();
}

using CsCheck;
using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using KextTrust.Formats.Image4;

namespace KextTrust.Formats.Tests.Image4;

/// <summary>Valid sample Image4 objects (signed with a real ECDSA P-384 key) and a raw TLV builder for malformed ones.</summary>
internal static class Image4Samples
{
    public static readonly byte[] PayloadBytes = [.. Enumerable.Range(0, 300).Select(i => (byte)(i * 7))];

    public static Im4Payload Payload(bool withOptional = false) =>
        withOptional
            ? new Im4Payload("auxk", "AuxiliaryKernelExtensions", PayloadBytes, keybags: [0x30, 0x00],
                compression: new Im4Compression(Im4Compression.Lzfse, 4096),
                properties: new Im4PropertySet(new Im4Property("mmap", new Im4Boolean(true))))
            : new Im4Payload("auxk", "AuxiliaryKernelExtensions", PayloadBytes);

    public static Im4ManifestBody Body(Im4Payload payload) => new(
        new Im4PropertySet(
            new Im4Property("ECID", new Im4Integer(0x0011_2233_4455_6677)),
            new Im4Property("CHIP", new Im4Integer(0x8103)),
            new Im4Property("CPRO", new Im4Boolean(true)),
            new Im4Property("BNCH", new Im4OctetString(new byte[32])),
            new Im4Property("srvn", new Im4String("simulated")),
            new Im4Property("sip0", new Im4Integer(ulong.MaxValue))),
        [new Im4ObjectProperties("auxk", new Im4PropertySet(
            new Im4Property("DGST", new Im4OctetString(payload.ComputeDigest().Span)),
            new Im4Property("EPRO", new Im4Boolean(false))))]);

    public static (Im4Manifest Manifest, ECDsa Key) SignedManifest(Im4Payload payload)
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        var body = Body(payload);
        var signature = key.SignData(body.Encode(), HashAlgorithmName.SHA384, DSASignatureFormat.Rfc3279DerSequence);
        var request = new CertificateRequest("CN=Test Signer", key, HashAlgorithmName.SHA384);
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
        return (Im4Manifest.Create(body, signature, [cert.RawData]), key);
    }

    public static Img4 FullImg4()
    {
        var payload = Payload(withOptional: true);
        var (manifest, key) = SignedManifest(payload);
        key.Dispose();
        return new Img4(payload, manifest, Im4Restore.WithBootNonce([1, 2, 3, 4, 5, 6, 7, 8]));
    }

    /// <summary>
    /// Inputs made from <paramref name="der"/> by one to four byte changes, insertions or removals, half of a third of
    /// them also cut in half: what hostile or damaged files look like.
    /// </summary>
    public static Gen<byte[]> Mutations(byte[] der)
    {
        var mutation = Gen.Select(Gen.Int[0, der.Length - 1], Gen.Byte, Gen.Int[0, 3]);
        return Gen.Select(mutation.Array[1, 4], Gen.Int[0, 2], (mutations, shape) =>
        {
            var bytes = der.ToList();
            foreach (var (position, value, kind) in mutations)
            {
                var at = Math.Min(position, bytes.Count - 1);
                switch (kind)
                {
                    case 0 or 1: bytes[at] = value; break;
                    case 2: bytes.Insert(at, value); break;
                    default: if (bytes.Count > 1) { bytes.RemoveAt(at); } break;
                }
            }
            var input = bytes.ToArray();
            return shape == 1 ? input[..(input.Length / 2)] : input;
        });
    }

    // ---- raw DER building, to craft inputs the codec itself would never write ----

    public static byte[] Tlv(byte[] identifier, params byte[][] content)
    {
        var body = content.SelectMany(c => c).ToArray();
        return [.. identifier, .. Length(body.Length), .. body];
    }

    public static byte[] Tlv(byte identifier, params byte[][] content) => Tlv([identifier], content);

    public static byte[] Length(int length) => length switch
    {
        < 0x80 => [(byte)length],
        < 0x100 => [0x81, (byte)length],
        _ => [0x82, (byte)(length >> 8), (byte)length],
    };

    public static byte[] Ia5(string s) => Tlv(0x16, System.Text.Encoding.ASCII.GetBytes(s));

    /// <summary><c>[PRIVATE tag] { SEQUENCE { IA5String inner, content… } }</c>: Apple's explicit tagging.</summary>
    public static byte[] Tagged(string tagFourCC, string innerFourCC, params byte[][] content) =>
        Tlv(FourCC.IdentifierOctets(tagFourCC), Tlv(0x30, [Ia5(innerFourCC), .. content]));

    public static byte[] RawProperty(string tagFourCC, string innerFourCC, byte[] value) => Tagged(tagFourCC, innerFourCC, value);

    public static byte[] RawManifest(params byte[][] manpProperties) =>
        Tlv(0x30, Ia5("IM4M"), [0x02, 0x01, 0x00],
            Tlv(0x31, Tagged("MANB", "MANB", Tlv(0x31, Tagged("MANP", "MANP", Tlv(0x31, manpProperties))))),
            Tlv(0x04, [0xAA]),
            Tlv(0x30));

    public static byte[] Integer(params byte[] content) => Tlv(0x02, content);
}

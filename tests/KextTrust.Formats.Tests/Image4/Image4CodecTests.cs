using System.Formats.Asn1;
using System.Security.Cryptography;
using KextTrust.Formats.Image4;
using static KextTrust.Formats.Tests.Image4.Image4Samples;

namespace KextTrust.Formats.Tests.Image4;

public sealed class Image4CodecTests
{
    [Theory]
    [InlineData("MANB", "ff84ea859c42")]
    [InlineData("MANP", "ff84ea859c50")]
    [InlineData("BNCH", "ff8492b98648")]
    [InlineData("ECID", "ff84aa8d9244")]
    [InlineData("DGST", "ff84a29da654")]
    [InlineData("auxp", "ff868bd5f070")]
    [InlineData("smb2", "ff879bb5c432")]
    public void Private_tag_identifier_octets_match_the_spec(string fourcc, string expectedHex)
    {
        Assert.Equal(expectedHex, Convert.ToHexStringLower(FourCC.IdentifierOctets(fourcc)));
        Assert.Equal(fourcc, FourCC.FromUInt32(FourCC.ToUInt32(fourcc)));
    }

    [Fact]
    public void Encoded_manifest_uses_the_spec_identifier_octets_for_MANB_MANP_and_ECID()
    {
        var (manifest, key) = SignedManifest(Payload());
        key.Dispose();
        var hex = Convert.ToHexStringLower(manifest.Encode());
        Assert.Contains("ff84ea859c42", hex);
        Assert.Contains("ff84ea859c50", hex);
        Assert.Contains("ff84aa8d9244" , hex);
        Assert.Contains("ff84a29da654", hex);
    }

    [Theory]
    [InlineData("ECI")]
    [InlineData("ECIDX")]
    [InlineData("EC\u00e9D")]
    [InlineData("EC\nD")]
    public void Invalid_four_character_codes_are_refused(string fourcc)
    {
        Assert.False(FourCC.IsValid(fourcc));
        Assert.Throws<ArgumentException>(() => new Im4Property(fourcc, new Im4Boolean(true)));
    }

    [Fact]
    public void Property_values_of_every_kind_round_trip()
    {
        var set = new Im4PropertySet(
            new Im4Property("intz", new Im4Integer(0)),
            new Im4Property("intm", new Im4Integer(ulong.MaxValue)),
            new Im4Property("int7", new Im4Integer(0x80)),
            new Im4Property("boo1", new Im4Boolean(true)),
            new Im4Property("boo0", new Im4Boolean(false)),
            new Im4Property("octs", new Im4OctetString([0, 1, 2, 0xff])),
            new Im4Property("octe", new Im4OctetString([])),
            new Im4Property("strg", new Im4String("hello, world")));
        var body = new Im4ManifestBody(set);
        var der = body.Encode();
        var back = Im4ManifestBody.FromBytes(der);
        Assert.Equal(set, back.ManifestProperties);
        Assert.Equal(new Im4Integer(ulong.MaxValue), back.ManifestProperties.Find("intm"));
        Assert.Equal(new Im4OctetString([0, 1, 2, 0xff]), back.ManifestProperties.Find("octs"));
        Assert.Equal(der, back.Encode());
    }

    [Fact]
    public void Property_set_is_kept_in_DER_order_and_refuses_duplicates()
    {
        var set = new Im4PropertySet(
            new Im4Property("smb2", new Im4Boolean(true)),
            new Im4Property("ECID", new Im4Integer(1)),
            new Im4Property("auxp", new Im4OctetString(new byte[48])));
        Assert.Equal(["ECID", "auxp", "smb2"], set.Select(p => p.FourCC));
        Assert.Throws<ArgumentException>(() => new Im4PropertySet(
            new Im4Property("ECID", new Im4Integer(1)), new Im4Property("ECID", new Im4Integer(2))));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Payload_round_trips_byte_for_byte(bool withOptional)
    {
        var payload = Payload(withOptional);
        var der = payload.Encode();
        var back = Im4Payload.FromBytes(der, "payload.im4p");
        Assert.Equal(payload, back);
        Assert.Equal(der, back.Encode());
        Assert.Equal("auxk", back.Type);
        Assert.Equal("AuxiliaryKernelExtensions", back.Description);
        Assert.Equal(PayloadBytes, back.Data.ToArray());
        if (withOptional)
        {
            Assert.Equal(new byte[] { 0x30, 0x00 }, back.Keybags!.Value.ToArray());
            Assert.Equal(new Im4Compression(1, 4096), back.Compression);
            Assert.Equal(new Im4Boolean(true), back.Properties!.Find("mmap"));
        }
        else
        {
            Assert.Null(back.Keybags);
            Assert.Null(back.Compression);
            Assert.Null(back.Properties);
        }
    }

    [Fact]
    public void Payload_digest_is_SHA384_of_the_whole_IM4P_element()
    {
        var payload = Payload();
        var der = payload.Encode();
        Assert.Equal(0x30, der[0]);
        Assert.Equal(SHA384.HashData(der), payload.ComputeDigest().ToArray());
        Assert.NotEqual(SHA384.HashData(PayloadBytes), payload.ComputeDigest().ToArray());
    }

    [Fact]
    public void Manifest_round_trips_and_keeps_the_signed_body_bytes()
    {
        var (manifest, key) = SignedManifest(Payload());
        using (key)
        {
            var der = manifest.Encode();
            var back = Im4Manifest.FromBytes(der, "m.im4m");
            Assert.Equal(manifest, back);
            Assert.Equal(der, back.Encode());
            Assert.Equal(manifest.Body, back.Body);
            Assert.Equal(back.Body.Encode(), back.BodyBytes.ToArray());
            // The body SET sits inside the IM4M exactly as signed, after "IM4M" and INTEGER 0.
            Assert.True(der.AsSpan().IndexOf(back.BodyBytes.Span) > 0);
            Assert.True(key.VerifyData(back.BodyBytes.Span, back.Signature.Span, HashAlgorithmName.SHA384,
                DSASignatureFormat.Rfc3279DerSequence));
            Assert.Single(back.CertificateChain);
            Assert.Equal(0x8103UL, ((Im4Integer)back.ManifestProperties.Find("CHIP")!).Value);
            Assert.NotNull(back.Body.FindObject("auxk")!.Find("DGST"));
            Assert.Null(back.Body.FindObject("krnl"));
        }
    }

    [Fact]
    public void Restore_info_round_trips()
    {
        var restore = Im4Restore.WithBootNonce([8, 7, 6, 5, 4, 3, 2, 1]);
        var der = restore.Encode();
        var back = Im4Restore.FromBytes(der);
        Assert.Equal(restore, back);
        Assert.Equal(der, back.Encode());
        Assert.Equal(new byte[] { 8, 7, 6, 5, 4, 3, 2, 1 }, back.BootNonce.ToArray());
        Assert.Throws<ArgumentException>(() => Im4Restore.WithBootNonce([1, 2, 3]));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Img4_round_trips_byte_for_byte(bool withRestore)
    {
        var full = FullImg4();
        var img4 = withRestore ? full : new Img4(full.Payload, full.Manifest);
        var der = img4.Encode();
        var back = Img4.FromBytes(der, "x.img4");
        Assert.Equal(img4, back);
        Assert.Equal(der, back.Encode());
        Assert.Equal(img4.Payload, back.Payload);
        Assert.Equal(img4.Manifest, back.Manifest);
        Assert.Equal(img4.Manifest.BodyBytes.ToArray(), back.Manifest.BodyBytes.ToArray());
        Assert.Equal(withRestore, back.RestoreInfo is not null);
    }

    [Fact]
    public void Certificates_must_be_single_DER_sequences()
    {
        var body = Body(Payload());
        Assert.Throws<ArgumentException>(() => Im4Manifest.Create(body, [1], [new byte[] { 0x04, 0x00 }]));
        Assert.Throws<ArgumentException>(() => Im4Manifest.Create(body, [1], [new byte[] { 0x30, 0x00, 0x00 }]));
    }
}

using CsCheck;
using KextTrust.Formats.Image4;
using KextTrust.TestSupport;
using static KextTrust.Formats.Tests.Image4.Image4Samples;

namespace KextTrust.Formats.Tests.Image4;

public sealed class Image4StrictnessTests
{
    private static Image4FormatException Rejects(Func<object> decode)
    {
        var e = Assert.Throws<Image4FormatException>(decode);
        Assert.Equal("Image4", e.Format);
        Assert.False(string.IsNullOrWhiteSpace(e.Rule));
        return e;
    }

    [Fact]
    public void The_raw_builder_produces_a_valid_manifest_when_nothing_is_wrong()
    {
        var der = RawManifest(RawProperty("ECID", "ECID", Integer(0x01)), RawProperty("smb2", "smb2", Tlv(0x01, [0xff])));
        var m = Im4Manifest.FromBytes(der);
        Assert.Equal(new Im4Integer(1), m.ManifestProperties.Find("ECID"));
        Assert.Equal(der, m.Encode());
    }

    [Fact]
    public void Long_form_length_for_a_short_value_is_rejected()
    {
        var der = Im4Restore.WithBootNonce(new byte[8]).Encode();
        Assert.True(der[1] < 0x80);
        byte[] longForm = [der[0], 0x81, .. der[1..]];
        var e = Rejects(() => Im4Restore.FromBytes(longForm, "long.im4r"));
        Assert.Equal("long.im4r", e.SourceName);
        Assert.Equal(0, e.Offset);
    }

    [Fact]
    public void Indefinite_length_is_rejected()
    {
        var der = Im4Restore.WithBootNonce(new byte[8]).Encode();
        byte[] indefinite = [der[0], 0x80, .. der[2..], 0x00, 0x00];
        Rejects(() => Im4Restore.FromBytes(indefinite));
    }

    [Fact]
    public void A_trailing_byte_after_the_top_element_is_rejected_at_its_offset()
    {
        var der = FullImg4().Encode();
        var e = Rejects(() => Img4.FromBytes((byte[])[.. der, 0x00], "t.img4"));
        Assert.Equal(der.Length, e.Offset);
        Assert.Contains("trailing", e.Rule);
    }

    [Fact]
    public void Duplicate_property_is_rejected()
    {
        var ecid = RawProperty("ECID", "ECID", Integer(0x01));
        var e = Rejects(() => Im4Manifest.FromBytes(RawManifest(ecid, ecid)));
        Assert.Contains("duplicate", e.Rule);
    }

    [Fact]
    public void Inner_4CC_that_differs_from_the_tag_is_rejected()
    {
        var e = Rejects(() => Im4Manifest.FromBytes(RawManifest(RawProperty("ECID", "ECIX", Integer(0x01)))));
        Assert.Contains("differs", e.Rule);
    }

    [Fact]
    public void Unsorted_SET_is_rejected()
    {
        var e = Rejects(() => Im4Manifest.FromBytes(RawManifest(
            RawProperty("smb2", "smb2", Tlv(0x01, [0xff])), RawProperty("ECID", "ECID", Integer(0x01)))));
        Assert.Contains("order", e.Rule);
    }

    [Theory]
    [InlineData(new byte[] { 0x00, 0x01 })]            // non-minimal positive INTEGER
    [InlineData(new byte[] { 0xff, 0xff })]            // non-minimal negative INTEGER
    [InlineData(new byte[] { 0x80 })]                  // negative
    [InlineData(new byte[] { 0x01, 0, 0, 0, 0, 0, 0, 0, 0 })] // 2^64: more than 64 bits
    [InlineData(new byte[] { })]                       // empty INTEGER
    public void Bad_integers_are_rejected(byte[] content)
    {
        Rejects(() => Im4Manifest.FromBytes(RawManifest(RawProperty("ECID", "ECID", Integer(content)))));
    }

    [Fact]
    public void Largest_u64_integer_is_accepted()
    {
        var m = Im4Manifest.FromBytes(RawManifest(RawProperty("ECID", "ECID", Integer(0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))));
        Assert.Equal(new Im4Integer(ulong.MaxValue), m.ManifestProperties.Find("ECID"));
    }

    [Fact]
    public void Non_DER_boolean_and_unsupported_value_types_are_rejected()
    {
        Rejects(() => Im4Manifest.FromBytes(RawManifest(RawProperty("smb2", "smb2", Tlv(0x01, [0x01])))));
        Rejects(() => Im4Manifest.FromBytes(RawManifest(RawProperty("smb2", "smb2", Tlv(0x05)))));          // NULL
        Rejects(() => Im4Manifest.FromBytes(RawManifest(RawProperty("lpnh", "lpnh", Tlv(0x24, Tlv(0x04, [1]))))));  // constructed OCTET STRING
        Rejects(() => Im4Manifest.FromBytes(RawManifest(RawProperty("ECID", "ECID", Integer(0x01)).Concat(Integer(0x02)).ToArray())));
    }

    [Fact]
    public void Property_with_two_values_or_non_4CC_tag_is_rejected()
    {
        var twoValues = Tagged("ECID", "ECID", Integer(1), Integer(2));
        Rejects(() => Im4Manifest.FromBytes(RawManifest(twoValues)));
        var twoSequences = Tlv(FourCC.IdentifierOctets("ECID"), Tlv(0x30, Ia5("ECID"), Integer(1)), Tlv(0x30, Ia5("ECID"), Integer(1)));
        Rejects(() => Im4Manifest.FromBytes(RawManifest(twoSequences)));
        var contextTag = Tlv(0xA0, Ia5("ECID"), Integer(1));
        Rejects(() => Im4Manifest.FromBytes(RawManifest(contextTag)));
    }

    [Fact]
    public void Implicitly_tagged_properties_are_refused_at_their_offset_naming_the_rule()
    {
        // The layout this project wrote before: the private tag replacing the SEQUENCE instead of wrapping it.
        var implicitProperty = Tlv(FourCC.IdentifierOctets("ECID"), Ia5("ECID"), Integer(1));
        var der = RawManifest(implicitProperty);
        var e = Rejects(() => Im4Manifest.FromBytes(der));
        Assert.Equal(der.AsSpan().IndexOf(implicitProperty) + FourCC.IdentifierOctets("ECID").Length + 1, e.Offset);
        Assert.Contains("expected tag SEQUENCE", e.Rule);
    }

    [Theory]
    [InlineData("IM4X")]
    [InlineData("IM4P")]
    [InlineData("")]
    public void Wrong_magic_is_rejected(string magic)
    {
        var der = RawManifest(RawProperty("ECID", "ECID", Integer(0x01)));
        var bad = der.ToArray();
        var at = bad.AsSpan().IndexOf("IM4M"u8);
        if (magic.Length == 4)
        {
            System.Text.Encoding.ASCII.GetBytes(magic).CopyTo(bad, at);
        }
        else
        {
            bad = Tlv(0x30, [.. bad[(at + 4)..]]);
            bad = [.. bad[..2], 0x16, 0x00, .. bad[2..]];
            bad[1] += 2;
        }
        var e = Rejects(() => Im4Manifest.FromBytes(bad));
        Assert.Contains("magic", e.Rule);
    }

    [Fact]
    public void Manifest_version_other_than_zero_and_missing_MANP_are_rejected()
    {
        var der = RawManifest(RawProperty("ECID", "ECID", Integer(0x01)));
        var bad = der.ToArray();
        bad[bad.AsSpan().IndexOf(new byte[] { 0x02, 0x01, 0x00 }) + 2] = 1;
        Rejects(() => Im4Manifest.FromBytes(bad));

        var noManp = Tlv(0x30, Ia5("IM4M"), Integer(0),
            Tlv(0x31, Tagged("MANB", "MANB", Tlv(0x31))), Tlv(0x04), Tlv(0x30));
        Assert.Contains("MANP", Rejects(() => Im4Manifest.FromBytes(noManp)).Rule);
    }

    [Fact]
    public void Truncation_at_every_offset_throws_only_Image4FormatException()
    {
        var der = FullImg4().Encode();
        for (var length = 0; length < der.Length; length++)
        {
            var cut = der.AsMemory(0, length);
            var e = Assert.Throws<Image4FormatException>(() => Img4.FromBytes(cut, "cut"));
            Assert.InRange(e.Offset, 0, length);
        }
    }

    [Fact]
    public void Truncated_manifest_and_payload_throw_only_Image4FormatException()
    {
        var img4 = FullImg4();
        foreach (var der in new[] { img4.Manifest.Encode(), img4.Payload.Encode(), img4.RestoreInfo!.Encode() })
        {
            for (var length = 0; length < der.Length; length++)
            {
                var cut = der.AsMemory(0, length);
                Assert.Throws<Image4FormatException>(() => Im4Manifest.FromBytes(cut));
                Assert.Throws<Image4FormatException>(() => Im4Payload.FromBytes(cut));
                Assert.Throws<Image4FormatException>(() => Im4Restore.FromBytes(cut));
            }
        }
    }

    [Fact]
    public void Random_mutations_either_decode_or_throw_Image4FormatException()
    {
        var der = FullImg4().Encode();
        Image4Samples.Mutations(der)
            .Sample(input =>
            {
                try
                {
                    var decoded = Img4.FromBytes(input, "fuzz");
                    // Whatever decodes strictly must re-encode to exactly the same DER.
                    Assert.Equal(input, decoded.Encode());
                }
                catch (Image4FormatException)
                {
                }
            }, iter: 20_000);
    }

    [Fact]
    public void OpenSsl_asn1parse_accepts_our_IMG4_and_IM4M()
    {
        var img4 = FullImg4();
        using var dir = new TempDir();
        foreach (var (name, der, magics) in new[]
                 {
                     ("x.img4", img4.Encode(), new[] { "IMG4", "IM4P", "IM4M", "IM4R", "MANB", "MANP" }),
                     ("x.im4m", img4.Manifest.Encode(), new[] { "IM4M", "MANB", "MANP", "ECID", "DGST" }),
                 })
        {
            var path = dir.Combine(name);
            File.WriteAllBytes(path, der);
            var r = ExternalTool.Run(ExternalTool.OpenSsl, "asn1parse", "-inform", "DER", "-in", path);
            Assert.True(r.ExitCode == 0, r.StdErr);
            Assert.DoesNotContain("error", r.StdOut + r.StdErr, StringComparison.OrdinalIgnoreCase);
            foreach (var magic in magics)
            {
                Assert.Contains($"IA5STRING         :{magic}", r.StdOut);
            }
            // openssl prints each private tag with its number: the 4CC as a big-endian u32.
            Assert.Contains($"priv [ {FourCC.ToUInt32("MANB")} ]", r.StdOut);
            Assert.Contains($"priv [ {FourCC.ToUInt32("MANP")} ]", r.StdOut);
            Assert.Contains($"priv [ {FourCC.ToUInt32("ECID")} ]", r.StdOut);
        }
    }
}

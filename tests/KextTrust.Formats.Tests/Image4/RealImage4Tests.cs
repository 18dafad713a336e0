using System.Formats.Asn1;
using System.Security.Cryptography;
using KextTrust.Formats.Image4;
using KextTrust.TestSupport;

namespace KextTrust.Formats.Tests.Image4;

/// <summary>
/// Real Image4 files (Apple's signing server, PyIMG4's test files; tests/data/image4/PROVENANCE.md) decode,
/// and what we decode is what <c>openssl asn1parse</c> shows.
/// </summary>
public sealed class RealImage4Tests
{
    private static byte[] Read(string name) => File.ReadAllBytes(Corpus.Image4File(name));

    [Theory]
    [InlineData("pyimg4-IM4M", 11, 35)]
    [InlineData("img4helper-apticket.im4m", 10, 23)]
    public void Real_IM4Ms_decode_with_every_manifest_and_object_property(string name, int manpCount, int objectCount)
    {
        var manifest = Im4Manifest.FromBytes(Read(name), name);
        Assert.Equal(manpCount, manifest.ManifestProperties.Count);
        Assert.Equal(objectCount, manifest.Body.Objects.Count);
        Assert.All(manifest.Body.Objects, o => Assert.IsType<Im4OctetString>(o.Properties.Find("DGST")));
        // Re-encoding gives back the very bytes Apple signed: our writer is Apple's layout.
        Assert.Equal(Read(name), manifest.Encode());
        Assert.Equal(manifest.BodyBytes.ToArray(), manifest.Body.Encode());
    }

    [Fact]
    public void Every_property_decoded_from_a_real_IM4M_equals_what_openssl_asn1parse_shows()
    {
        var path = Corpus.Image4File("pyimg4-IM4M");
        var manifest = Im4Manifest.FromBytes(File.ReadAllBytes(path), path);
        var fromOpenSsl = ParseAsn1ParseProperties(Asn1Parse.RunFile(path));

        var ours = new List<(string Group, string FourCC, string Value)>();
        void Add(string group, Im4PropertySet set) =>
            ours.AddRange(set.Select(p => (group, p.FourCC, Render(p.Value))));
        Add("MANP", manifest.ManifestProperties);
        foreach (var o in manifest.Body.Objects)
        {
            Add(o.ObjectFourCC, o.Properties);
        }
        Assert.Equal(fromOpenSsl.Count, ours.Count);
        Assert.Equal(fromOpenSsl, ours);
        Assert.Contains(ours, p => p is { Group: "MANP", FourCC: "CHIP", Value: "8015" });
        Assert.Contains(ours, p => p is { Group: "MANP", FourCC: "ECID", Value: "123456789012" });
    }

    [Fact]
    public void Real_IM4P_IM4R_and_IMG4_decode_and_re_encode_byte_for_byte()
    {
        var payload = Im4Payload.FromBytes(Read("pyimg4-IM4P"), "pyimg4-IM4P");
        Assert.Equal("test", payload.Type);
        Assert.Equal("Test Image4 payload.", payload.Description);
        Assert.Equal(49424, payload.Data.Length);
        Assert.Equal(0xFEEDFACFu, BitConverter.ToUInt32(payload.Data.Span));
        Assert.Equal(Read("pyimg4-IM4P"), payload.Encode());

        var restore = Im4Restore.FromBytes(Read("pyimg4-IM4R"), "pyimg4-IM4R");
        Assert.Equal("7cd2c2e8aebb565f", Convert.ToHexStringLower(restore.BootNonce.Span));
        Assert.Equal(Read("pyimg4-IM4R"), restore.Encode());

        var img4 = Img4.FromBytes(Read("pyimg4-IMG4"), "pyimg4-IMG4");
        Assert.Equal(payload, img4.Payload);
        Assert.Equal(Read("pyimg4-IM4M"), img4.Manifest.Encode());
        Assert.Null(img4.RestoreInfo);
        Assert.Equal(Read("pyimg4-IMG4"), img4.Encode());
    }

    [Fact]
    public void Our_encoding_uses_explicit_private_tags_as_openssl_shows_for_Apples_files()
    {
        var manifest = Im4Manifest.Create(
            new Im4ManifestBody(new Im4PropertySet(new Im4Property("ECID", new Im4Integer(5)))), [1], []);
        var ours = Asn1ParseShape(manifest.Encode());
        var apple = Asn1ParseShape(Read("pyimg4-IM4M"));
        // The first eight elements: SEQUENCE, "IM4M", 0, SET, priv MANB, SEQUENCE, "MANB", SET, priv MANP, SEQUENCE …
        Assert.Equal(apple.Take(12), ours.Take(12));
        Assert.Equal(["SEQUENCE", "IA5STRING:IM4M", "INTEGER:00", "SET", "priv [ 1296125506 ]", "SEQUENCE", "IA5STRING:MANB",
            "SET", "priv [ 1296125520 ]", "SEQUENCE", "IA5STRING:MANP", "SET"], ours.Take(12));
    }

    private static List<string> Asn1ParseShape(byte[] der) => [.. Asn1Parse.Run(der).Select(e => e.Shape)];

    /// <summary>
    /// (group, 4CC, value) of every property in asn1parse's listing: a property is an IA5String 4CC at depth d+1
    /// followed by its value at d+1, inside a private tag; the group is the last 4CC read at depth 7 (MANP or an object).
    /// </summary>
    private static List<(string, string, string)> ParseAsn1ParseProperties(IReadOnlyList<Asn1Parse.Element> lines)
    {
        var result = new List<(string, string, string)>();
        string? group = null;
        for (var i = 0; i < lines.Count; i++)
        {
            var e = lines[i];
            if (e is { Depth: 7, Kind: "IA5STRING" })
            {
                group = e.Value;
            }
            if (e is { Depth: 10, Kind: "IA5STRING" } && i + 1 < lines.Count)
            {
                var v = lines[++i];
                var value = v.Value ?? "";
                result.Add((group!, e.Value!, v.Kind switch
                {
                    "INTEGER" => value.TrimStart('0').ToLowerInvariant() is "" ? "0" : value.TrimStart('0').ToLowerInvariant(),
                    "BOOLEAN" => value == "0" ? "false" : "true",
                    "OCTET STRING" => value.Replace("[HEX DUMP]", "", StringComparison.Ordinal).TrimStart(':').ToLowerInvariant(),
                    _ => value,
                }));
            }
        }
        return result;
    }

    private static string Render(Im4Value value) => value switch
    {
        Im4Integer i => i.Value.ToString("x"),
        Im4Boolean b => b.Value ? "true" : "false",
        Im4OctetString o => Convert.ToHexStringLower(o.Value.Span),
        Im4String s => s.Value,
        _ => throw new InvalidOperationException(),
    };
}

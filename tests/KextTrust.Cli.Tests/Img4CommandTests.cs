using System.Security.Cryptography;
using System.Text.Json;
using KextTrust.Formats.Image4;
using KextTrust.TestSupport;

namespace KextTrust.Cli.Tests;

/// <summary><c>kextrust img4</c> on real Image4 files (tests/data/image4/PROVENANCE.md).</summary>
public sealed class Img4CommandTests : IDisposable
{
    private readonly TempDir _temp = new("kextrust-img4");

    public void Dispose() => _temp.Dispose();

    private static string Data(string name) => Corpus.Image4File(name);

    private static JsonElement Json(CliRunner.Result r) => JsonDocument.Parse(r.StdOut).RootElement;

    [Theory]
    [InlineData("pyimg4-IM4M", "manifest", 11)]
    [InlineData("pyimg4-IMG4", "img4", 11)]
    [InlineData("img4helper-apticket.im4m", "manifest", 10)]
    [InlineData("img4helper-apticket.shsh2", "shsh", 10)]
    public void Info_reads_every_real_file_kind(string name, string kind, int manpCount)
    {
        var r = CliRunner.Run("img4", "info", Data(name), "--json");
        Assert.True(r.ExitCode == 0, r.StdErr);
        var json = Json(r);
        Assert.Equal(kind, json.GetProperty("kind").GetString());
        Assert.Equal(manpCount, json.GetProperty("manifests")[0].GetProperty("properties").GetArrayLength());
    }

    [Fact]
    public void Info_shows_payload_and_restore_info()
    {
        var payload = Json(CliRunner.Run("img4", "info", Data("pyimg4-IM4P"), "--json")).GetProperty("payload");
        Assert.Equal("test", payload.GetProperty("type").GetString());
        Assert.Equal("raw", payload.GetProperty("encoding").GetString());
        Assert.Equal(49424, payload.GetProperty("size").GetInt64());
        var restore = Json(CliRunner.Run("img4", "info", Data("pyimg4-IM4R"), "--json")).GetProperty("restoreInfo")[0];
        Assert.Equal("BNCN", restore.GetProperty("fourCC").GetString());
        Assert.Equal("7cd2c2e8aebb565f", restore.GetProperty("value").GetString());
    }

    [Fact]
    public void Verify_accepts_every_ticket_of_a_real_SHSH2_and_names_the_root()
    {
        var r = CliRunner.Run("img4", "verify", Data("img4helper-apticket.shsh2"), "--json");
        Assert.True(r.ExitCode == 0, r.StdOut + r.StdErr);
        var manifests = Json(r).GetProperty("manifests");
        Assert.Equal(["ApImg4Ticket", "updateInstall/ApImg4Ticket", "noNonce/ApImg4Ticket"],
            manifests.EnumerateArray().Select(m => m.GetProperty("source").GetString()));
        Assert.All(manifests.EnumerateArray(), m => Assert.Equal("apple-secure-boot-root-ca-g2", m.GetProperty("trustAnchor").GetString()));
        var old = Json(CliRunner.Run("img4", "verify", Data("img4helper-apticket.im4m"), "--json"));
        Assert.Equal("apple-root-ca", old.GetProperty("manifests")[0].GetProperty("trustAnchor").GetString());
    }

    [Fact]
    public void Verify_refuses_a_tampered_ticket_with_exit_1_and_a_typed_problem()
    {
        var der = File.ReadAllBytes(Data("pyimg4-IM4M"));
        // ECID's last byte (openssl asn1parse: INTEGER at offset 219, 6 bytes): still DER, no longer what Apple signed.
        der[219 + 2 + 5] ^= 0x01;
        var path = _temp.Combine("tampered.im4m");
        File.WriteAllBytes(path, der);
        var r = CliRunner.Run("img4", "verify", path, "--json");
        Assert.Equal(1, r.ExitCode);
        var problems = Json(r).GetProperty("manifests")[0].GetProperty("problems");
        Assert.Equal(["signature-invalid"], problems.EnumerateArray().Select(p => p.GetProperty("code").GetString()));
        Assert.Contains("NOT VALID", CliRunner.Run("img4", "verify", path).StdOut);
    }

    [Fact]
    public void A_file_that_does_not_decode_is_exit_2_naming_the_file_offset_and_rule()
    {
        var der = File.ReadAllBytes(Data("pyimg4-IM4M"));
        var path = _temp.Combine("cut.im4m");
        File.WriteAllBytes(path, der[..4000]);
        foreach (var command in new[] { "info", "verify" })
        {
            var r = CliRunner.Run("img4", command, path);
            Assert.Equal(2, r.ExitCode);
            Assert.Contains("cut.im4m", r.StdErr);
            Assert.Contains("offset", r.StdErr);
        }
        var json = CliRunner.Run("img4", "info", path, "--json");
        Assert.Equal("malformed", Json(json).GetProperty("error").GetProperty("code").GetString());
        File.WriteAllText(path, "not an image");
        Assert.Equal(2, CliRunner.Run("img4", "info", path).ExitCode);
    }

    [Fact]
    public void Extract_writes_the_raw_payload_PyIMG4_extracts()
    {
        var outPath = _temp.Combine("payload.bin");
        var r = CliRunner.Run("img4", "extract", Data("pyimg4-IMG4"), "-o", outPath, "--json");
        Assert.True(r.ExitCode == 0, r.StdErr);
        // SHA-256 of PyIMG4's tests/bin/test_payload (commit 80491329), the payload its own tests extract from this IMG4.
        Assert.Equal("7a5a2ea02f77ded439dfc4774db40c73c87cae962b35779307703d282e5fd690", Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(outPath))));
        Assert.Equal("raw", Json(r).GetProperty("encoding").GetString());
    }

    [Fact]
    public void Extract_decompresses_LZSS_and_answers_LZFSE_and_encrypted_payloads_with_what_they_are()
    {
        var plain = System.Text.Encoding.ASCII.GetBytes("kernelcache kernelcache kernelcache!");
        var lzss = new Im4Payload("krnl", "KernelCacheBuilder", LzssSamples.Container(plain));
        var lzssPath = _temp.Combine("lzss.im4p");
        File.WriteAllBytes(lzssPath, lzss.Encode());
        var outPath = _temp.Combine("krnl.bin");
        Assert.Equal(0, CliRunner.Run("img4", "extract", lzssPath, "-o", outPath).ExitCode);
        Assert.Equal(plain, File.ReadAllBytes(outPath));

        var lzfsePath = _temp.Combine("lzfse.im4p");
        File.WriteAllBytes(lzfsePath, new Im4Payload("krnl", "x", [.. "bvx2"u8, 0, 0, 0, 0], compression: new Im4Compression(Im4Compression.Lzfse, 100)).Encode());
        var lzfse = CliRunner.Run("img4", "extract", lzfsePath, "-o", outPath, "--json");
        Assert.Equal(1, lzfse.ExitCode);
        Assert.Equal("compressed-with-lzfse", Json(lzfse).GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(0, CliRunner.Run("img4", "extract", lzfsePath, "-o", outPath, "--raw").ExitCode);

        var encryptedPath = _temp.Combine("enc.im4p");
        File.WriteAllBytes(encryptedPath, new Im4Payload("ibot", "iBoot", [1, 2, 3], keybags: [0x30, 0x00]).Encode());
        Assert.Contains("encrypted", CliRunner.Run("img4", "extract", encryptedPath, "-o", outPath).StdErr);
        Assert.Equal(2, CliRunner.Run("img4", "extract", Data("pyimg4-IM4M"), "-o", outPath).ExitCode);
    }

    [Fact]
    public void Info_reads_keybags_and_compression_info_laid_out_as_in_a_real_encrypted_iBoot()
    {
        // A fixture reproducing the layout of img4helper's iBoot.img4 IM4P (Apple firmware, not committed), as
        // openssl asn1parse shows it: payload, KBAG OCTET STRING { SEQUENCE { SEQUENCE { 1, iv, key }, SEQUENCE { 2, iv, key } } },
        // SEQUENCE { INTEGER 1, INTEGER 0x15DDC0 }. The IVs and wrapped keys are that file's.
        var kbag = new System.Formats.Asn1.AsnWriter(System.Formats.Asn1.AsnEncodingRules.DER);
        kbag.PushSequence();
        foreach (var (type, iv, key) in new[]
                 {
                     (1, "2c1004e1b7c60cdac82d586e792b7d68", "a8ef0926ef907209b286eebe29fb0d348e9dbe8ade831fb097202d003e105edf"),
                     (2, "9e46b3acc3f70935c3bd0613165a2202", "1a78ce1e70a4a9a48bacfadef802c01c4d966e56630837e259c77f28b256d14b"),
                 })
        {
            kbag.PushSequence();
            kbag.WriteInteger(type);
            kbag.WriteOctetString(Convert.FromHexString(iv));
            kbag.WriteOctetString(Convert.FromHexString(key));
            kbag.PopSequence();
        }
        kbag.PopSequence();
        var payload = new Im4Payload("ibot", "iBoot-5540.40.50", RandomNumberGenerator.GetBytes(64), keybags: kbag.Encode(),
            compression: new Im4Compression(Im4Compression.Lzfse, 0x15DDC0));
        var der = payload.Encode();
        Assert.Equal(["SEQUENCE", "IA5STRING:IM4P", "IA5STRING:ibot", "IA5STRING:iBoot-5540.40.50", "OCTET STRING", "OCTET STRING",
            "SEQUENCE", "INTEGER:01", "INTEGER:15DDC0"], Asn1Parse.Run(der).Select(e => e.Shape));
        var path = _temp.Combine("ibot.im4p");
        File.WriteAllBytes(path, der);
        var json = Json(CliRunner.Run("img4", "info", path, "--json")).GetProperty("payload");
        Assert.Equal("encrypted", json.GetProperty("encoding").GetString());
        Assert.Equal(0x15DDC0, json.GetProperty("uncompressedSize").GetInt64());
        var keybags = json.GetProperty("keybags");
        Assert.Equal(2, keybags.GetArrayLength());
        Assert.Equal("9e46b3acc3f70935c3bd0613165a2202", keybags[1].GetProperty("iv").GetString());
        Assert.Equal(Im4Payload.FromBytes(der).Encode(), der);
    }
}

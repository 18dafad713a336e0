using System.Text.Json;
using KextTrust.Formats.CodeSigning;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Bundles;
using KextTrust.TestSupport;

namespace KextTrust.Cli.Tests;

public class CodesignCommandTests
{
    internal static string WriteKext(string dir, string id = "com.example.driver")
    {
        var path = KextBundleWriter.Write(dir, new KextBundleSpec(id, "1.0")
        {
            Slices = [new(MachOTargetArchitecture.X86_64, ["_IOLog"]), new(MachOTargetArchitecture.Arm64e, ["_IOLog"])],
            PlugIns = [new KextBundleSpec(id + ".plugin", "1.0") { Slices = [new(MachOTargetArchitecture.Arm64e, ["_IOLog"])] }],
        });
        Directory.CreateDirectory(Path.Combine(path, "Contents", "Resources"));
        File.WriteAllText(Path.Combine(path, "Contents", "Resources", "readme.txt"), "hello\n");
        return path;
    }

    [Fact]
    public void Signs_with_the_PKCS12_from_pki_init_and_reports_cdhashes()
    {
        using var tmp = new TempDir();
        Assert.Equal(0, CliRunner.Run("pki", "init", tmp.Combine("pki")).ExitCode);
        var kext = WriteKext(tmp.Path);
        var r = CliRunner.Run("codesign", kext, "--p12", tmp.Combine("pki", "leaf.p12"), "--password", "kextrust", "--sha1", "--json");
        Assert.True(r.ExitCode == 0, r.StdErr);
        using var doc = JsonDocument.Parse(r.StdOut);
        var item = doc.RootElement[0];
        Assert.Equal("com.example.driver", item.GetProperty("identifier").GetString());
        Assert.Equal(2, item.GetProperty("cdHashes").GetArrayLength());
        Assert.Equal("com.example.driver.plugin", item.GetProperty("nested")[0].GetProperty("identifier").GetString());

        using var exe = MachOFile.Open(Path.Combine(kext, "Contents", "MacOS", "driver"));
        foreach (var slice in exe.Slices)
        {
            var sig = EmbeddedSignature.Parse(slice.CodeSignatureData, "signed");
            Assert.Equal(CodeSigningHashType.Sha1, sig.CodeDirectory.HashType);
            Assert.Equal(CodeSigningHashType.Sha256, Assert.Single(sig.AlternateCodeDirectories).HashType);
            Assert.Equal("KT4TEST001", sig.CodeDirectory.TeamId);
            Assert.Contains("certificate leaf[subject.OU] = KT4TEST001", sig.Requirements!.ToText());
            Assert.False(sig.Signature!.CmsBytes.IsEmpty);
        }
        Assert.Equal(0, CliRunner.Run("verify", kext, "--trust-root", tmp.Combine("pki", "root.pem")).ExitCode);
    }

    [Fact]
    public void Signs_with_PEM_key_cert_and_chain()
    {
        using var tmp = new TempDir();
        Assert.Equal(0, CliRunner.Run("pki", "init", tmp.Combine("pki")).ExitCode);
        File.WriteAllText(tmp.Combine("chain.pem"), File.ReadAllText(tmp.Combine("pki", "intermediate.pem")));
        var kext = WriteKext(tmp.Path);
        var r = CliRunner.Run("codesign", kext, "--cert", tmp.Combine("pki", "leaf.pem"), "--key", tmp.Combine("pki", "leaf.key.pem"), "--chain", tmp.Combine("chain.pem"));
        Assert.True(r.ExitCode == 0, r.StdErr);
        Assert.Contains("signed ", r.StdOut);
        var v = CliRunner.Run("verify", kext, "--trust-root", tmp.Combine("pki", "root.pem"), "--json");
        Assert.True(v.ExitCode == 0, v.StdOut);
    }

    [Fact]
    public void Ad_hoc_signing_and_misuse()
    {
        using var tmp = new TempDir();
        var kext = WriteKext(tmp.Path);
        Assert.Equal(0, CliRunner.Run("codesign", kext, "--adhoc").ExitCode);
        var v = CliRunner.Run("verify", kext, "--json");
        Assert.Equal(1, v.ExitCode);
        using var doc = JsonDocument.Parse(v.StdOut);
        Assert.Equal("adhoc", doc.RootElement[0].GetProperty("status").GetString());

        Assert.Equal(2, CliRunner.Run("codesign", kext).ExitCode); // no identity and no --adhoc
        Assert.Equal(2, CliRunner.Run("codesign", kext, "--adhoc", "--p12", "x.p12").ExitCode);
        var missing = CliRunner.Run("codesign", tmp.Combine("nope.kext"), "--adhoc");
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("nope.kext", missing.StdErr);
    }
}

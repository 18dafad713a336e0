using System.Text.Json;
using KextTrust.Formats.MachO;
using KextTrust.TestSupport;

namespace KextTrust.Cli.Tests;

public class VerifyCommandTests
{
    private static string CoreClr => Path.Combine(Corpus.RuntimePack("osx-arm64"), "native", "libcoreclr.dylib");

    [Fact]
    public void Microsoft_dylib_is_valid_json_with_team_signer_and_Apple_root()
    {
        var r = CliRunner.Run("verify", CoreClr, "--json");
        Assert.True(r.ExitCode == 0, r.StdOut + r.StdErr);
        using var doc = JsonDocument.Parse(r.StdOut);
        var item = doc.RootElement[0];
        Assert.Equal(CoreClr, item.GetProperty("path").GetString());
        Assert.Equal("valid", item.GetProperty("status").GetString());
        Assert.Equal("UBF8T346G9", item.GetProperty("teamId").GetString());
        Assert.Equal("Developer ID Application: Microsoft Corporation (UBF8T346G9)", item.GetProperty("signer").GetString());
        Assert.True(item.GetProperty("kextSigningAuthorized").GetBoolean());
        Assert.True(item.GetProperty("requirementSatisfied").GetBoolean());
        Assert.Equal("Apple Root CA", item.GetProperty("trustedRoot").GetString());
        Assert.False(item.GetProperty("trustedByRequest").GetBoolean());
        Assert.False(item.GetProperty("isKextBinary").GetBoolean());
        Assert.Contains("not a kext", item.GetProperty("note").GetString());
        Assert.All(item.GetProperty("cdhashes").EnumerateArray(), h => Assert.Matches("^[0-9a-f]{40}$", h.GetString()));
        Assert.Equal(0, item.GetProperty("problems").GetArrayLength());
        Assert.True(item.GetProperty("pagesVerified").GetInt64() > 100);
    }

    [Fact]
    public void Folder_of_runtime_pack_binaries_verifies_with_one_thread_too()
    {
        var folder = Path.Combine(Corpus.RuntimePack("osx-x64"), "native");
        var r = CliRunner.Run("verify", folder, "--json", "--parallel", "1");
        Assert.True(r.ExitCode == 0, r.StdOut + r.StdErr);
        using var doc = JsonDocument.Parse(r.StdOut);
        var expected = Corpus.RuntimePackMachOFiles().Count(f => f.StartsWith(folder, StringComparison.Ordinal));
        Assert.Equal(expected, doc.RootElement.GetArrayLength());
        Assert.All(doc.RootElement.EnumerateArray(), i => Assert.Equal("valid", i.GetProperty("status").GetString()));
    }

    [Fact]
    public void Tampered_page_exits_1_with_the_problem_located()
    {
        using var tmp = new TempDir();
        var bytes = File.ReadAllBytes(CoreClr);
        var slice = MachOFile.FromBytes(bytes).Slices[0];
        bytes[slice.FileOffset + 3 * 4096 + 9] ^= 0x10;
        var path = tmp.Combine("libcoreclr.dylib");
        File.WriteAllBytes(path, bytes);
        var r = CliRunner.Run("verify", path, "--json");
        Assert.Equal(1, r.ExitCode);
        using var doc = JsonDocument.Parse(r.StdOut);
        var item = doc.RootElement[0];
        Assert.Equal("invalid", item.GetProperty("status").GetString());
        var p = item.GetProperty("problems")[0];
        Assert.Equal("code-page-hash-mismatch", p.GetProperty("code").GetString());
        Assert.Equal(slice.FileOffset + 3 * 4096, p.GetProperty("offset").GetInt64());
        Assert.Equal("arm64", p.GetProperty("arch").GetString());
        Assert.Equal(path, p.GetProperty("path").GetString());
        Assert.Contains("code page 3 ", p.GetProperty("message").GetString());

        var human = CliRunner.Run("verify", path);
        Assert.Equal(1, human.ExitCode);
        Assert.Contains("CodePageHashMismatch", human.StdOut);
        Assert.Contains("invalid", human.StdOut);
    }

    [Fact]
    public void Truncated_signature_exits_2_naming_the_file()
    {
        using var tmp = new TempDir();
        var bytes = File.ReadAllBytes(CoreClr);
        var slice = MachOFile.FromBytes(bytes).Slices[0];
        var path = tmp.Combine("cut.dylib");
        File.WriteAllBytes(path, bytes.AsSpan(0, (int)(slice.FileOffset + slice.CodeSignature!.Value.DataOffset + 100)).ToArray());
        var r = CliRunner.Run("verify", path, "--json");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains(path, r.StdErr);
        using var doc = JsonDocument.Parse(r.StdOut);
        Assert.Equal("unreadable", doc.RootElement[0].GetProperty("status").GetString());
        Assert.Equal(2, CliRunner.Run("verify", tmp.Combine("absent")).ExitCode);
    }

    [Fact]
    public void Own_kext_is_valid_only_with_trust_root_and_the_output_says_so()
    {
        using var tmp = new TempDir();
        Assert.Equal(0, CliRunner.Run("pki", "init", tmp.Combine("pki"), "--team", "ZYXWV98765").ExitCode);
        var kext = CodesignCommandTests.WriteKext(tmp.Path);
        Assert.Equal(0, CliRunner.Run("codesign", kext, "--p12", tmp.Combine("pki", "leaf.p12"), "--password", "kextrust").ExitCode);
        var root = tmp.Combine("pki", "root.pem");

        var ok = CliRunner.Run("verify", kext, "--json", "--trust-root", root);
        Assert.True(ok.ExitCode == 0, ok.StdOut);
        using (var doc = JsonDocument.Parse(ok.StdOut))
        {
            var item = doc.RootElement[0];
            Assert.Equal("valid", item.GetProperty("status").GetString());
            Assert.Equal("ZYXWV98765", item.GetProperty("teamId").GetString());
            Assert.Contains("KextTrust Test Root CA", item.GetProperty("trustedRoot").GetString());
            Assert.True(item.GetProperty("trustedByRequest").GetBoolean());
            Assert.Contains("trusted by request", item.GetProperty("note").GetString());
            Assert.True(item.GetProperty("requirementSatisfied").GetBoolean());
            Assert.Equal("valid", item.GetProperty("nested")[0].GetProperty("status").GetString());
            Assert.Equal(2, item.GetProperty("cdhashes").GetArrayLength());
        }
        var human = CliRunner.Run("verify", kext, "--trust-root", root);
        Assert.Equal(0, human.ExitCode);
        Assert.Contains("trusted by request (--trust-root)", human.StdOut);

        var untrusted = CliRunner.Run("verify", kext, "--json");
        Assert.Equal(1, untrusted.ExitCode);
        using (var doc = JsonDocument.Parse(untrusted.StdOut))
        {
            var item = doc.RootElement[0];
            Assert.Equal("invalid", item.GetProperty("status").GetString());
            Assert.Contains(item.GetProperty("problems").EnumerateArray(), p => p.GetProperty("code").GetString() == "untrusted-root");
            Assert.False(item.GetProperty("requirementSatisfied").GetBoolean());
        }

        File.WriteAllText(Path.Combine(kext, "Contents", "Resources", "readme.txt"), "changed\n");
        var changed = CliRunner.Run("verify", kext, "--json", "--trust-root", root);
        Assert.Equal(1, changed.ExitCode);
        using (var doc = JsonDocument.Parse(changed.StdOut))
        {
            var p = Assert.Single(doc.RootElement[0].GetProperty("problems").EnumerateArray());
            Assert.Equal("resource-changed", p.GetProperty("code").GetString());
            Assert.EndsWith("readme.txt", p.GetProperty("path").GetString());
        }
        Assert.Equal(2, CliRunner.Run("verify", kext, "--trust-root", tmp.Combine("no-such.pem")).ExitCode);
    }

    [Fact]
    public void Folder_given_as_a_relative_path_verifies_each_kext_once()
    {
        using var tmp = new TempDir();
        Assert.Equal(0, CliRunner.Run("pki", "init", tmp.Combine("pki")).ExitCode);
        var folder = tmp.Combine("kexts");
        Directory.CreateDirectory(folder);
        var kext = CodesignCommandTests.WriteKext(folder);
        Assert.Equal(0, CliRunner.Run("codesign", kext, "--p12", tmp.Combine("pki", "leaf.p12"), "--password", "kextrust").ExitCode);

        // The kext's executable is part of the kext, never a second, bare Mach-O item (which would lack its Info.plist).
        var relative = Path.GetRelativePath(Environment.CurrentDirectory, folder);
        Assert.False(Path.IsPathRooted(relative));
        var r = CliRunner.Run("verify", relative, "--json", "--trust-root", tmp.Combine("pki", "root.pem"));
        Assert.True(r.ExitCode == 0, r.StdOut);
        using var doc = JsonDocument.Parse(r.StdOut);
        var item = Assert.Single(doc.RootElement.EnumerateArray());
        Assert.Equal("kext", item.GetProperty("kind").GetString());
        Assert.Equal("valid", item.GetProperty("status").GetString());
    }

    [Fact]
    public void Folder_lists_its_kexts_and_the_bare_Mach_O_files_in_its_subfolders_but_not_the_kexts_contents()
    {
        using var tmp = new TempDir();
        var folder = tmp.Combine("mixed");
        var kext = CodesignCommandTests.WriteKext(Path.Combine(folder, "a", "b"));
        Directory.CreateDirectory(Path.Combine(folder, "lib", "deep"));
        var dylib = Path.Combine(folder, "lib", "deep", "libhostfxr.dylib");
        File.Copy(Corpus.RuntimePackMachOFiles().First(f => f.EndsWith("libhostfxr.dylib", StringComparison.Ordinal)), dylib);
        File.WriteAllText(Path.Combine(folder, "lib", "notes.txt"), "not a Mach-O\n");
        // A Mach-O file inside the kext but outside its executable's place: still the kext's, never a separate item.
        File.Copy(dylib, Path.Combine(kext, "Contents", "Resources", "extra.dylib"));

        var r = CliRunner.Run("verify", folder, "--json");
        using var doc = JsonDocument.Parse(r.StdOut);
        var paths = doc.RootElement.EnumerateArray().Select(i => i.GetProperty("path").GetString()!).ToArray();
        Assert.Equal([kext, dylib], paths);
    }

    [Fact]
    public void Unsigned_kext_exits_1()
    {
        using var tmp = new TempDir();
        var kext = CodesignCommandTests.WriteKext(tmp.Path);
        var r = CliRunner.Run("verify", kext, "--json");
        Assert.Equal(1, r.ExitCode);
        using var doc = JsonDocument.Parse(r.StdOut);
        Assert.Equal("unsigned", doc.RootElement[0].GetProperty("status").GetString());
    }
}

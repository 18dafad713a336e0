using System.Security.Cryptography;
using System.Text.Json;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Bundles;
using KextTrust.TestSupport;

namespace KextTrust.Cli.Tests;

/// <summary>
/// What <c>verify --all-code-directories</c> changes for a user: a kext signed (ad hoc, so no CMS binds the alternate
/// CodeDirectories by cdhash) with a SHA-1 CodeDirectory beside the SHA-256 one. The kernel checks pages against the
/// strongest (SHA-256) only; <c>codesign --verify</c> also against the SHA-1 one.
/// </summary>
public sealed class VerifyAllCodeDirectoriesTests
{
    private static JsonElement Verify(string kext, bool all)
    {
        var r = CliRunner.Run(["verify", kext, "--json", .. all ? ["--all-code-directories"] : Array.Empty<string>()]);
        using var doc = JsonDocument.Parse(r.StdOut);
        return doc.RootElement[0].Clone();
    }

    private static string[] ProblemCodes(JsonElement item) => [.. item.GetProperty("problems").EnumerateArray().Select(p => p.GetProperty("code").GetString()!)];

    [Fact]
    public void A_tampered_SHA1_page_hash_is_found_only_with_the_flag_and_the_flag_hashes_every_page_twice()
    {
        using var tmp = new TempDir();
        var kext = KextBundleWriter.Write(tmp.Path, new KextBundleSpec("com.example.twocds", "1.0")
        {
            Libraries = new Dictionary<string, string> { ["com.apple.kpi.iokit"] = "20.0" },
            Slices = [new KextSliceSpec(MachOTargetArchitecture.Arm64e, ["_IOLog"])],
        });
        var sign = CliRunner.Run("codesign", kext, "--adhoc", "--sha1");
        Assert.True(sign.ExitCode == 0, sign.StdOut + sign.StdErr);

        var intactBest = Verify(kext, all: false);
        var intactAll = Verify(kext, all: true);
        Assert.Equal(ProblemCodes(intactBest), ProblemCodes(intactAll));
        // Two CodeDirectories (SHA-1 and SHA-256) over the same pages: the flag hashes every page with both.
        Assert.Equal(2, intactAll.GetProperty("cdhashes").GetArrayLength());
        Assert.Equal(2 * intactBest.GetProperty("pagesVerified").GetInt64(), intactAll.GetProperty("pagesVerified").GetInt64());

        // Change the SHA-1 CodeDirectory's hash of page 0 (found by value: SHA-1 of the file's first page).
        var exe = Path.Combine(kext, "Contents", "MacOS", "twocds");
        var bytes = File.ReadAllBytes(exe);
        var slot = bytes.AsSpan().IndexOf(SHA1.HashData(bytes.AsSpan(0, 4096)));
        Assert.True(slot > 4096, "the SHA-1 code slot of page 0 is not in the signature");
        bytes[slot] ^= 0x01;
        File.WriteAllBytes(exe, bytes);

        var tamperedBest = Verify(kext, all: false);
        var tamperedAll = Verify(kext, all: true);
        // Without the flag (the kernel's check) the tamper is invisible: same verdict and problems as the intact kext.
        Assert.Equal(intactBest.GetProperty("status").GetString(), tamperedBest.GetProperty("status").GetString());
        Assert.Equal(ProblemCodes(intactBest), ProblemCodes(tamperedBest));
        // With it, page 0 of the SHA-1 CodeDirectory no longer matches.
        var added = tamperedAll.GetProperty("problems").EnumerateArray()
            .Where(p => !intactAll.GetProperty("problems").EnumerateArray().Any(q => q.GetProperty("message").GetString() == p.GetProperty("message").GetString()))
            .Select(p => p.GetProperty("message").GetString()!).ToArray();
        Assert.Equal(["code page 0 does not match its Sha1 hash in the CodeDirectory (slot 0x0)"], added);
        Assert.Equal("invalid", tamperedAll.GetProperty("status").GetString());
    }
}

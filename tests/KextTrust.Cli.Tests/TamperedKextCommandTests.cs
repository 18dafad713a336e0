using KextTrust.Formats.MachO;
using KextTrust.Kexts.Bundles;

namespace KextTrust.Cli.Tests;

/// <summary>
/// The report, through the CLI: one byte flipped inside the arm64e slice of the signed driver. <c>verify</c> says
/// <c>code-page-hash-mismatch</c>; on the SIP-on Mac <c>install</c> does not stage it and reports it blocked, and <c>why</c>
/// fails it at the signature step, both with verify's code and page.
/// </summary>
[Collection(BootMacCollection.Name)]
public sealed class TamperedKextCommandTests(BootMacFixture fx)
{
    [Fact]
    public void A_flipped_byte_in_the_arm64e_slice_is_refused_by_install_and_why_with_verifys_code_and_page()
    {
        using var mac = fx.Clone();
        using var work = new KextTrust.TestSupport.TempDir("kextrust-tampercli");
        var installed = Directory.EnumerateDirectories(mac.PathOf("Library/Extensions"), "*.kext")
            .Single(d => KextBundle.Open(d).BundleId == BootMacFixture.Driver);
        var kext = Path.Combine(work.Path, Path.GetFileName(installed));
        BootMacFixture.CopyTree(installed, kext);
        var exe = KextBundle.Open(kext).ExecutablePath!;
        long page = KextTrust.TestSupport.CodePageTamper.FlipFirstTextByte(exe);

        var verify = CliRunner.Run("verify", kext, "--trust-root", fx.TrustRootPem, "--json");
        Assert.Equal(1, verify.ExitCode);
        using (var doc = System.Text.Json.JsonDocument.Parse(verify.StdOut))
        {
            var problem = doc.RootElement.EnumerateArray().Single().GetProperty("problems").EnumerateArray().First();
            Assert.Equal("code-page-hash-mismatch", problem.GetProperty("code").GetString());
            Assert.Equal("arm64e", problem.GetProperty("arch").GetString());
            Assert.Contains($"code page {page} ", problem.GetProperty("message").GetString());
        }

        var install = mac.Json("install", kext);
        Assert.Equal(0, install.ExitCode);
        var item = install.Json.EnumerateArray().Single();
        Assert.False(item.GetProperty("staged").GetBoolean());
        Assert.False(item.GetProperty("allowed").GetBoolean());
        Assert.False(item.GetProperty("alertShown").GetBoolean());
        Assert.Equal("invalid", item.GetProperty("signature").GetString());
        Assert.Equal("code-page-hash-mismatch", item.GetProperty("signatureProblem").GetString());
        Assert.Equal(page, item.GetProperty("signaturePage").GetInt64());

        var why = mac.Json("why", BootMacFixture.Driver);
        Assert.Equal(1, why.ExitCode);
        Assert.False(why.Json.GetProperty("allowed").GetBoolean());
        Assert.Equal("signature-invalid", why.Str("code"));
        Assert.Equal(29, why.Json.GetProperty("kmErrorCode").GetInt32());
        var signature = why.Json.GetProperty("signature");
        Assert.Equal("code-page-hash-mismatch", signature.GetProperty("problem").GetString());
        Assert.Equal(page, signature.GetProperty("page").GetInt64());
        var step = why.Json.GetProperty("steps").EnumerateArray().Single(s => s.GetProperty("step").GetString() == "signature");
        Assert.Equal("failed", step.GetProperty("outcome").GetString());
        Assert.Equal("signature-invalid", step.GetProperty("code").GetString());
        Assert.Contains($"code-page-hash-mismatch (page {page}, arm64e)", step.GetProperty("detail").GetString());
    }
}

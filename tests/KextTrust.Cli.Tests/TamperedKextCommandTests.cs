using KextTrust.Formats.MachO;
using KextTrust.Kexts.Bundles;

namespace KextTrust.Cli.Tests;

/// <summary>
/// The report, through the CLI: one byte flipped inside the arm64e slice of the signed driver. <c>verify</c> says
/// <c>code-page-hash-mismatch</c>; on the SIP-on Mac <c>install</c> does not stage it and reports it blocked, and <c>why</c>
/// fails it at the signature step, both with verify's code and page; <c>approve</c> (of a kext changed after its alert)
/// and <c>mdm profile</c> refuse it with the code <c>why</c> gives it.
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

    [Fact]
    public void Approve_and_mdm_profile_refuse_a_tampered_kext_with_the_code_why_gives_it()
    {
        // A fresh SIP-on Mac that trusts the fixture's PKI: the signed driver installs, staged, with its "blocked" alert.
        using var work = new KextTrust.TestSupport.TempDir("kextrust-tamperapprove");
        var macDir = work.Combine("mac");
        var init = CliRunner.Run("machine", "init", macDir, "--platform", "apple-silicon", "--macos", "14.5",
            "--admin", $"{BootMacFixture.Admin}:{BootMacFixture.AdminPassword}", "--trust-root", fx.TrustRootPem);
        Assert.True(init.ExitCode == 0, init.StdErr);
        var source = Directory.EnumerateDirectories(Path.Combine(fx.MacDir, "Library/Extensions"), "*.kext")
            .Single(d => KextBundle.Open(d).BundleId == BootMacFixture.Driver);
        var kext = Path.Combine(work.Path, Path.GetFileName(source));
        BootMacFixture.CopyTree(source, kext);
        var install = BootMacFixture.Json(macDir, "install", kext);
        Assert.True(install.Json.EnumerateArray().Single().GetProperty("alertShown").GetBoolean(), install.Json.ToString());

        // The copy on the Mac changes after its alert: one byte of its arm64e code.
        var onMac = Path.Combine(macDir, "Library/Extensions", Path.GetFileName(source));
        long page = KextTrust.TestSupport.CodePageTamper.FlipFirstTextByte(KextBundle.Open(onMac).ExecutablePath!);
        var why = BootMacFixture.Json(macDir, "why", BootMacFixture.Driver);
        Assert.Equal(1, why.ExitCode);
        var whyCode = why.Json.GetProperty("steps").EnumerateArray().Single(s => s.GetProperty("step").GetString() == "signature").GetProperty("code").GetString();
        Assert.Equal("signature-invalid", whyCode);
        Assert.Equal(whyCode, why.Str("code"));

        var policy = Path.Combine(macDir, "var/db/SystemPolicyConfiguration/KextPolicy");
        var before = File.ReadAllBytes(policy);
        var approve = BootMacFixture.Json(macDir, "approve", "--team", BootMacFixture.Team, "--user", BootMacFixture.Admin, "--password", BootMacFixture.AdminPassword);
        Assert.Equal(1, approve.ExitCode);
        Assert.Equal(whyCode, approve.ErrorCode);
        var error = approve.Json.GetProperty("error");
        Assert.Equal(1, error.GetProperty("exitCode").GetInt32());
        var message = error.GetProperty("message").GetString()!;
        Assert.Contains($"code-page-hash-mismatch (page {page}, arm64e)", message);
        Assert.Equal($"kextrust: refused: {message} (code signature-invalid (KMErrorDomain 29))", approve.StdErr.Trim());
        var text = BootMacFixture.K(macDir, "approve", "--team", BootMacFixture.Team, "--user", BootMacFixture.Admin, "--password", BootMacFixture.AdminPassword);
        Assert.Equal(1, text.ExitCode);
        Assert.Equal(approve.StdErr.Trim(), text.StdErr.Trim());
        Assert.Equal(before, File.ReadAllBytes(policy));

        // A kext-policy profile cannot list it either: the same code.
        var profile = CliRunner.Run("mdm", "profile", onMac, "-o", work.Combine("p.mobileconfig"), "--trust-root", fx.TrustRootPem, "--json");
        Assert.Equal(1, profile.ExitCode);
        using var doc = System.Text.Json.JsonDocument.Parse(profile.StdOut);
        var profileError = doc.RootElement.GetProperty("error");
        Assert.Equal(whyCode, profileError.GetProperty("code").GetString());
        Assert.Contains($"code-page-hash-mismatch (page {page}, arm64e)", profileError.GetProperty("message").GetString());
        Assert.False(File.Exists(work.Combine("p.mobileconfig")));

        // Restored (the same byte flipped back), the kext is approved; approve --json says what it allowed.
        KextTrust.TestSupport.CodePageTamper.FlipFirstTextByte(KextBundle.Open(onMac).ExecutablePath!);
        var approved = BootMacFixture.Json(macDir, "approve", "--team", BootMacFixture.Team, "--user", BootMacFixture.Admin, "--password", BootMacFixture.AdminPassword);
        Assert.True(approved.ExitCode == 0, approved.StdErr);
        Assert.Equal(BootMacFixture.Team, approved.Str("teamId"));
        Assert.Equal([BootMacFixture.Driver], approved.Json.GetProperty("bundleIds").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(BootMacFixture.Admin, approved.Str("user"));
        Assert.EndsWith(" UTC", approved.Str("time"));
        var usage = BootMacFixture.Json(macDir, "approve", "--user", BootMacFixture.Admin, "--password", BootMacFixture.AdminPassword);
        Assert.Equal((2, "usage"), (usage.ExitCode, usage.ErrorCode));
    }
}

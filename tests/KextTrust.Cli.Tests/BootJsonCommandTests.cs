using System.Security.Cryptography;
using System.Text.Json;
using static KextTrust.Cli.Tests.BootMacFixture;

namespace KextTrust.Cli.Tests;

/// <summary>The <c>--json</c> output of the secure-boot commands, read as a script would.</summary>
[Collection(BootMacCollection.Name)]
public sealed class BootJsonCommandTests(BootMacFixture fx)
{
    private static string Sha384Hex(byte[] bytes) => Convert.ToHexStringLower(SHA384.HashData(bytes));

    [Fact]
    public void Bputil_display_json_names_the_policy_the_rebuild_wrote()
    {
        var p = Json(fx.MacDir, "bputil", "-d");
        Assert.Equal(0, p.ExitCode);
        Assert.Equal("reduced", p.Str("securityMode"));
        Assert.True(p.Json.GetProperty("smb0").GetBoolean());
        Assert.False(p.Json.GetProperty("smb1").GetBoolean());
        Assert.True(p.Json.GetProperty("smb2").GetBoolean());
        Assert.False(p.Json.GetProperty("smb3").GetBoolean());
        Assert.Equal("0x0", p.Str("sip0"));
        Assert.Matches("^0x[0-9a-f]{16}$", p.Str("ecid"));
        Assert.Matches("^[0-9a-f]{96}$", p.Str("lpnh"));
        foreach (var h in new[] { "auxp", "auxi", "auxr" })
        {
            Assert.Equal(fx.Create.Str(h), p.Str(h));
            Assert.Equal(fx.Create.Json.GetProperty("policy").GetProperty(h).GetString(), p.Str(h));
        }
    }

    [Fact]
    public void Bputil_mode_change_json_is_the_new_policy_with_a_new_nonce()
    {
        using var mac = fx.Clone();
        var before = mac.Ok("bputil", "-d");
        mac.Run("startup", "--recovery");
        var full = mac.Ok("bputil", "-f", "-u", Admin, "-p", AdminPassword);
        Assert.Equal("full", full.Str("action"));
        var policy = full.Json.GetProperty("policy");
        Assert.Equal("full", policy.GetProperty("securityMode").GetString());
        Assert.False(policy.GetProperty("smb2").GetBoolean());
        Assert.Equal(JsonValueKind.Null, policy.GetProperty("auxi").ValueKind);
        Assert.NotEqual(before.Str("lpnh"), policy.GetProperty("lpnh").GetString());
        Assert.Equal(policy.GetProperty("lpnh").GetString(), mac.Ok("bputil", "-d").Str("lpnh"));
    }

    [Fact]
    public void Bputil_misuse_is_exit_2_with_a_usage_error_object()
    {
        var r = Json(fx.MacDir, "bputil", "-g", "-n", "-u", Admin, "-p", AdminPassword);
        Assert.Equal(2, r.ExitCode);
        Assert.Equal("usage", r.ErrorCode);
        Assert.Equal(2, r.Json.GetProperty("error").GetProperty("exitCode").GetInt32());
    }

    /// <summary>csrutil's JSON: SIP state, csr-active-config, the LocalPolicy's sip0 (the same bits), the two kext bits.</summary>
    private static void AssertCsr(JsonResult r, string sip, string csr, bool enforced, bool restart)
    {
        Assert.Equal(sip, r.Str("sip"));
        Assert.Equal(csr, r.Str("csrActiveConfig"));
        Assert.Equal(csr, r.Str("policySip0"));
        Assert.Equal(enforced, r.Json.GetProperty("kextSigningEnforced").GetBoolean());
        Assert.Equal(enforced, r.Json.GetProperty("userConsentRequired").GetBoolean());
        Assert.Equal(restart, r.Json.GetProperty("restartRequired").GetBoolean());
    }

    [Fact]
    public void Csrutil_status_and_enable_without_kext_json()
    {
        var status = Json(fx.MacDir, "csrutil", "status");
        Assert.Equal(0, status.ExitCode);
        AssertCsr(status, "enabled", "0x0", enforced: true, restart: false);

        using var mac = fx.Clone();
        mac.Run("startup", "--recovery");
        var relaxed = mac.Ok("csrutil", "enable", "--without", "kext", "-u", Admin, "-p", AdminPassword);
        AssertCsr(relaxed, "custom", "0x201", enforced: false, restart: true);
        Assert.Equal("0x201", mac.Ok("bputil", "-d").Str("sip0"));
    }

    [Fact]
    public void Kmutil_create_json_lists_included_and_excluded_kexts_and_the_hashes()
    {
        var c = fx.Create;
        Assert.Equal([Driver], c.BundleIds("included"));
        var driver = c.Json.GetProperty("included")[0];
        Assert.Equal(Team, driver.GetProperty("teamId").GetString());
        Assert.Matches("^[0-9a-f]{40}$", driver.GetProperty("cdHash").GetString());
        Assert.Equal("user", driver.GetProperty("consent").GetString());
        Assert.Equal("/Library/Extensions/driver.kext", driver.GetProperty("path").GetString());
        Assert.Equal("signature-unsigned", c.ExclusionCode(Unsigned));
        Assert.Equal("unsupported-kpi", c.ExclusionCode(Kauth));
        Assert.Equal("exclude-listed", c.ExclusionCode(Banned));
        var auxKc = c.Json.GetProperty("auxKc");
        Assert.Equal(1, auxKc.GetProperty("kexts").GetInt32());
        var file = File.ReadAllBytes(auxKc.GetProperty("path").GetString()!);
        Assert.Equal(file.Length, auxKc.GetProperty("bytes").GetInt64());
        Assert.Equal(Sha384Hex(file), auxKc.GetProperty("sha384").GetString());
        Assert.Equal(Sha384Hex(File.ReadAllBytes(Path.Combine(fx.MacDir, BootMac.Receipt))), c.Str("auxr"));
        Assert.True(c.Json.GetProperty("restartRequired").GetBoolean());
    }

    [Fact]
    public void Kmutil_inspect_json_shows_the_fileset_and_the_receipt()
    {
        var i = Json(fx.MacDir, "kmutil", "inspect");
        Assert.Equal(0, i.ExitCode);
        Assert.Equal([Driver], i.BundleIds("entries"));
        Assert.Equal(fx.Create.Json.GetProperty("auxKc").GetProperty("sha384").GetString(), i.Json.GetProperty("auxKc").GetProperty("sha384").GetString());
        var receipt = i.Json.GetProperty("receipt");
        Assert.Equal(i.Json.GetProperty("auxKc").GetProperty("sha384").GetString(), receipt.GetProperty("auxKcSha384").GetString());
        Assert.Equal(fx.Create.Str("auxp"), receipt.GetProperty("uaklSha384").GetString());
        var r = new JsonResult(0, receipt, "");
        Assert.Equal([Driver], r.BundleIds("included"));
        Assert.Equal("signature-unsigned", r.ExclusionCode(Unsigned));

        var none = Json(fx.OtherMacDir, "kmutil", "inspect");
        Assert.Equal(0, none.ExitCode);
        Assert.Equal(JsonValueKind.Null, none.Json.GetProperty("auxKc").ValueKind);
        Assert.Equal(JsonValueKind.Null, none.Json.GetProperty("receipt").ValueKind);
        Assert.Empty(none.BundleIds("entries"));
    }

    [Fact]
    public void Startup_showloaded_and_applepay_json_agree()
    {
        using var mac = fx.Clone();
        var boot = mac.Ok("startup");
        Assert.Equal("mac-os", boot.Str("runningOS"));
        Assert.True(boot.Json.GetProperty("thirdPartyKextsLoaded").GetBoolean());
        Assert.Equal(JsonValueKind.Null, boot.Json.GetProperty("refusal").ValueKind);
        Assert.Equal([Driver], boot.BundleIds("loaded"));
        Assert.True(boot.Json.GetProperty("loaded")[0].GetProperty("loadTag").GetInt32() > 0);
        Assert.Equal(boot.Str("bootSession"), mac.Ok("machine", "show").Str("bootSessionUuid"));

        var shown = mac.Ok("kmutil", "showloaded");
        Assert.Equal(boot.Str("bootSession"), shown.Str("bootSession"));
        Assert.Equal(boot.Json.GetProperty("loaded").ToString(), shown.Json.GetProperty("loaded").ToString());

        var pay = mac.Ok("applepay", "status");
        Assert.False(pay.Json.GetProperty("available").GetBoolean());
        Assert.Equal("third-party-kexts-loaded", pay.Str("reason"));
        Assert.Equal([Driver], pay.BundleIds("interferingKexts"));
        var other = Json(fx.OtherMacDir, "applepay", "status");
        Assert.True(other.Json.GetProperty("available").GetBoolean());
        Assert.Equal("no-aux-kc", other.Str("reason"));

        var recovery = mac.Ok("startup", "--recovery");
        Assert.Equal("one-true-recovery", recovery.Str("runningOS"));
        Assert.Empty(recovery.BundleIds("loaded"));
        Assert.NotEqual(boot.Str("bootSession"), recovery.Str("bootSession"));
    }

    [Fact]
    public void A_missing_machine_is_exit_2_with_an_error_object()
    {
        var r = Json(Path.Combine(fx.Temp.Path, "no-such-mac"), "startup");
        Assert.Equal(2, r.ExitCode);
        Assert.False(string.IsNullOrEmpty(r.ErrorCode));
        Assert.Equal(2, r.Json.GetProperty("error").GetProperty("exitCode").GetInt32());
        Assert.StartsWith("kextrust: ", r.StdErr, StringComparison.Ordinal);
    }
}

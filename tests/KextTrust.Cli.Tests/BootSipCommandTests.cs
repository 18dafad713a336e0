using static KextTrust.Cli.Tests.BootAttackCommandTests;
using static KextTrust.Cli.Tests.BootMacFixture;

namespace KextTrust.Cli.Tests;

/// <summary>
/// The seeds' Permissive Security path: "If SIP is disabled, the kext signature isn't enforced", and kernel extension
/// deprecation policies are not enforced when SIP is disabled (pipeline-facts §1, §10). Driven through the CLI.
/// </summary>
[Collection(BootMacCollection.Name)]
public sealed class BootSipCommandTests(BootMacFixture fx)
{
    [Fact]
    public void Csrutil_disable_in_1TR_admits_unsigned_and_unsupported_KPI_kexts_and_enable_restores_enforcement_after_a_rebuild()
    {
        using var mac = fx.Clone();
        mac.Run("startup", "--recovery");
        var off = mac.Ok("csrutil", "disable", "-u", Admin, "-p", AdminPassword);
        Assert.Equal("disabled", off.Str("sip"));
        Assert.False(off.Json.GetProperty("kextSigningEnforced").GetBoolean());
        Assert.False(off.Json.GetProperty("userConsentRequired").GetBoolean());
        var policy = mac.Ok("bputil", "-d");
        Assert.Equal("permissive", policy.Str("securityMode"));
        Assert.True(policy.Json.GetProperty("smb1").GetBoolean());
        Assert.Equal(off.Str("csrActiveConfig"), policy.Str("sip0"));

        // Without user consent in force every installed kext is in the UAKL: the LocalPolicy's auxp no longer
        // matches until an admin rebuilds, and the refusal says so rather than suggesting tampering.
        AssertRefused(mac, "UaklModified");
        var detail = mac.Json("startup").Json.GetProperty("refusal").GetProperty("detail").GetString()!;
        Assert.Contains("user consent is not in force (SIP CSR_ALLOW_UNAPPROVED_KEXTS is set)", detail);
        Assert.Contains("kmutil create", detail);
        var permissive = mac.Rebuild();
        Assert.Contains(Unsigned, permissive.BundleIds("included"));
        Assert.Contains(Kauth, permissive.BundleIds("included"));
        Assert.Equal("exclude-listed", permissive.ExclusionCode(Banned));
        AssertLoads(mac, Driver, Unsigned, Kauth);

        mac.Run("startup", "--recovery");
        var on = mac.Ok("csrutil", "enable", "-u", Admin, "-p", AdminPassword);
        Assert.Equal("enabled", on.Str("sip"));
        Assert.True(on.Json.GetProperty("kextSigningEnforced").GetBoolean());
        Assert.Equal("0x0", mac.Ok("bputil", "-d").Str("sip0"));
        AssertRefused(mac, "UaklModified");
        detail = mac.Json("startup").Json.GetProperty("refusal").GetProperty("detail").GetString()!;
        Assert.Contains("a change of SIP or kext consent", detail);
        Assert.DoesNotContain("not in force", detail);
        var enforced = mac.Rebuild();
        Assert.Equal([Driver], enforced.BundleIds("included"));
        Assert.Equal("signature-unsigned", enforced.ExclusionCode(Unsigned));
        Assert.Equal("unsupported-kpi", enforced.ExclusionCode(Kauth));
        AssertLoads(mac, Driver);
    }
}

using KextTrust.TestSupport;
using static KextTrust.Cli.Tests.BootMacFixture;
using KextTrust.Kexts.Trust;

namespace KextTrust.Cli.Tests;

/// <summary>
/// A software-only attacker with write access to the Mac's folder, and a user trying to lower security from macOS,
/// played against the real <c>kextrust</c> commands on a clone of <see cref="BootMacFixture"/>'s Mac.
/// </summary>
[Collection(BootMacCollection.Name)]
public sealed class BootAttackCommandTests(BootMacFixture fx)
{
    /// <summary><c>startup --json</c> refuses with <paramref name="code"/> (exit 1) and loads no third-party kext; showloaded agrees.</summary>
    internal static void AssertRefused(BootMac mac, string refusalCode)
    {
        // JSON writes the TrustCode in kebab-case (AuxKcRollback -> aux-kc-rollback).
        var code = System.Text.Json.JsonNamingPolicy.KebabCaseLower.ConvertName(refusalCode);
        var boot = mac.Json("startup");
        Assert.True(boot.ExitCode == 1, boot.Json.ToString());
        var refusal = boot.Json.GetProperty("refusal");
        Assert.Equal(code, refusal.GetProperty("code").GetString());
        Assert.False(string.IsNullOrWhiteSpace(refusal.GetProperty("detail").GetString()));
        Assert.False(boot.Json.GetProperty("thirdPartyKextsLoaded").GetBoolean());
        Assert.Empty(boot.BundleIds("loaded"));
        Assert.Equal("failed", refusal.GetProperty("outcome").GetString());
        var failed = Assert.Single(boot.Json.GetProperty("trace").EnumerateArray(), t => t.GetProperty("outcome").GetString() == "failed");
        Assert.Equal(code, failed.GetProperty("code").GetString());
        Assert.Equal(refusal.GetProperty("step").GetString(), failed.GetProperty("step").GetString());
        var shown = mac.Ok("kmutil", "showloaded");
        Assert.Equal(code, shown.Json.GetProperty("refusal").GetProperty("code").GetString());
        Assert.Empty(shown.BundleIds("loaded"));
    }

    /// <summary><c>startup --json</c> passes every check and the kernel loads exactly <paramref name="expected"/>.</summary>
    internal static JsonResult AssertLoads(BootMac mac, params string[] expected)
    {
        var boot = mac.Json("startup");
        Assert.True(boot.ExitCode == 0, boot.Json.ToString());
        Assert.Equal(expected.Order(StringComparer.Ordinal), boot.BundleIds("loaded").Order(StringComparer.Ordinal));
        return boot;
    }

    private static long OffsetOf(byte[] haystack, byte[] needle)
    {
        var i = haystack.AsSpan().IndexOf(needle);
        Assert.True(i >= 0, "the bytes to change are not in the file");
        return i;
    }

    /// <summary>Where to change one byte: the middle of the AuxKC, of the Image4's payload, of the receipt; inside the LocalPolicy's signed auxi.</summary>
    private static long TargetOffset(BootMac mac, string file) => file switch
    {
        BootMac.Image4 => OffsetOf(mac.Read(BootMac.Image4), mac.Read(BootMac.AuxKc)) + (mac.Read(BootMac.AuxKc).Length / 2),
        BootMac.LocalPolicy => OffsetOf(mac.Read(BootMac.LocalPolicy), Convert.FromHexString(mac.Ok("bputil", "-d").Str("auxi")!)) + 10,
        _ => mac.Read(file).Length / 2,
    };

    [Theory]
    [InlineData(BootMac.AuxKc, "AuxKcModified")]
    [InlineData(BootMac.Image4, "AuxKcImage4PayloadModified")]
    [InlineData(BootMac.Receipt, "ReceiptModified")]
    [InlineData(BootMac.LocalPolicy, "LocalPolicyNotSignedByThisMac")]
    public void One_byte_changed_is_refused_and_the_mac_boots_again_once_it_is_restored(string file, string code)
    {
        using var mac = fx.Clone();
        var offset = TargetOffset(mac, file);
        mac.FlipByte(file, offset);
        AssertRefused(mac, code);
        mac.FlipByte(file, offset);
        AssertLoads(mac, Driver);
    }

    [Fact]
    public void An_older_AuxKC_and_its_SEP_signed_Image4_copied_back_is_a_rollback()
    {
        using var mac = fx.Clone();
        var oldKc = mac.Read(BootMac.AuxKc);
        var oldImage4 = mac.Read(BootMac.Image4);
        // The user removes the driver and rebuilds; the attacker puts the older collection (with the driver) back.
        Directory.Delete(mac.PathOf("Library/Extensions/driver.kext"), recursive: true);
        Assert.Empty(mac.Rebuild().BundleIds("included"));
        AssertLoads(mac);
        File.WriteAllBytes(mac.PathOf(BootMac.AuxKc), oldKc);
        File.WriteAllBytes(mac.PathOf(BootMac.Image4), oldImage4);
        AssertRefused(mac, "AuxKcRollback");
    }

    [Fact]
    public void An_old_LocalPolicy_copied_back_is_a_replay()
    {
        using var mac = fx.Clone();
        var withKexts = mac.Read(BootMac.LocalPolicy);
        // The owner goes back to Full Security (no third-party kexts); the attacker replays the policy that allowed them.
        mac.Run("startup", "--recovery");
        mac.Ok("bputil", "-f", "-u", Admin, "-p", AdminPassword);
        AssertLoads(mac);
        File.WriteAllBytes(mac.PathOf(BootMac.LocalPolicy), withKexts);
        AssertRefused(mac, "LocalPolicyReplayed");
    }

    [Fact]
    public void A_LocalPolicy_from_another_Mac_is_refused()
    {
        using var mac = fx.Clone();
        File.Copy(Path.Combine(fx.OtherMacDir, BootMac.LocalPolicy), mac.PathOf(BootMac.LocalPolicy), overwrite: true);
        AssertRefused(mac, "LocalPolicyNotSignedByThisMac");
    }

    [Theory]
    [InlineData("Library/Extensions")]
    [InlineData(BootMac.AuxKcFolder)]
    public void A_kext_copied_in_by_hand_is_not_loaded_not_even_after_a_rebuild(string folder)
    {
        using var mac = fx.Clone();
        CopyTree(fx.RootkitSource, mac.PathOf(folder + "/rootkit.kext"));
        AssertLoads(mac, Driver);
        var rebuilt = mac.Rebuild();
        Assert.DoesNotContain(Rootkit, rebuilt.BundleIds("included"));
        Assert.Equal(folder == BootMac.AuxKcFolder ? null : "not-approved", rebuilt.ExclusionCode(Rootkit));
        AssertLoads(mac, Driver);
    }

    [Fact]
    public void A_row_inserted_into_KextPolicy_with_sqlite3_without_a_rebuild_is_refused()
    {
        using var mac = fx.Clone();
        var sqlite = ExternalTool.Require("sqlite3", "sqlite3");
        ExternalTool.RunChecked(sqlite, mac.PathOf(BootMac.KextPolicy),
            "INSERT INTO kext_policy (team_id, bundle_id, allowed, developer_name, flags) VALUES ('EVILTEAM01', '', 1, 'Attacker', 1);");
        Assert.Contains("EVILTEAM01", ExternalTool.RunChecked(sqlite, mac.PathOf(BootMac.KextPolicy), "SELECT team_id FROM kext_policy;"));
        AssertRefused(mac, "UaklModified");
    }

    [Theory]
    [InlineData(false, "NotInOneTrueRecovery", "bputil", "-n", "-k", "-u", Admin, "-p", AdminPassword)]
    [InlineData(true, "AuthenticationFailed", "bputil", "-n", "-k", "-u", Admin, "-p", "wrong")]
    [InlineData(true, "AdminRequired", "bputil", "-f", "-u", User, "-p", UserPassword)]
    [InlineData(false, "NotInOneTrueRecovery", "csrutil", "disable", "-u", Admin, "-p", AdminPassword)]
    [InlineData(true, "AuthenticationFailed", "csrutil", "disable", "-u", Admin, "-p", "wrong")]
    [InlineData(true, "AdminRequired", "csrutil", "enable", "--without", "kext", "-u", User, "-p", UserPassword)]
    [InlineData(false, "AuthenticationFailed", "kmutil", "create", "-u", Admin, "-p", "wrong")]
    [InlineData(false, "AdminRequired", "kmutil", "create", "-u", User, "-p", UserPassword)]
    public void Security_changes_without_1TR_or_an_admin_password_are_refused_and_change_nothing(bool inRecovery, string code, params string[] command)
    {
        using var mac = fx.Clone();
        if (inRecovery)
        {
            mac.Run("startup", "--recovery");
        }
        var before = mac.FolderHash();
        var r = mac.Json(command);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal(System.Text.Json.JsonNamingPolicy.KebabCaseLower.ConvertName(code), r.ErrorCode);
        Assert.False(string.IsNullOrWhiteSpace(r.Json.GetProperty("error").GetProperty("message").GetString()));
        Assert.Contains($"(code {code})", r.StdErr, StringComparison.Ordinal);
        Assert.Equal(before, mac.FolderHash());
    }

    [Theory]
    [InlineData(Unsigned, "SignatureUnsigned")]
    [InlineData(Banned, "ExcludeListed")]
    public void With_SIP_on_a_kext_is_left_out_of_the_AuxKC_with_its_reason_in_the_receipt(string bundleId, string code)
    {
        Assert.Equal(System.Text.Json.JsonNamingPolicy.KebabCaseLower.ConvertName(code), fx.Create.ExclusionCode(bundleId));
        var inspect = Json(fx.MacDir, "kmutil", "inspect");
        Assert.DoesNotContain(bundleId, inspect.BundleIds("entries"));
        var receipt = new JsonResult(0, inspect.Json.GetProperty("receipt"), "");
        Assert.Equal(System.Text.Json.JsonNamingPolicy.KebabCaseLower.ConvertName(code), receipt.ExclusionCode(bundleId));
        Assert.DoesNotContain(bundleId, receipt.BundleIds("included"));
        Assert.DoesNotContain(bundleId, Json(fx.MacDir, "kmutil", "showloaded").BundleIds("loaded"));
    }
}

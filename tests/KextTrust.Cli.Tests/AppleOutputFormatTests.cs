using System.Text.Json;
using KextTrust.TestSupport;
using Microsoft.Data.Sqlite;

namespace KextTrust.Cli.Tests;

/// <summary>
/// The Apple-named commands print what Apple's tools print, so scripts written against the real tools parse ours.
/// Expected texts are public captures of the real tools:
/// <list type="bullet">
/// <item><c>csrutil status</c> with 0x67 on macOS 11 (OpenCore users' notes, e.g. a Chinese hackintosh diary quoting
/// "System Integrity Protection status: unknown (Custom Configuration)." and seven tab-indented lines ending with
/// "BaseSystem Verification: enabled"); with <c>csrutil enable --without nvram</c> on macOS 14 (a public dotfiles README:
/// ten lines, "NVRAM Protections: disabled" and "Boot-arg Restrictions: disabled", then "This is an unsupported
/// configuration, likely to break in the future and leave your machine in an unknown state."); El Capitan's
/// "enabled (Custom Configuration)." (osxlatitude.com forum, 2015).</item>
/// <item><c>spctl kext-consent status</c>: "Kernel Extension User Consent: ENABLED" (Silicon Labs' knowledge base, quoted
/// in public notes); <c>list</c>: "Allowed Team Identifiers:" then one team per line.</item>
/// </list>
/// </summary>
public sealed class AppleOutputFormatTests : IDisposable
{
    private readonly ConsentCliFixture _f = new();

    public void Dispose() => _f.Dispose();

    private string CsrutilStatus(string macos, string sip)
    {
        Assert.Equal(0, _f.Init(macos, "intel", "--sip", sip).ExitCode);
        var r = _f.K("csrutil", "status");
        Assert.Equal(0, r.ExitCode);
        return r.StdOut.ReplaceLineEndings("\n");
    }

    [Fact]
    public void Csrutil_status_enabled_and_disabled_are_one_sentence()
    {
        Assert.Equal("System Integrity Protection status: enabled.\n", CsrutilStatus("14.5", "enabled"));
    }

    [Fact]
    public void Csrutil_status_disabled()
    {
        Assert.Equal("System Integrity Protection status: disabled.\n", CsrutilStatus("14.5", "disabled"));
    }

    [Fact]
    public void Csrutil_status_0x67_on_Big_Sur_lists_seven_protections_as_the_capture_does()
    {
        Assert.Equal("""
            System Integrity Protection status: unknown (Custom Configuration).

            Configuration:
            	Apple Internal: disabled
            	Kext Signing: disabled
            	Filesystem Protections: disabled
            	Debugging Restrictions: disabled
            	DTrace Restrictions: disabled
            	NVRAM Protections: disabled
            	BaseSystem Verification: enabled

            This is an unsupported configuration, likely to break in the future and leave your machine in an unknown state.

            """.ReplaceLineEndings("\n"), CsrutilStatus("11.7", "0x67"));
    }

    [Fact]
    public void Csrutil_status_without_nvram_on_Sonoma_lists_ten_protections_as_the_capture_does()
    {
        Assert.Equal("""
            System Integrity Protection status: unknown (Custom Configuration).

            Configuration:
            	Apple Internal: disabled
            	Kext Signing: enabled
            	Filesystem Protections: enabled
            	Debugging Restrictions: enabled
            	DTrace Restrictions: enabled
            	NVRAM Protections: disabled
            	BaseSystem Verification: enabled
            	Boot-arg Restrictions: disabled
            	Kernel Integrity Protections: enabled
            	Authenticated Root Requirement: enabled

            This is an unsupported configuration, likely to break in the future and leave your machine in an unknown state.

            """.ReplaceLineEndings("\n"), CsrutilStatus("14.5", "0x40"));
    }

    [Fact]
    public void Csrutil_status_custom_before_Big_Sur_says_enabled_and_json_stays_ours()
    {
        var text = CsrutilStatus("10.15.7", "without-kext");
        Assert.StartsWith("System Integrity Protection status: enabled (Custom Configuration).\n\nConfiguration:\n\tApple Internal: disabled\n\tKext Signing: disabled\n", text);
        var json = _f.K("csrutil", "status", "--json");
        using var d = JsonDocument.Parse(json.StdOut);
        Assert.Equal("custom", d.RootElement.GetProperty("sip").GetString());
        Assert.Equal("0x1", d.RootElement.GetProperty("csrActiveConfig").GetString());
    }

    [Fact]
    public void Spctl_kext_consent_status_and_list_print_spctl_s_text_and_json_on_request()
    {
        Assert.Equal(0, _f.Init("11.7", "intel").ExitCode);
        Assert.Equal("Kernel Extension User Consent: ENABLED\n", _f.K("spctl", "kext-consent", "status").StdOut.ReplaceLineEndings("\n"));
        Assert.Equal("Allowed Team Identifiers:\n", _f.K("spctl", "kext-consent", "list").StdOut.ReplaceLineEndings("\n"));
        var json = _f.K("spctl", "kext-consent", "status", "--json");
        Assert.Equal(0, json.ExitCode);
        using var d = JsonDocument.Parse(json.StdOut);
        Assert.True(d.RootElement.GetProperty("userConsentEnabled").GetBoolean());
        Assert.Empty(d.RootElement.GetProperty("allowedTeamIdentifiers").EnumerateArray());
        var refused = _f.K("spctl", "kext-consent", "add", "ABCDE12345", "--json");
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("recovery", refused.StdErr, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void Machine_init_adopts_a_real_10_13_KextPolicy_and_kextpolicy_import_reports_what_it_kept()
    {
        var db = _f.Temp.Combine("KextPolicy");
        using (var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = db, Pooling = false }.ToString()))
        {
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = File.ReadAllText(Corpus.TestData("kextpolicy/macinbox-10.13.sql"));
            cmd.ExecuteNonQuery();
        }
        var init = _f.Init("10.13.6", "intel", "--kextpolicy", db);
        Assert.True(init.ExitCode == 0, init.StdErr);
        Assert.Contains("KextPolicy adopted from", init.StdOut);
        Assert.Contains("3 kext_policy, 0 kext_policy_mdm, 3 kext_load_history_v3, 1 settings row(s)", init.StdOut);
        var show = _f.K("kextpolicy", "show", "--json");
        using (var d = JsonDocument.Parse(show.StdOut))
        {
            Assert.Equal(["com.vmware.kext.VMwareGfx", "com.vmware.kext.vmmemctl", "com.vmware.kext.vmhgfs"],
                d.RootElement.GetProperty("kextPolicy").EnumerateArray().Select(r => r.GetProperty("bundleId").GetString()));
            Assert.Equal("VMware, Inc.", d.RootElement.GetProperty("kextPolicy")[0].GetProperty("developerName").GetString());
        }
        var import = _f.K("kextpolicy", "import", db, "--json");
        Assert.True(import.ExitCode == 0, import.StdErr);
        using (var d = JsonDocument.Parse(import.StdOut))
        {
            Assert.False(d.RootElement.GetProperty("hadCdHashColumn").GetBoolean());
            Assert.Equal(3, d.RootElement.GetProperty("kextLoadHistoryV3Rows").GetInt32());
        }
        var bad = _f.Temp.Combine("not-a-db");
        File.WriteAllText(bad, "nope");
        var r = _f.K("kextpolicy", "import", bad);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("(code 1500 database-invalid)", r.StdErr);
        Assert.Equal(0, _f.K("kextpolicy", "import", "--help").ExitCode);
        var never = _f.Raw("machine", "init", _f.Temp.Combine("never"), "--platform", "intel", "--macos", "14.5", "--admin", "a:b", "--kextpolicy", bad);
        Assert.Equal(2, never.ExitCode);
        Assert.False(File.Exists(_f.Temp.Combine("never", "machine.json")));
    }
}

using System.Text.Json;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Audit;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;
using KextTrust.TestSupport;

namespace KextTrust.Cli.Tests;

public sealed class AuditCommandTests
{
    private static readonly MachOTargetArchitecture[] Universal = [MachOTargetArchitecture.X86_64, MachOTargetArchitecture.Arm64e];

    private static string Write(string dir, string id, string[] symbols, Dictionary<string, string> libs, params MachOTargetArchitecture[] archs) =>
        KextBundleWriter.Write(dir, new KextBundleSpec(id, "1.2.3")
        {
            Libraries = libs,
            Slices = (archs.Length == 0 ? Universal : archs).Select(a => new KextSliceSpec(a, symbols)).ToArray(),
        });

    private static Dictionary<string, string> Kpi(params string[] ids) => ids.ToDictionary(i => i, _ => "8.0", StringComparer.Ordinal);

    private static string Kauth(string dir) => Write(dir, "com.example.Av", ["_kauth_listen_scope", "_IOLog"], Kpi("com.apple.kpi.bsd", "com.apple.kpi.iokit"));

    private static string Clean(string dir) => Write(dir, "com.example.Clean", ["_IOLog"], Kpi("com.apple.kpi.iokit"));

    [Fact]
    public void Json_has_findings_unresolved_symbols_and_a_verdict_per_release_and_platform()
    {
        using var tmp = new TempDir();
        var path = Write(tmp.Path, "com.example.Av", ["_kauth_listen_scope", "_sock_socket", "_nope"], Kpi("com.apple.kpi.bsd"), MachOTargetArchitecture.X86_64);

        var r = CliRunner.Run("audit", path, "--json");
        Assert.Equal(1, r.ExitCode);
        using var doc = JsonDocument.Parse(r.StdOut);
        var k = doc.RootElement.EnumerateArray().Single();
        Assert.Equal("com.example.Av", k.GetProperty("bundleId").GetString());
        Assert.Equal("1.2.3", k.GetProperty("version").GetString());
        Assert.Equal("not-checked", k.GetProperty("signature").GetProperty("state").GetString());

        var findings = k.GetProperty("findings").EnumerateArray().ToArray();
        Assert.Equal(["KPI-KAUTH", "KPI-SOCKET"], findings.Select(f => f.GetProperty("rule").GetString()));
        var kauth = findings[0];
        Assert.Equal("unsupported", kauth.GetProperty("status").GetString());
        Assert.Equal("11.0", kauth.GetProperty("since").GetString());
        Assert.Equal(["_kauth_listen_scope"], kauth.GetProperty("symbols").EnumerateArray().Select(e => e.GetString()));
        Assert.Empty(kauth.GetProperty("libraries").EnumerateArray());
        Assert.Equal("EndpointSecurity", kauth.GetProperty("replacement").GetString());
        Assert.Equal(KpiRules.EndpointSecurityEntitlement, kauth.GetProperty("entitlement").GetString());
        Assert.Equal("deprecated", findings[1].GetProperty("status").GetString());
        Assert.Equal("10.15", findings[1].GetProperty("since").GetString());

        var unresolved = k.GetProperty("unresolvedSymbols").EnumerateArray().Single();
        Assert.Equal("_nope", unresolved.GetProperty("symbol").GetString());
        Assert.Empty(unresolved.GetProperty("libraries").EnumerateArray()); // no library of any release exports it
        Assert.Equal(["10.15/intel", "11/intel", "12/intel", "13/intel", "14/intel", "15/intel", "15.4/intel"],
            unresolved.GetProperty("on").EnumerateArray().Select(e => e.GetString()));

        var verdicts = k.GetProperty("verdicts");
        Assert.Equal(
            ["10.15/intel", "10.15/apple-silicon", "11/intel", "11/apple-silicon", "12/intel", "12/apple-silicon", "13/intel", "13/apple-silicon",
             "14/intel", "14/apple-silicon", "15/intel", "15/apple-silicon", "15.4/intel", "15.4/apple-silicon"],
            verdicts.EnumerateObject().Select(p => p.Name));
        Assert.Equal("not-applicable", verdicts.GetProperty("10.15/apple-silicon").GetProperty("verdict").GetString());
        var big = verdicts.GetProperty("11/intel");
        Assert.Equal("refused", big.GetProperty("verdict").GetString());
        Assert.Equal(["unresolved-symbols", "unsupported-kpi:KPI-KAUTH", "deprecated-kpi:KPI-SOCKET"],
            big.GetProperty("reasons").EnumerateArray().Select(x => x.GetProperty("code").GetString()));
        Assert.Equal(["missing-architecture"],
            verdicts.GetProperty("14/apple-silicon").GetProperty("reasons").EnumerateArray().Select(x => x.GetProperty("code").GetString()));
    }

    [Fact]
    public void Human_output_is_a_matrix_with_findings_and_migration_advice()
    {
        using var tmp = new TempDir();
        Kauth(tmp.Path);
        Clean(tmp.Path);

        var r = CliRunner.Run("audit", tmp.Path);
        Assert.Equal(1, r.ExitCode);
        var lines = r.StdOut.Split('\n');
        var header = lines.First(l => l.Contains("10.15") && l.Contains("15.4"));
        Assert.Matches(@"kext.*version.*10\.15.*11.*12.*13.*14.*15.*15\.4.*signature", header);
        var av = lines.First(l => l.Contains("com.example.Av") && l.Contains('│'));
        // 10.15: Intel warns, no Apple silicon Mac; 11+: refused on both.
        Assert.Matches(@"⚠ –.*✗ ✗.*✗ ✗.*✗ ✗.*✗ ✗.*✗ ✗.*✗ ✗.*not checked", av);
        var clean = lines.First(l => l.Contains("com.example.Clean") && l.Contains('│'));
        Assert.Matches(@"✓ –.*✓ ✓.*✓ ✓.*✓ ✓.*✓ ✓.*✓ ✓.*✓ ✓", clean);
        Assert.Contains("KAUTH [KPI-KAUTH]: deprecated since 10.15, unsupported since 11.0", r.StdOut);
        Assert.Contains("move to EndpointSecurity; entitlement com.apple.developer.endpoint-security.client", r.StdOut);
        Assert.True(!r.StdOut.Contains("\u001b["), r.StdOut); // redirected: no ANSI, no progress bar
    }

    [Fact]
    public void Macos_and_platform_restrict_the_cells()
    {
        using var tmp = new TempDir();
        var path = Kauth(tmp.Path);

        var r = CliRunner.Run("audit", path, "--json", "--macos", "11.2", "--platform", "apple-silicon");
        Assert.Equal(1, r.ExitCode);
        using var doc = JsonDocument.Parse(r.StdOut);
        var verdicts = doc.RootElement[0].GetProperty("verdicts").EnumerateObject().ToArray();
        Assert.Equal("11/apple-silicon", Assert.Single(verdicts).Name);

        var old = CliRunner.Run("audit", path, "--macos", "10.15", "--platform", "intel");
        Assert.Equal(0, old.ExitCode); // deprecated only: loads with warning
        Assert.Contains("⚠", old.StdOut);
    }

    [Theory]
    [InlineData("--sip-disabled", "KPI-EXEMPT-SIP-DISABLED")]
    [InlineData("--mdm-approved", "KPI-EXEMPT-MDM-APPROVED")]
    public void The_footnote_flags_stop_unsupported_kpis_refusing_and_say_why(string flag, string exemption)
    {
        using var tmp = new TempDir();
        var path = Kauth(tmp.Path);

        var r = CliRunner.Run("audit", path, "--json", flag);
        Assert.Equal(0, r.ExitCode);
        using var doc = JsonDocument.Parse(r.StdOut);
        var cell = doc.RootElement[0].GetProperty("verdicts").GetProperty("13/apple-silicon");
        Assert.Equal("loads-with-warning", cell.GetProperty("verdict").GetString());
        var reason = cell.GetProperty("reasons")[0];
        Assert.Equal("kpi-not-enforced:KPI-KAUTH", reason.GetProperty("code").GetString());
        Assert.Equal(exemption, reason.GetProperty("exemptions")[0].GetString());
    }

    [Fact]
    public void Signatures_flag_refuses_unsigned_kexts_unless_sip_is_disabled()
    {
        using var tmp = new TempDir();
        var path = Clean(tmp.Path);

        Assert.Equal(0, CliRunner.Run("audit", path).ExitCode);
        var r = CliRunner.Run("audit", path, "--json", "--signatures");
        Assert.Equal(1, r.ExitCode);
        using var doc = JsonDocument.Parse(r.StdOut);
        Assert.Equal("unsigned", doc.RootElement[0].GetProperty("signature").GetProperty("state").GetString());
        var reason = doc.RootElement[0].GetProperty("verdicts").GetProperty("12/intel").GetProperty("reasons")[0];
        Assert.Equal("signature-unsigned", reason.GetProperty("code").GetString());
        Assert.Equal(29, reason.GetProperty("kmErrorCode").GetInt32());
        Assert.Equal(0, CliRunner.Run("audit", path, "--signatures", "--sip-disabled").ExitCode);
    }

    [Fact]
    public void Exit_codes_zero_one_two()
    {
        using var tmp = new TempDir();
        var clean = Clean(tmp.Path);
        var refused = Kauth(tmp.Path);

        Assert.Equal(0, CliRunner.Run("audit", clean).ExitCode);
        Assert.Equal(1, CliRunner.Run("audit", clean, refused).ExitCode);
        var missing = CliRunner.Run("audit", clean, tmp.Combine("nope.kext"));
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("nope.kext", missing.StdErr);

        var broken = Write(tmp.Path, "com.example.Broken", ["_IOLog"], Kpi("com.apple.kpi.iokit"));
        File.WriteAllBytes(Path.Combine(broken, "Contents", "MacOS", "Broken"), [1, 2, 3, 4]);
        var bad = CliRunner.Run("audit", broken, "--json");
        Assert.Equal(2, bad.ExitCode);
        using var doc = JsonDocument.Parse(bad.StdOut);
        Assert.Equal("unreadable", doc.RootElement[0].GetProperty("kind").GetString());

        Assert.Equal(2, CliRunner.Run("audit", clean, "--macos", "10.14").ExitCode);
        Assert.Equal(2, CliRunner.Run("audit", clean, "--platform", "powerpc").ExitCode);
        Assert.Equal(2, CliRunner.Run("audit", clean, "--json", "--sarif").ExitCode);
    }

    [Fact]
    public void Microsoft_dylibs_are_reported_as_not_a_kext()
    {
        var dylib = Corpus.RuntimePackMachOFiles().First(f => f.EndsWith("libSystem.Native.dylib", StringComparison.Ordinal));
        var r = CliRunner.Run("audit", dylib, "--json");
        Assert.Equal(1, r.ExitCode);
        Assert.Empty(r.StdErr);
        using var doc = JsonDocument.Parse(r.StdOut);
        var k = doc.RootElement[0];
        Assert.Equal("not-a-kext", k.GetProperty("kind").GetString());
        var reason = k.GetProperty("verdicts").GetProperty("14/apple-silicon").GetProperty("reasons")[0];
        Assert.Equal("not-a-kext", reason.GetProperty("code").GetString());
        Assert.Contains("MH_DYLIB", reason.GetProperty("message").GetString());
    }

    [Fact]
    public void Plug_ins_appear_in_the_matrix_and_in_json()
    {
        using var tmp = new TempDir();
        var path = KextBundleWriter.Write(tmp.Path, new KextBundleSpec("com.example.Host", "1.0")
        {
            Libraries = Kpi("com.apple.kpi.iokit"),
            Slices = Universal.Select(a => new KextSliceSpec(a, ["_IOLog"])).ToArray(),
            PlugIns = [new KextBundleSpec("com.example.Host.Filter", "1.0")
            {
                Libraries = Kpi("com.apple.kpi.bsd"),
                Slices = Universal.Select(a => new KextSliceSpec(a, ["_sflt_register"])).ToArray(),
            }],
        });

        var human = CliRunner.Run("audit", path);
        Assert.Equal(1, human.ExitCode);
        Assert.Contains("└ com.example.Host.Filter", human.StdOut);
        var json = CliRunner.Run("audit", path, "--json");
        using var doc = JsonDocument.Parse(json.StdOut);
        var plugIn = doc.RootElement[0].GetProperty("plugIns")[0];
        Assert.Equal("KPI-NETFILTER", plugIn.GetProperty("findings")[0].GetProperty("rule").GetString());
    }
}

using System.Text.Json;
using KextTrust.TestSupport;

namespace KextTrust.Cli.Tests;

/// <summary>The commands on real third-party kexts of <c>tests/data/real-kexts</c> (see its README and MANIFEST.tsv).</summary>
public sealed class RealKextCommandTests
{
    private static string Kext(string path) => Path.Combine(Corpus.RealKexts, "kexts", path);

    private static JsonElement Find(JsonElement reports, string bundleId) =>
        reports.EnumerateArray().Single(r => r.GetProperty("bundleId").GetString() == bundleId);

    private static IEnumerable<string?> Strings(JsonElement e, string name) => e.GetProperty(name).EnumerateArray().Select(x => x.GetString());

    [Fact]
    public void Audit_json_lists_each_assumed_symbol_with_its_candidate_libraries_and_cells()
    {
        // IntelMausi 1.0.5 as its Big Sur EFI folder held it: loads on 11 Intel (with the deprecation alert).
        var r = CliRunner.Run("audit", Kext("2021-03-hieuvh"), "--json");
        using var doc = JsonDocument.Parse(r.StdOut);
        var mausi = Find(doc.RootElement, "as.acidanthera.mieze.IntelMausi");
        Assert.Equal("loads-with-warning", mausi.GetProperty("verdicts").GetProperty("11/intel").GetProperty("verdict").GetString());
        Assert.Empty(mausi.GetProperty("unresolvedSymbols").EnumerateArray());
        var wol = mausi.GetProperty("assumedSymbols").EnumerateArray().Single(a => a.GetProperty("symbol").GetString() == "_gIOEthernetWakeOnLANFilterGroup");
        Assert.Equal(["com.apple.iokit.IONetworkingFamily", "com.apple.iokit.IOPCIFamily"], Strings(wol, "libraries"));
        Assert.Equal(["10.15/intel"], Strings(wol, "on")); // IONetworkingFamily publishes its list from macOS 11
        var alc = Find(doc.RootElement, "as.vit9696.AppleALC");
        Assert.Equal("loads", alc.GetProperty("verdicts").GetProperty("11/intel").GetProperty("verdict").GetString());
    }

    [Fact]
    public void Audit_json_lists_each_unresolved_symbol_with_the_libraries_that_would_provide_it()
    {
        var r = CliRunner.Run("audit", Kext("2025-03-ispace/RestrictEvents.kext"), "--json");
        Assert.Equal(1, r.ExitCode);
        using var doc = JsonDocument.Parse(r.StdOut);
        var u = doc.RootElement.EnumerateArray().Single().GetProperty("unresolvedSymbols").EnumerateArray().Single();
        Assert.Equal("_cpuid_info", u.GetProperty("symbol").GetString());
        Assert.Equal(["com.apple.kpi.private"], Strings(u, "libraries"));
        Assert.Equal(["10.15/intel", "11/intel", "12/intel", "13/intel", "14/intel", "15/intel", "15.4/intel"], Strings(u, "on"));
    }

    [Fact]
    public void A_fat_kext_with_an_i386_object_slice_is_a_kext_to_audit_verify_and_inspect()
    {
        var lilu = Kext("2025-03-ispace/Lilu.kext");
        var audit = CliRunner.Run("audit", lilu, "--json", "--macos", "10.15", "--platform", "intel");
        using (var doc = JsonDocument.Parse(audit.StdOut))
        {
            var k = doc.RootElement.EnumerateArray().Single();
            Assert.Equal("kext", k.GetProperty("kind").GetString());
            var v = k.GetProperty("verdicts").GetProperty("10.15/intel");
            Assert.Equal("loads-with-warning", v.GetProperty("verdict").GetString()); // KAUTH, deprecated in 10.15
            Assert.Contains("ignored-slice", v.GetProperty("reasons").EnumerateArray().Select(x => x.GetProperty("code").GetString()));
        }
        var text = CliRunner.Run("audit", lilu);
        Assert.Contains("i386 slice ignored (an object file (MH_OBJECT)): an Intel Mac's kernel loads the x86_64 slice", text.StdOut, StringComparison.Ordinal);

        var verify = CliRunner.Run("verify", lilu, "--json");
        using (var doc = JsonDocument.Parse(verify.StdOut))
        {
            var json = doc.RootElement.ToString();
            Assert.DoesNotContain("not a kext", json, StringComparison.Ordinal);
            Assert.Contains("\"isKextBinary\":true", json.Replace(" ", "", StringComparison.Ordinal), StringComparison.Ordinal);
        }

        var inspect = CliRunner.Run("inspect", lilu, "--json");
        Assert.Equal(0, inspect.ExitCode);
        Assert.Contains("i386", inspect.StdOut, StringComparison.Ordinal);
        Assert.Contains("x86_64", inspect.StdOut, StringComparison.Ordinal);
    }
}

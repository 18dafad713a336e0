using System.Text.Json;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Audit;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;
using KextTrust.TestSupport;

namespace KextTrust.Cli.Tests;

public sealed class AuditSarifTests
{
    private static readonly string[] Levels = ["none", "note", "warning", "error"];

    private static JsonDocument Sarif(TempDir tmp, out int exitCode)
    {
        var universal = new[] { MachOTargetArchitecture.X86_64, MachOTargetArchitecture.Arm64e };
        KextBundleWriter.Write(tmp.Path, new KextBundleSpec("com.example.Av", "1.0")
        {
            Libraries = new Dictionary<string, string> { ["com.apple.kpi.bsd"] = "8.0", ["com.apple.kpi.mach"] = "8.0" },
            Slices = universal.Select(a => new KextSliceSpec(a, ["_kauth_listen_scope", "_sock_socket"])).ToArray(),
        });
        KextBundleWriter.Write(tmp.Path, new KextBundleSpec("com.example.IntelOnly", "1.0")
        {
            Libraries = new Dictionary<string, string> { ["com.apple.kpi.iokit"] = "8.0" },
            Slices = [new KextSliceSpec(MachOTargetArchitecture.X86_64, ["_IOLog", "_missing_fn"])],
        });
        var reports = new KextAuditor(KpiCatalog.Load()).AuditPath(tmp.Path);
        exitCode = reports.Any(r => r.IsRefusedSomewhere) ? 1 : 0;
        return JsonDocument.Parse(KextAuditSarif.Build(reports, tmp.Path, "0.1.0").ToJsonString());
    }

    [Fact]
    public void Sarif_is_structurally_valid_2_1_0_with_a_rule_for_every_result()
    {
        using var tmp = new TempDir();
        using var doc = Sarif(tmp, out _);
        var root = doc.RootElement;
        Assert.Equal("2.1.0", root.GetProperty("version").GetString());
        Assert.StartsWith("https://", root.GetProperty("$schema").GetString());
        var run = Assert.Single(root.GetProperty("runs").EnumerateArray());
        var driver = run.GetProperty("tool").GetProperty("driver");
        Assert.Equal("kextrust", driver.GetProperty("name").GetString());
        Assert.True(Uri.IsWellFormedUriString(driver.GetProperty("informationUri").GetString(), UriKind.Absolute));

        var rules = driver.GetProperty("rules").EnumerateArray().ToArray();
        var ids = rules.Select(r => r.GetProperty("id").GetString()!).ToArray();
        Assert.Equal(ids.Length, ids.Distinct().Count());
        foreach (var rule in KpiRules.All)
        {
            Assert.Contains(rule.Id, ids);
        }
        Assert.Contains("unresolved-symbols", ids);
        Assert.Contains("missing-architecture", ids);
        Assert.DoesNotContain("missing-arm64e", ids);
        Assert.Contains("signature-invalid", ids);
        foreach (var rule in rules)
        {
            Assert.False(string.IsNullOrWhiteSpace(rule.GetProperty("shortDescription").GetProperty("text").GetString()));
            Assert.False(string.IsNullOrWhiteSpace(rule.GetProperty("fullDescription").GetProperty("text").GetString()));
            Assert.Contains(rule.GetProperty("defaultConfiguration").GetProperty("level").GetString(), Levels);
            if (rule.TryGetProperty("helpUri", out var help))
            {
                Assert.True(Uri.IsWellFormedUriString(help.GetString(), UriKind.Absolute));
            }
        }

        var results = run.GetProperty("results").EnumerateArray().ToArray();
        Assert.NotEmpty(results);
        foreach (var result in results)
        {
            Assert.Contains(result.GetProperty("ruleId").GetString(), ids);
            Assert.Contains(result.GetProperty("level").GetString(), new[] { "warning", "error" });
            Assert.False(string.IsNullOrWhiteSpace(result.GetProperty("message").GetProperty("text").GetString()));
            var uri = result.GetProperty("locations")[0].GetProperty("physicalLocation").GetProperty("artifactLocation").GetProperty("uri").GetString()!;
            Assert.EndsWith("/Contents/Info.plist", uri);
            Assert.False(Path.IsPathRooted(uri));
            Assert.True(File.Exists(Path.Combine(tmp.Path, uri)));
        }
    }

    [Fact]
    public void Sarif_results_say_what_refuses_and_what_only_warns()
    {
        using var tmp = new TempDir();
        using var doc = Sarif(tmp, out var exit);
        Assert.Equal(1, exit);
        var results = doc.RootElement.GetProperty("runs")[0].GetProperty("results").EnumerateArray()
            .Select(r => (Rule: r.GetProperty("ruleId").GetString(), Level: r.GetProperty("level").GetString(),
                Uri: r.GetProperty("locations")[0].GetProperty("physicalLocation").GetProperty("artifactLocation").GetProperty("uri").GetString(),
                Text: r.GetProperty("message").GetProperty("text").GetString()!))
            .ToArray();

        Assert.Contains(results, r => r is { Rule: "KPI-KAUTH", Level: "error", Uri: "Av.kext/Contents/Info.plist" });
        Assert.Contains(results, r => r is { Rule: "KPI-SOCKET", Level: "warning", Uri: "Av.kext/Contents/Info.plist" });
        Assert.Contains(results, r => r is { Rule: "unused-library", Level: "warning" } && r.Text.Contains("com.apple.kpi.mach"));
        Assert.Contains(results, r => r is { Rule: "missing-architecture", Level: "error", Uri: "IntelOnly.kext/Contents/Info.plist" });
        Assert.Contains(results, r => r is { Rule: "unresolved-symbols", Level: "error" } && r.Text.Contains("_missing_fn"));
        // Every kext has an x86_64 slice: no Intel cell lacks its architecture.
        Assert.DoesNotContain(results, r => r.Rule == "missing-architecture" && r.Text.Contains("/intel", StringComparison.Ordinal));
        Assert.Contains(results, r => r.Rule == "missing-architecture" && r.Text.Contains("/apple-silicon", StringComparison.Ordinal));
    }

    [Fact]
    public void Cli_writes_the_same_sarif_shape()
    {
        using var tmp = new TempDir();
        var path = KextBundleWriter.Write(tmp.Path, new KextBundleSpec("com.example.Hid", "1.0")
        {
            Libraries = new Dictionary<string, string> { ["com.apple.kpi.iokit"] = "8.0", ["com.apple.iokit.IOHIDFamily"] = "1.0" },
            Slices = [new KextSliceSpec(MachOTargetArchitecture.Arm64e, ["__ZN11IOHIDDevice5startEP9IOService"])],
        });
        var r = CliRunner.Run("audit", path, "--sarif");
        Assert.Equal(1, r.ExitCode);
        using var doc = JsonDocument.Parse(r.StdOut);
        Assert.Equal("2.1.0", doc.RootElement.GetProperty("version").GetString());
        var results = doc.RootElement.GetProperty("runs")[0].GetProperty("results").EnumerateArray().ToArray();
        Assert.Contains(results, x => x.GetProperty("ruleId").GetString() == "KPI-IOHID" && x.GetProperty("level").GetString() == "error");
        Assert.Contains(results, x => x.GetProperty("ruleId").GetString() == "missing-architecture");
    }
}

using System.Text.Json;

namespace KextTrust.Cli.Tests;

/// <summary>
/// One fact, one code, everywhere a user looks: on the demo's Apple-silicon Mac (SIP on), the x86_64-only kext is
/// <c>missing-architecture</c> with <c>KMErrorDomain</c> 71 in <c>why</c>'s failed step, in kmd's exclusion (the receipt,
/// <c>kmutil inspect</c>) and in the audit's Apple-silicon verdict; the banned kext is <c>exclude-listed</c> in <c>why</c> and kmd.
/// </summary>
public sealed class SharedTrustCodeTests
{
    private const string IntelOnly = "com.example.intelonly", Banned = "com.example.banned";

    [Fact]
    public void The_same_fact_has_the_same_code_in_why_kmd_and_the_receipt()
    {
        var dir = Path.Combine(Path.GetTempPath(), "kextrust-codes-" + Guid.NewGuid().ToString("N")[..10]);
        try
        {
            var demo = CliRunner.Run("demo", "--keep", dir);
            Assert.True(demo.ExitCode == 0, demo.StdOut + demo.StdErr);
            var mac = Path.Combine(dir, "mac");
            using var receipt = Json(CliRunner.Run("kmutil", "inspect", "--machine", mac, "--json"), 0);
            var excluded = receipt.RootElement.GetProperty("receipt").GetProperty("excluded").EnumerateArray().ToList();

            foreach (var (bundleId, step, code, km) in new[] { (IntelOnly, "architecture", "missing-architecture", (int?)71), (Banned, "exclude-list", "exclude-listed", null) })
            {
                using var why = Json(CliRunner.Run("why", bundleId, "--machine", mac, "--json"), 1);
                var root = why.RootElement;
                Assert.Equal(code, root.GetProperty("code").GetString());
                Assert.Equal(km, KmError(root));
                var failed = root.GetProperty("steps").EnumerateArray().First(s => s.GetProperty("outcome").GetString() == "failed");
                Assert.Equal(step, failed.GetProperty("step").GetString());
                Assert.Equal(code, failed.GetProperty("code").GetString());
                Assert.Equal(km, KmError(failed));

                var left = excluded.Single(k => k.GetProperty("bundleId").GetString() == bundleId);
                Assert.Equal(code, left.GetProperty("code").GetString());
                Assert.Equal(km, KmError(left));
            }
            var text = CliRunner.Run("why", IntelOnly, "--machine", mac);
            Assert.Contains("(code missing-architecture (KMErrorDomain 71))", text.StdOut);
        }
        finally
        {
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }
        }
    }

    private static int? KmError(JsonElement e) => e.GetProperty("kmErrorCode") is { ValueKind: JsonValueKind.Number } n ? n.GetInt32() : null;

    private static JsonDocument Json(CliRunner.Result r, int exit)
    {
        Assert.True(r.ExitCode == exit, $"exit {r.ExitCode}: {r.StdOut}{r.StdErr}");
        return JsonDocument.Parse(r.StdOut);
    }
}

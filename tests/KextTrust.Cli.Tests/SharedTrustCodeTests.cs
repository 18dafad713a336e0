using System.Text.Json;

namespace KextTrust.Cli.Tests;

/// <summary>
/// One fact, one code, everywhere a user looks: on the demo's Apple-silicon Mac (SIP on), the x86_64-only kext is
/// <c>missing-architecture</c> with <c>KMErrorDomain</c> 71 in <c>why</c>'s failed step, in kmd's exclusion (the receipt,
/// <c>kmutil inspect</c>) and in the audit's Apple-silicon verdict; the banned kext is <c>exclude-listed</c> in <c>why</c> and kmd;
/// the UAKL edited by hand fails iBoot's <c>user-approved-kext-list</c> step with <c>uakl-modified</c>, typed in <c>startup --json</c>.
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

            // The audit of the same bundle, on Apple silicon for the Mac's release (14): the same code and number.
            using (var why = Json(CliRunner.Run("why", IntelOnly, "--machine", mac, "--json"), 1))
            {
                var bundle = Path.Combine(mac, why.RootElement.GetProperty("path").GetString()!.TrimStart('/'));
                using var audit = Json(CliRunner.Run("audit", bundle, "--platform", "apple-silicon", "--macos", "14", "--json"), 1);
                var reason = Assert.Single(audit.RootElement[0].GetProperty("verdicts").GetProperty("14/apple-silicon").GetProperty("reasons").EnumerateArray());
                Assert.Equal("missing-architecture", reason.GetProperty("code").GetString());
                Assert.Equal(71, KmError(reason));
            }
            // The demo ends with a row added to the KextPolicy database by hand: iBoot's UAKL step fails, typed in the JSON.
            using var startup = Json(CliRunner.Run("startup", "--machine", mac, "--json"), 1);
            var refusal = startup.RootElement.GetProperty("refusal");
            Assert.Equal("user-approved-kext-list", refusal.GetProperty("step").GetString());
            Assert.Equal("failed", refusal.GetProperty("outcome").GetString());
            Assert.Equal("uakl-modified", refusal.GetProperty("code").GetString());
            Assert.Null(KmError(refusal));
            Assert.StartsWith("auxp mismatch: the user-authorized kext list on disk", refusal.GetProperty("detail").GetString());
            var trace = startup.RootElement.GetProperty("trace").EnumerateArray().ToList();
            Assert.Equal("user-approved-kext-list", trace[^1].GetProperty("step").GetString());
            Assert.Equal("uakl-modified", trace[^1].GetProperty("code").GetString());
            Assert.All(trace.SkipLast(1), c => Assert.Equal("passed", c.GetProperty("outcome").GetString()));

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

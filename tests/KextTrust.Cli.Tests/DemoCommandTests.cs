using System.Text.Json;

namespace KextTrust.Cli.Tests;

public sealed class DemoCommandTests
{
    [Fact]
    public void Demo_json_every_step_as_expected_and_attacks_refused_with_codes()
    {
        var r = CliRunner.Run("demo", "--json");
        Assert.True(r.ExitCode == 0, r.StdOut + r.StdErr);
        using var doc = JsonDocument.Parse(r.StdOut);
        var steps = doc.RootElement.GetProperty("steps").EnumerateArray().ToList();
        Assert.All(steps, s => Assert.True(s.GetProperty("asExpected").GetBoolean(), s.GetProperty("title").GetString() + ": " + s.GetProperty("outcome").GetString()));
        var codes = steps.Select(s => s.GetProperty("code").ValueKind == JsonValueKind.String ? s.GetProperty("code").GetString() : null).Where(c => c is not null).ToList();
        Assert.Equal(["AuxKcRollback", "UaklModified", "NotInOneTrueRecovery"], codes);
        Assert.True(doc.RootElement.GetProperty("elapsedSeconds").GetDouble() < 10);
    }
}

public sealed class DemoKeepTests
{
    [Fact]
    public void Demo_keep_leaves_a_mac_the_boot_commands_read()
    {
        var dir = Path.Combine(Path.GetTempPath(), "kextrust-demokeep-" + Guid.NewGuid().ToString("N")[..10]);
        try
        {
            var r = CliRunner.Run("demo", "--keep", dir);
            Assert.True(r.ExitCode == 0, r.StdOut);
            Assert.Contains("10/10 steps as expected", r.StdOut);
            var mac = Path.Combine(dir, "mac");
            Assert.Contains("com.example.driver", CliRunner.Run("kmutil", "inspect", "--machine", mac).StdOut);
            Assert.Contains("disabled", CliRunner.Run("applepay", "status", "--machine", mac).StdOut);
            Assert.Contains("auxp: ", CliRunner.Run("bputil", "--machine", mac, "-d").StdOut);
            var startup = CliRunner.Run("startup", "--machine", mac);
            Assert.Contains("UaklModified", startup.StdOut);
            // The refusal goes to standard error: standard output stays kmutil's table.
            var shown = CliRunner.Run("kmutil", "showloaded", "--machine", mac);
            Assert.Contains("UaklModified", shown.StdErr);
            Assert.Equal(KmutilShowloadedText.Header + "\n", shown.StdOut.ReplaceLineEndings("\n"));
            var rebuild = CliRunner.Run("kmutil", "create", "--machine", mac, "-u", "admin", "-p", "correct horse battery staple");
            Assert.True(rebuild.ExitCode == 0, rebuild.StdErr);
            var again = CliRunner.Run("startup", "--machine", mac);
            Assert.Contains("loaded com.example.driver", again.StdOut);
        }
        finally
        {
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, true);
            }
        }
    }
}

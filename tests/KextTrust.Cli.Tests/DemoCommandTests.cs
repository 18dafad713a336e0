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

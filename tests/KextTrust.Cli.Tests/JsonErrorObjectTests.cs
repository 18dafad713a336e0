using System.Text.Json;

namespace KextTrust.Cli.Tests;

/// <summary>
/// Every consent-side command that takes <c>--json</c> reports a failure as the README's error object on standard
/// output, <c>{"error": {"code", "message", "exitCode"}}</c>, with the process's exit code, besides the line on standard
/// error — as the secure-boot commands always did. (Before, <c>why &lt;unknown-id&gt; --json</c> printed nothing on
/// standard output, so a script parsing it failed on empty input.)
/// </summary>
public sealed class JsonErrorObjectTests
{
    public static TheoryData<string[]> NoMacCommands => new()
    {
        new[] { "why", "com.example.none" },
        new[] { "install", "/nonexistent/Example.kext" },
        new[] { "approve", "--team", "ABCDE12345", "--user", "admin", "--password", "admin-pw" },
        new[] { "kextpolicy", "show" },
        new[] { "kextpolicy", "import", "/nonexistent/KextPolicy" },
        new[] { "machine", "show" },
        new[] { "mdm", "push", "/nonexistent/profile.mobileconfig" },
        new[] { "mdm", "remove", "com.example.profile" },
        new[] { "profiles", "install", "/nonexistent/profile.mobileconfig" },
        new[] { "profiles", "remove", "com.example.profile" },
        new[] { "profiles", "list" },
        new[] { "spctl", "kext-consent", "status" },
        new[] { "spctl", "kext-consent", "list" },
        new[] { "spctl", "kext-consent", "add", "ABCDE12345" },
    };

    [Theory]
    [MemberData(nameof(NoMacCommands))]
    public void A_command_on_a_folder_with_no_Mac_writes_the_error_object(string[] command)
    {
        var missing = Path.Combine(Path.GetTempPath(), "kextrust-no-mac-" + Guid.NewGuid().ToString("N")[..10]);
        var r = CliRunner.Run([.. command, "--machine", missing, "--json"]);

        Assert.Equal(2, r.ExitCode);
        var error = ParseError(r, string.Join(' ', command));
        Assert.Equal("machine-invalid", error.GetProperty("code").GetString());
        Assert.Equal(2, error.GetProperty("exitCode").GetInt32());
        Assert.Contains(missing, error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Contains(missing, r.StdErr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(missing), "a failed command created the Mac's folder");
    }

    [Fact]
    public void Why_for_a_bundle_id_not_installed_writes_the_error_object()
    {
        var mac = Path.Combine(Path.GetTempPath(), "kextrust-why-error-" + Guid.NewGuid().ToString("N")[..10]);
        try
        {
            var init = CliRunner.Run("machine", "init", mac, "--platform", "intel", "--macos", "12.6", "--admin", "admin:pw");
            Assert.True(init.ExitCode == 0, init.StdErr);

            var r = CliRunner.Run("why", "com.example.nope", "--machine", mac, "--json");

            Assert.Equal(2, r.ExitCode);
            var error = ParseError(r, "why");
            Assert.Equal("not-installed", error.GetProperty("code").GetString());
            Assert.Equal(2, error.GetProperty("exitCode").GetInt32());
            Assert.Contains("com.example.nope", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        }
        finally
        {
            if (Directory.Exists(mac))
            {
                Directory.Delete(mac, recursive: true);
            }
        }
    }

    [Fact]
    public void Mdm_profile_for_a_missing_kext_writes_the_error_object()
    {
        var output = Path.Combine(Path.GetTempPath(), "kextrust-profile-" + Guid.NewGuid().ToString("N")[..10] + ".mobileconfig");
        var r = CliRunner.Run("mdm", "profile", "/nonexistent/Example.kext", "-o", output, "--json");

        Assert.Equal(2, r.ExitCode);
        var error = ParseError(r, "mdm profile");
        Assert.Equal(2, error.GetProperty("exitCode").GetInt32());
        Assert.Contains("/nonexistent/Example.kext", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.False(File.Exists(output), "a failed command wrote the profile");
    }

    private static JsonElement ParseError(CliRunner.Result r, string command)
    {
        Assert.True(r.StdOut.Length > 0, $"{command} --json wrote nothing on standard output (exit {r.ExitCode}): {r.StdErr}");
        using var doc = JsonDocument.Parse(r.StdOut);
        Assert.True(doc.RootElement.TryGetProperty("error", out var error), $"{command}: no error object in {r.StdOut}");
        return error.Clone();
    }
}

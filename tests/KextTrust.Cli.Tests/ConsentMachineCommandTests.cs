using System.Text.Json;

namespace KextTrust.Cli.Tests;

/// <summary>
/// The machine commands, misuse, and the environment variables. The tests reading or setting
/// $KEXTRUST_MACHINE / $KEXTRUST_PASSWORD live in this one class, so they never run concurrently.
/// </summary>
public sealed class ConsentMachineCommandTests : IDisposable
{
    private readonly ConsentCliFixture _f = new();

    public void Dispose() => _f.Dispose();

    [Fact]
    public void Machine_defaults_to_KEXTRUST_MACHINE()
    {
        var old = Environment.GetEnvironmentVariable(MachineOption.EnvironmentVariable);
        Environment.SetEnvironmentVariable(MachineOption.EnvironmentVariable, _f.MacDir);
        try
        {
            var init = _f.Raw("machine", "init", "--platform", "intel", "--macos", "11.7", "--admin", "admin:admin-pw");
            Assert.Equal(0, init.ExitCode);
            Assert.Contains(_f.MacDir, init.StdOut);
            Assert.True(File.Exists(Path.Combine(_f.MacDir, "machine.json")));
            var show = _f.Raw("machine", "show", "--json");
            Assert.Equal(0, show.ExitCode);
            using var doc = JsonDocument.Parse(show.StdOut);
            Assert.Equal(Path.GetFullPath(_f.MacDir), doc.RootElement.GetProperty("machine").GetString());
            Assert.Contains("$KEXTRUST_MACHINE", _f.Raw("machine", "show", "--help").StdOut);
        }
        finally
        {
            Environment.SetEnvironmentVariable(MachineOption.EnvironmentVariable, old);
        }
    }

    [Fact]
    public void Approve_reads_the_password_from_KEXTRUST_PASSWORD_and_says_so_in_its_help()
    {
        _f.Verifier = new ConsentFixtureVerifier();
        _f.Verifier.Facts["com.example.driver"] = ConsentFixtureVerifier.Signed("ABCDE12345");
        _f.Init();
        _f.K("install", _f.Kext("com.example.driver"));
        var old = Environment.GetEnvironmentVariable(ApprovalCommands.PasswordVariable);
        try
        {
            Environment.SetEnvironmentVariable(ApprovalCommands.PasswordVariable, null);
            var none = _f.K("approve", "--team", "ABCDE12345", "--user", "admin");
            Assert.Equal(2, none.ExitCode);
            Assert.Contains("no password: give --password or set $KEXTRUST_PASSWORD", none.StdErr);

            Environment.SetEnvironmentVariable(ApprovalCommands.PasswordVariable, "admin-pw");
            var r = _f.K("approve", "--team", "ABCDE12345", "--user", "admin");
            Assert.Equal(0, r.ExitCode);
            Assert.Contains("approved team ABCDE12345", r.StdOut);
        }
        finally
        {
            Environment.SetEnvironmentVariable(ApprovalCommands.PasswordVariable, old);
        }
        var help = _f.Raw("approve", "--help");
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("$KEXTRUST_PASSWORD", help.StdOut);
    }

    [Fact]
    public void Machine_show_lists_the_Mac_and_its_users_without_password_hashes()
    {
        _f.Verifier = new ConsentFixtureVerifier();
        Assert.Equal(0, _f.Init("11.7", "intel", "--mdm", "automated").ExitCode);
        _f.K("install", _f.Kext("com.example.driver"));
        var table = _f.K("machine", "show");
        Assert.Equal(0, table.ExitCode);
        Assert.Contains("Intel", table.StdOut);
        Assert.Contains("macOS 11.7", table.StdOut);
        Assert.Contains("Automated Device Enrollment", table.StdOut);
        Assert.Contains("admin (admin), alice (standard)", table.StdOut);
        Assert.Contains("com.example.driver", table.StdOut);

        var json = _f.K("machine", "show", "--json");
        Assert.Equal(0, json.ExitCode);
        foreach (var secret in new[] { "admin-pw", "alice-pw", "salt", "hash\"", "PBKDF2" })
        {
            Assert.DoesNotContain(secret, json.StdOut, StringComparison.OrdinalIgnoreCase);
        }
        using var doc = JsonDocument.Parse(json.StdOut);
        var root = doc.RootElement;
        Assert.Equal("intel", root.GetProperty("platform").GetString());
        Assert.Equal("11.7", root.GetProperty("macOS").GetString());
        Assert.Equal("mac-os", root.GetProperty("runningOS").GetString());
        Assert.Equal("enabled", root.GetProperty("sip").GetString());
        Assert.Equal("automated", root.GetProperty("mdm").GetString());
        Assert.Equal(["admin", "alice"], root.GetProperty("users").EnumerateArray().Select(u => u.GetProperty("name").GetString()));
        Assert.True(root.GetProperty("users")[0].GetProperty("admin").GetBoolean());
        var k = Assert.Single(root.GetProperty("installedKexts").EnumerateArray());
        Assert.Equal("com.example.driver", k.GetProperty("bundleId").GetString());
        Assert.False(k.GetProperty("staged").GetBoolean());
        Assert.Equal(96, root.GetProperty("uaklSha384").GetString()!.Length);
    }

    [Fact]
    public void Machine_clock_advances_and_shows()
    {
        _f.Init();
        var before = _f.K("machine", "clock", "--show");
        Assert.Equal(0, before.ExitCode);
        var t0 = DateTime.Parse(before.StdOut["clock: ".Length..before.StdOut.IndexOf(" UTC", StringComparison.Ordinal)], System.Globalization.CultureInfo.InvariantCulture);
        var r = _f.K("machine", "clock", "--advance", "1h30m");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("advanced 1h30m", r.StdOut);
        Assert.Contains($"clock: {t0.AddMinutes(90):yyyy-MM-dd HH:mm:ss} UTC", _f.K("machine", "clock").StdOut);

        var bad = _f.K("machine", "clock", "--advance", "soon");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("kextrust: --advance: 'soon' is not a duration", bad.StdErr);
    }

    [Theory]
    [InlineData("31m", 31 * 60)]
    [InlineData("2h", 7200)]
    [InlineData("90s", 90)]
    [InlineData("1d2h", 93600)]
    public void Durations_parse(string text, int seconds)
    {
        Assert.True(MachineCommands.TryParseDuration(text, out var d));
        Assert.Equal(TimeSpan.FromSeconds(seconds), d);
    }

    [Fact]
    public void Misuse_and_unreadable_machines_are_exit_2()
    {
        var noMac = _f.K("machine", "show");
        Assert.Equal(2, noMac.ExitCode);
        Assert.Contains("no simulated Mac here (run `kextrust machine init`)", noMac.StdErr);
        Assert.Contains("(code 1100 machine-invalid)", noMac.StdErr);

        Assert.Equal(0, _f.Init().ExitCode);
        var again = _f.Init();
        Assert.Equal(2, again.ExitCode);
        Assert.Contains("a simulated Mac already exists here", again.StdErr);

        Assert.Equal(2, _f.Raw("machine", "init", _f.Temp.Combine("m2"), "--platform", "apple-silicon", "--macos", "10.15", "--admin", "a:b").ExitCode);
        Assert.Equal(2, _f.Raw("machine", "init", _f.Temp.Combine("m3"), "--platform", "intel", "--macos", "11.7", "--admin", "no-password").ExitCode);
        Assert.Equal(2, _f.Raw("machine", "init", _f.Temp.Combine("m4"), "--platform", "powerpc", "--macos", "11.7", "--admin", "a:b").ExitCode);
        Assert.Equal(2, _f.Raw("machine", "init", _f.Temp.Combine("m5"), "--platform", "intel", "--admin", "a:b").ExitCode);
        Assert.Equal(2, _f.K("approve", "--team", "T", "--bundle", "b", "--user", "admin", "--password", "x").ExitCode);
        Assert.Equal(2, _f.K("spctl", "kext-consent", "frobnicate").ExitCode);
        var notInstalled = _f.K("why", "com.example.nothing");
        Assert.Equal(2, notInstalled.ExitCode);
        Assert.Contains("(code 1004 not-installed)", notInstalled.StdErr);

        var corrupt = _f.Temp.Combine("corrupt");
        Directory.CreateDirectory(corrupt);
        File.WriteAllText(Path.Combine(corrupt, "machine.json"), "{ not json");
        var r = _f.Raw("machine", "show", "--machine", corrupt);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("machine.json", r.StdErr);
    }

    [Theory]
    [InlineData("machine", "init")]
    [InlineData("machine", "show")]
    [InlineData("machine", "clock")]
    [InlineData("machine", "upgrade")]
    [InlineData("startup")]
    [InlineData("install")]
    [InlineData("approve")]
    [InlineData("mdm", "push")]
    [InlineData("profiles", "install")]
    [InlineData("profiles", "list")]
    [InlineData("spctl", "kext-consent", "add")]
    [InlineData("kextpolicy", "show")]
    [InlineData("why")]
    public void Every_command_has_help_with_the_machine_option(params string[] command)
    {
        var r = _f.Raw([.. command, "--help"]);
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("Usage:", r.StdOut);
        Assert.Contains("--machine", r.StdOut);
    }
}

using System.Text.Json;

namespace KextTrust.Cli.Tests;

/// <summary>User-Approved Kernel Extension Loading driven only through the CLI, asserting what an admin sees.</summary>
public sealed class ConsentScenarioTests : IDisposable
{
    private const string Team = "ABCDE12345";
    private readonly ConsentCliFixture _f = new() { Verifier = new ConsentFixtureVerifier() };

    public void Dispose() => _f.Dispose();

    [Fact]
    public void A_blocked_kext_is_approved_by_an_admin_within_the_window_and_then_allowed()
    {
        _f.Verifier!.Facts["com.example.driver"] = ConsentFixtureVerifier.Signed(Team);
        var init = _f.Init("11.7");
        Assert.Equal(0, init.ExitCode);
        Assert.Contains("created a simulated Intel Mac running macOS 11.7", init.StdOut);
        Assert.DoesNotContain("admin-pw", init.StdOut);

        var install = _f.K("install", _f.Kext("com.example.driver"));
        Assert.Equal(0, install.ExitCode);
        Assert.Contains("System Extension Blocked", install.StdOut);
        Assert.Contains("\"Developer ID Application: Example Developer (ABCDE12345)\" (team ABCDE12345)", install.StdOut);
        Assert.Contains("kextrust approve --team ABCDE12345", install.StdOut);
        Assert.Contains("/Library/Extensions/driver.kext", install.StdOut);
        Assert.Contains("Allow it in System Settings › Privacy & Security until", install.StdOut);

        var why = _f.K("why", "com.example.driver");
        Assert.Equal(1, why.ExitCode);
        Assert.Contains("blocked by Consent: None: needs user approval", why.StdOut);
        Assert.Contains("(code not-approved (KMErrorDomain 27))", why.StdOut);

        var wrong = _f.K("approve", "--team", Team, "--user", "admin", "--password", "not-it");
        Assert.Equal(1, wrong.ExitCode);
        Assert.Contains("kextrust: refused: unknown user or wrong password (code 1200 authentication-failed)", wrong.StdErr);
        Assert.DoesNotContain("not-it", wrong.StdErr + wrong.StdOut);

        var clock = _f.K("machine", "clock", "--advance", "31m");
        Assert.Equal(0, clock.ExitCode);
        Assert.Contains("advanced 31m", clock.StdOut);

        var late = _f.K("approve", "--team", Team, "--user", "admin", "--password", "admin-pw");
        Assert.Equal(1, late.ExitCode);
        Assert.Contains("approval is only possible for 30 minutes", late.StdErr);
        Assert.Contains("(code 1203 approval-window-expired)", late.StdErr);

        // Loading again re-shows the alert and reopens the window.
        Assert.Contains("System Extension Blocked", _f.K("install", _f.Kext("com.example.driver")).StdOut);
        var ok = _f.K("approve", "--team", Team, "--user", "admin", "--password", "admin-pw");
        Assert.Equal(0, ok.ExitCode);
        Assert.Contains("approved team ABCDE12345 by admin", ok.StdOut);
        Assert.Contains("com.example.driver", ok.StdOut);
        Assert.DoesNotContain("admin-pw", ok.StdOut);

        var allowed = _f.K("why", "com.example.driver");
        Assert.Equal(0, allowed.ExitCode);
        Assert.Contains("allowed: consent source user", allowed.StdOut);

        var json = _f.K("why", "com.example.driver", "--json");
        Assert.Equal(0, json.ExitCode);
        using var doc = JsonDocument.Parse(json.StdOut);
        var root = doc.RootElement;
        Assert.True(root.GetProperty("allowed").GetBoolean());
        Assert.Equal("user", root.GetProperty("consentSource").GetString());
        Assert.Equal(JsonValueKind.Null, root.GetProperty("code").ValueKind);
        Assert.Equal(JsonValueKind.Null, root.GetProperty("kmErrorCode").ValueKind);
        Assert.Equal(["exclude-list", "architecture", "filesystem-validation", "signature", "staging", "consent", "kpi"],
            root.GetProperty("steps").EnumerateArray().Select(s => s.GetProperty("step").GetString()));
        var consent = root.GetProperty("steps").EnumerateArray().Single(s => s.GetProperty("step").GetString() == "consent");
        Assert.Equal("passed", consent.GetProperty("outcome").GetString());
        Assert.Equal(JsonValueKind.Null, consent.GetProperty("code").ValueKind);
        Assert.Equal("kext_policy", consent.GetProperty("evidence").GetProperty("table").GetString());
        Assert.Equal(Team, consent.GetProperty("evidence").GetProperty("team_id").GetString());
    }

    [Fact]
    public void Why_json_of_a_blocked_kext_names_the_failing_check_its_code_and_the_alert_time()
    {
        _f.Verifier!.Facts["com.example.driver"] = ConsentFixtureVerifier.Signed(Team);
        _f.Init();
        _f.K("install", _f.Kext("com.example.driver"));
        var r = _f.K("why", "com.example.driver", "--json");
        Assert.Equal(1, r.ExitCode);
        using var doc = JsonDocument.Parse(r.StdOut);
        var root = doc.RootElement;
        Assert.False(root.GetProperty("allowed").GetBoolean());
        Assert.Equal("not-approved", root.GetProperty("code").GetString());
        Assert.Equal(27, root.GetProperty("kmErrorCode").GetInt32());
        Assert.Equal("none", root.GetProperty("consentSource").GetString());
        var consent = root.GetProperty("steps")[5];
        Assert.Equal("failed", consent.GetProperty("outcome").GetString());
        Assert.Equal("not-approved", consent.GetProperty("code").GetString());
        Assert.Equal(27, consent.GetProperty("kmErrorCode").GetInt32());
        Assert.Equal("yes", consent.GetProperty("evidence").GetProperty("approval_window_open").GetString());
        Assert.Equal("developer-id", root.GetProperty("signature").GetProperty("kind").GetString());
    }

    [Fact]
    public void A_second_kext_of_an_approved_team_loads_without_an_alert()
    {
        _f.Verifier!.Facts["com.example.one"] = ConsentFixtureVerifier.Signed(Team);
        _f.Verifier.Facts["com.example.two"] = ConsentFixtureVerifier.Signed(Team);
        _f.Init();
        _f.K("install", _f.Kext("com.example.one"));
        Assert.Equal(0, _f.K("approve", "--bundle", "com.example.one", "--user", "admin", "--password", "admin-pw").ExitCode);
        var two = _f.K("install", _f.Kext("com.example.two"));
        Assert.Equal(0, two.ExitCode);
        Assert.DoesNotContain("System Extension Blocked", two.StdOut);
        Assert.Contains("com.example.two: allowed by user: User: team ABCDE12345 approved by a user", two.StdOut);
    }

    [Fact]
    public void A_standard_user_cannot_approve_on_macOS_11()
    {
        _f.Verifier!.Facts["com.example.driver"] = ConsentFixtureVerifier.Signed(Team);
        _f.Init("11.7");
        _f.K("install", _f.Kext("com.example.driver"));
        var r = _f.K("approve", "--team", Team, "--user", "alice", "--password", "alice-pw");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("alice is not an administrator", r.StdErr);
        Assert.Contains("(code 1201 admin-required)", r.StdErr);
        Assert.Equal(1, _f.K("why", "com.example.driver").ExitCode);
    }

    [Fact]
    public void Approval_without_an_alert_is_refused()
    {
        _f.Init();
        var r = _f.K("approve", "--team", Team, "--user", "admin", "--password", "admin-pw");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("(code 1202 no-pending-alert)", r.StdErr);
    }

    [Fact]
    public void Spctl_is_refused_from_macOS_and_from_recoveryOS_allows_a_team()
    {
        const string other = "ZYXWV98765";
        _f.Verifier!.Facts["com.example.net"] = ConsentFixtureVerifier.Signed(other);
        _f.Init();

        var refused = _f.K("spctl", "kext-consent", "add", other);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("kextrust: refused: spctl kext-consent: modifications are only available in recoveryOS", refused.StdErr);
        Assert.Contains("(code 1300 recovery-only)", refused.StdErr);
        Assert.Equal(1, _f.K("spctl", "kext-consent", "disable").ExitCode);

        var recovery = _f.K("startup", "--recovery");
        Assert.Equal(0, recovery.ExitCode);
        Assert.Contains("running: recoveryOS", recovery.StdOut);
        var add = _f.K("spctl", "kext-consent", "add", other);
        Assert.Equal(0, add.ExitCode);
        Assert.Contains("added team ZYXWV98765", add.StdOut);
        var list = _f.K("spctl", "kext-consent", "list");
        Assert.Equal("Allowed Team Identifiers:\nZYXWV98765\n", list.StdOut.ReplaceLineEndings("\n"));
        Assert.Contains("Kernel Extension User Consent: ENABLED", _f.K("spctl", "kext-consent", "status").StdOut);

        // Kexts are installed from macOS, not recoveryOS.
        Assert.Equal(2, _f.K("install", _f.Kext("com.example.net")).ExitCode);
        Assert.Contains("running: macOS 11.7", _f.K("startup").StdOut);
        var install = _f.K("install", _f.Kext("com.example.net"));
        Assert.Equal(0, install.ExitCode);
        Assert.DoesNotContain("System Extension Blocked", install.StdOut);
        Assert.Contains("com.example.net: allowed by spctl", install.StdOut);

        var why = _f.K("why", "com.example.net", "--json");
        Assert.Equal(0, why.ExitCode);
        using var doc = JsonDocument.Parse(why.StdOut);
        Assert.Equal("spctl", doc.RootElement.GetProperty("consentSource").GetString());

        // And removing the team again (from recoveryOS) blocks it.
        _f.K("startup", "--recovery");
        Assert.Equal("removed team ZYXWV98765\nAllowed Team Identifiers:\n", _f.K("spctl", "kext-consent", "remove", other).StdOut.ReplaceLineEndings("\n"));
        _f.K("startup");
        Assert.Equal(1, _f.K("why", "com.example.net").ExitCode);
    }

    [Fact]
    public void Spctl_disable_from_recovery_turns_consent_off()
    {
        _f.Init(extra: ["--sip", "without-kext"]);
        _f.K("startup", "--recovery");
        Assert.Contains("Kernel Extension User Consent: DISABLED", _f.K("spctl", "kext-consent", "disable").StdOut);
        _f.K("startup");
        var install = _f.K("install", _f.Kext("com.example.unsigned"));
        Assert.Contains("allowed by spctl-consent-disabled", install.StdOut);
        Assert.Equal(0, _f.K("why", "com.example.unsigned").ExitCode);
    }

    [Fact]
    public void Apple_silicon_recovery_is_one_true_recovery()
    {
        _f.Init("14.5", "apple-silicon");
        var r = _f.K("startup", "--recovery");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("running: One True Recovery", r.StdOut);
        using var doc = JsonDocument.Parse(_f.K("machine", "show", "--json").StdOut);
        Assert.Equal("one-true-recovery", doc.RootElement.GetProperty("runningOS").GetString());
        Assert.Equal("apple-silicon", doc.RootElement.GetProperty("platform").GetString());
    }
}

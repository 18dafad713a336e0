using System.Text.Json;

namespace KextTrust.Cli.Tests;

/// <summary>MDM and profiles, the KextPolicy database, and the real signature verifier, through the CLI.</summary>
public sealed class ConsentPolicyCommandTests : IDisposable
{
    private const string Team = "ABCDE12345";
    private const string Uuid = "11111111-2222-3333-4444-555555555555";
    private readonly ConsentCliFixture _f = new() { Verifier = new ConsentFixtureVerifier() };

    public void Dispose() => _f.Dispose();

    [Fact]
    public void Profiles_install_refuses_the_kext_policy_payload_as_macOS_does()
    {
        _f.Init(extra: ["--mdm", "automated"]);
        var profile = _f.Profile(Uuid, $"<key>AllowedTeamIdentifiers</key><array><string>{Team}</string></array>");
        var r = _f.K("profiles", "install", profile);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("kextrust: refused:", r.StdErr);
        Assert.Contains("com.apple.syspolicy.kernel-extension-policy payloads can only be delivered by MDM", r.StdErr);
        Assert.Contains("(code 1402 manual-install-not-allowed)", r.StdErr);
        Assert.Contains("no configuration profiles installed", _f.K("profiles", "list").StdOut);
    }

    [Fact]
    public void Profiles_install_accepts_a_system_extension_policy_and_lists_it()
    {
        _f.Init("14.5");
        var profile = _f.Profile(Uuid, $"<key>AllowedTeamIdentifiers</key><array><string>{Team}</string></array>", "com.apple.system-extension-policy");
        var r = _f.K("profiles", "install", profile);
        Assert.Equal(0, r.ExitCode);
        Assert.Contains($"installed profile com.example.profile.{Uuid} \"Example kext policy\" (unsigned)", r.StdOut);
        Assert.Contains($"com.apple.system-extension-policy {Uuid}: teams {Team}", r.StdOut);
        var list = _f.K("profiles", "list", "--json");
        Assert.Equal(0, list.ExitCode);
        using var doc = JsonDocument.Parse(list.StdOut);
        var p = Assert.Single(doc.RootElement.EnumerateArray());
        Assert.Equal($"com.example.profile.{Uuid}", p.GetProperty("payloadIdentifier").GetString());
        Assert.Equal(Uuid, p.GetProperty("systemExtensionPolicies")[0].GetProperty("payloadUuid").GetString());
    }

    [Fact]
    public void Mdm_push_on_an_unenrolled_Mac_is_refused()
    {
        _f.Init();
        var r = _f.K("mdm", "push", _f.Profile(Uuid, $"<key>AllowedTeamIdentifiers</key><array><string>{Team}</string></array>"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("the Mac is not enrolled in MDM", r.StdErr);
        Assert.Contains("(code 1400 not-enrolled)", r.StdErr);
    }

    [Fact]
    public void Mdm_push_allows_a_team_with_the_payload_uuid_as_evidence()
    {
        _f.Verifier!.Facts["com.example.driver"] = ConsentFixtureVerifier.Signed(Team);
        _f.Init("11.7", "intel", "--mdm", "user-approved");
        var push = _f.K("mdm", "push", _f.Profile(Uuid, $"<key>AllowedTeamIdentifiers</key><array><string>{Team}</string></array>"));
        Assert.Equal(0, push.ExitCode);
        Assert.Contains($"teams {Team}", push.StdOut);
        Assert.Contains("kext policy now: 1 kext_policy_mdm row(s); AllowUserOverrides no", push.StdOut);

        var install = _f.K("install", _f.Kext("com.example.driver"));
        Assert.Equal(0, install.ExitCode);
        Assert.DoesNotContain("System Extension Blocked", install.StdOut);
        Assert.Contains("com.example.driver: allowed by mdm", install.StdOut);

        var why = _f.K("why", "com.example.driver");
        Assert.Equal(0, why.ExitCode);
        Assert.Contains("allowed: consent source mdm", why.StdOut);
        Assert.Contains($"payload_uuid={Uuid}", why.StdOut);

        var policy = _f.K("kextpolicy", "show", "--json");
        Assert.Equal(0, policy.ExitCode);
        using var doc = JsonDocument.Parse(policy.StdOut);
        var row = Assert.Single(doc.RootElement.GetProperty("kextPolicyMdm").EnumerateArray());
        Assert.Equal(Team, row.GetProperty("teamId").GetString());
        Assert.Equal(Uuid, row.GetProperty("payloadUuid").GetString());
        Assert.Equal(JsonValueKind.Null, row.GetProperty("bundleId").ValueKind);
    }

    [Fact]
    public void A_malformed_profile_is_exit_2_naming_the_file()
    {
        _f.Init(extra: ["--mdm", "automated"]);
        var bad = _f.Temp.Combine("bad.mobileconfig");
        File.WriteAllText(bad, "<plist><dict><key>PayloadContent</key>");
        var r = _f.K("mdm", "push", bad);
        Assert.Equal(2, r.ExitCode);
        Assert.StartsWith("kextrust: ", r.StdErr);
        Assert.Contains("bad.mobileconfig", r.StdErr);
        Assert.Contains("(code 1401 profile-invalid)", r.StdErr);
    }

    [Fact]
    public void Kextpolicy_show_json_lists_the_rows_of_this_Mac_and_reads_a_copied_database_read_only()
    {
        _f.Verifier!.Facts["com.example.driver"] = ConsentFixtureVerifier.Signed(Team);
        _f.Init();
        _f.K("install", _f.Kext("com.example.driver"));
        _f.K("approve", "--team", Team, "--user", "admin", "--password", "admin-pw");

        var r = _f.K("kextpolicy", "show", "--json");
        Assert.Equal(0, r.ExitCode);
        using (var doc = JsonDocument.Parse(r.StdOut))
        {
            var row = Assert.Single(doc.RootElement.GetProperty("kextPolicy").EnumerateArray());
            Assert.Equal(Team, row.GetProperty("teamId").GetString());
            Assert.Equal("com.example.driver", row.GetProperty("bundleId").GetString());
            Assert.True(row.GetProperty("allowed").GetBoolean());
            var h = Assert.Single(doc.RootElement.GetProperty("kextLoadHistoryV3").EnumerateArray());
            Assert.Equal("/Library/Extensions/driver.kext", h.GetProperty("path").GetString());
        }

        // A copy, as an admin would bring from a real Mac: opened read-only, unchanged afterwards.
        var copy = _f.Temp.Combine("KextPolicy-copy");
        File.Copy(Path.Combine(_f.MacDir, "var", "db", "SystemPolicyConfiguration", "KextPolicy"), copy);
        var before = File.ReadAllBytes(copy);
        var table = _f.Raw("kextpolicy", "show", copy);
        Assert.Equal(0, table.ExitCode);
        Assert.Contains("kext_policy (1)", table.StdOut);
        Assert.Contains(Team, table.StdOut);
        Assert.Contains("kext_policy_mdm: no rows", table.StdOut);
        Assert.Equal(before, File.ReadAllBytes(copy));
    }

    [Fact]
    public void Kextpolicy_show_on_a_non_SQLite_file_is_exit_2_naming_the_file()
    {
        var notDb = _f.Temp.Combine("NotKextPolicy.txt");
        File.WriteAllText(notDb, "this is not a database, just text long enough to have a header of sorts....");
        var r = _f.Raw("kextpolicy", "show", notDb);
        Assert.Equal(2, r.ExitCode);
        Assert.Equal("", r.StdOut);
        Assert.StartsWith("kextrust: ", r.StdErr);
        Assert.Contains("NotKextPolicy.txt", r.StdErr);
        Assert.Contains("not a readable SQLite database", r.StdErr);

        var missing = _f.Raw("kextpolicy", "show", _f.Temp.Combine("nothing-here"));
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("nothing-here: no such database", missing.StdErr);
    }

    [Fact]
    public void With_the_real_verifier_an_unsigned_kext_fails_the_signature_check_under_SIP()
    {
        _f.Verifier = null;
        _f.Init();
        var install = _f.K("install", _f.Kext("com.example.unsigned"));
        Assert.Equal(0, install.ExitCode);
        Assert.Contains("unsigned", install.StdOut);
        var why = _f.K("why", "com.example.unsigned");
        Assert.Equal(1, why.ExitCode);
        Assert.Contains("SIP requires a valid Developer ID kext signature", why.StdOut);
        Assert.Contains("(code signature-unsigned (KMErrorDomain 29))", why.StdOut);
    }

    [Fact]
    public void With_kext_signing_relaxed_an_unsigned_kext_is_approved_by_bundle_id()
    {
        _f.Verifier = null;
        _f.Init("11.7", "intel", "--sip", "without-kext");
        Assert.Contains("kext signatures not enforced", _f.K("machine", "show").StdOut);
        var install = _f.K("install", _f.Kext("com.example.unsigned"));
        Assert.Contains("System Extension Blocked: a program tried to load a new unsigned system extension.", install.StdOut);
        Assert.Contains("kextrust approve --bundle com.example.unsigned", install.StdOut);
        Assert.Equal(1, _f.K("why", "com.example.unsigned").ExitCode);

        // Approval by team makes no sense for an unsigned kext: misuse, exit 2.
        var byTeam = _f.K("approve", "--team", "", "--user", "admin", "--password", "admin-pw");
        Assert.Equal(2, byTeam.ExitCode);

        var ok = _f.K("approve", "--bundle", "com.example.unsigned", "--user", "admin", "--password", "admin-pw");
        Assert.Equal(0, ok.ExitCode);
        Assert.Contains("approved unsigned kext by admin", ok.StdOut);
        var why = _f.K("why", "com.example.unsigned");
        Assert.Equal(0, why.ExitCode);
        Assert.Contains("not enforced", why.StdOut);
        Assert.Contains("allowed: consent source user", why.StdOut);
    }

    [Fact]
    public void Kexts_installed_on_10_12_are_grandfathered_by_the_upgrade()
    {
        _f.Verifier = null;
        _f.Init("10.12.6", "intel", "--sip", "without-kext");
        var install = _f.K("install", _f.Kext("com.example.legacy"));
        Assert.Contains("com.example.legacy: allowed by not-required-before-high-sierra", install.StdOut);
        var up = _f.K("machine", "upgrade", "--macos", "10.13.6");
        Assert.Equal(0, up.ExitCode);
        Assert.Contains("upgraded macOS 10.12.6 → 10.13.6", up.StdOut);
        Assert.Contains("grandfathered: com.example.legacy", up.StdOut);
        var why = _f.K("why", "com.example.legacy");
        Assert.Equal(0, why.ExitCode);
        Assert.Contains("allowed: consent source grandfathered", why.StdOut);

        var older = _f.K("machine", "upgrade", "--macos", "10.13.1");
        Assert.Equal(2, older.ExitCode);
        Assert.Contains("is not a macOS version newer than 10.13.6", older.StdErr);
    }
}

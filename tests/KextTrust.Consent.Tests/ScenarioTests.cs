using KextTrust.Consent;
using KextTrust.Consent.Policy;
using KextTrust.Kexts.Kpi;
using KextTrust.Machine;
using KextTrust.Kexts.Trust;

namespace KextTrust.Consent.Tests;

public sealed class ScenarioTests : IDisposable
{
    private readonly MacFixture _f = new();

    public void Dispose() => _f.Dispose();

    private const string Team = "ABCDE12345";

    [Fact]
    public void New_signed_kext_is_blocked_with_an_alert_then_allowed_after_admin_approval()
    {
        _f.Init();
        _f.Verifier.Facts["com.example.driver"] = FixtureVerifier.Signed(Team);
        using var mac = _f.Open();
        var r = Assert.Single(mac.Install([_f.Kext("com.example.driver")]));
        Assert.True(r.AlertShown);
        Assert.True(r.Staged);
        var d = mac.Why("com.example.driver");
        Assert.False(d.Allowed);
        Assert.Equal(TrustCode.NotApproved, d.Code);
        Assert.Equal([TrustStep.ExcludeList, TrustStep.Architecture, TrustStep.FilesystemValidation, TrustStep.Signature, TrustStep.Staging, TrustStep.Consent, TrustStep.Kpi], d.Steps.Select(s => s.Step));

        mac.AdvanceClock(TimeSpan.FromMinutes(10));
        var a = mac.Approve(Team, null, "admin", "admin-pw");
        Assert.Equal(["com.example.driver"], a.BundleIds);
        d = mac.Why("com.example.driver");
        Assert.True(d.Allowed);
        Assert.Equal(ConsentSource.User, d.ConsentSource);
        var row = Assert.Single(mac.ReadPolicy().Policy);
        Assert.Equal((Team, "com.example.driver", true, KextPolicyFlags.UserApproved), (row.TeamId, row.BundleId, row.Allowed, row.Flags));
        Assert.Contains("Example Developer", row.DeveloperName);
    }

    [Fact]
    public void Approval_is_per_team_so_a_second_kext_of_the_team_needs_no_alert()
    {
        _f.Init();
        _f.Verifier.Facts["com.example.one"] = FixtureVerifier.Signed(Team);
        _f.Verifier.Facts["com.example.two"] = FixtureVerifier.Signed(Team);
        using var mac = _f.Open();
        mac.Install([_f.Kext("com.example.one")]);
        mac.Approve(null, "com.example.one", "admin", "admin-pw");
        var r = Assert.Single(mac.Install([_f.Kext("com.example.two")]));
        Assert.False(r.AlertShown);
        Assert.True(mac.Why("com.example.two").Allowed);
    }

    [Fact]
    public void Approval_after_the_30_minute_window_is_refused_and_leaves_the_machine_unchanged()
    {
        _f.Init();
        _f.Verifier.Facts["com.example.driver"] = FixtureVerifier.Signed(Team);
        using var mac = _f.Open();
        mac.Install([_f.Kext("com.example.driver")]);
        mac.AdvanceClock(TimeSpan.FromMinutes(31));
        var before = _f.Snapshot();
        var e = Assert.Throws<ConsentException>(() => mac.Approve(Team, null, "admin", "admin-pw"));
        Assert.Equal(ConsentCode.ApprovalWindowExpired, e.Code);
        Assert.Equal(before, _f.Snapshot());
        // Loading again re-shows the alert, and the window reopens.
        mac.Install([_f.Kext("com.example.driver")]);
        mac.Approve(Team, null, "admin", "admin-pw");
        Assert.True(mac.Why("com.example.driver").Allowed);
    }

    [Fact]
    public void Approval_exactly_at_30_minutes_is_accepted()
    {
        _f.Init();
        _f.Verifier.Facts["com.example.driver"] = FixtureVerifier.Signed(Team);
        using var mac = _f.Open();
        mac.Install([_f.Kext("com.example.driver")]);
        mac.AdvanceClock(TimeSpan.FromMinutes(30));
        mac.Approve(Team, null, "admin", "admin-pw");
    }

    [Fact]
    public void Approval_without_an_alert_is_refused()
    {
        _f.Init();
        using var mac = _f.Open();
        Assert.Equal(ConsentCode.NoPendingAlert, Assert.Throws<ConsentException>(() => mac.Approve(Team, null, "admin", "admin-pw")).Code);
    }

    [Fact]
    public void Non_admin_is_refused_on_macOS_11_but_allowed_on_10_13()
    {
        _f.Init("11.2");
        _f.Verifier.Facts["com.example.driver"] = FixtureVerifier.Signed(Team);
        using (var mac = _f.Open())
        {
            mac.Install([_f.Kext("com.example.driver")]);
            Assert.Equal(ConsentCode.AdminRequired, Assert.Throws<ConsentException>(() => mac.Approve(Team, null, "alice", "alice-pw")).Code);
        }
        using var old = new MacFixture();
        old.Init("10.13.6");
        old.Verifier.Facts["com.example.driver"] = FixtureVerifier.Signed(Team);
        using var mac2 = old.Open();
        mac2.Install([old.Kext("com.example.driver")]);
        mac2.Approve(Team, null, "alice", "alice-pw");
        Assert.True(mac2.Why("com.example.driver").Allowed);
    }

    [Fact]
    public void Wrong_password_and_unknown_user_are_refused()
    {
        _f.Init();
        _f.Verifier.Facts["com.example.driver"] = FixtureVerifier.Signed(Team);
        using var mac = _f.Open();
        mac.Install([_f.Kext("com.example.driver")]);
        Assert.Equal(ConsentCode.AuthenticationFailed, Assert.Throws<ConsentException>(() => mac.Approve(Team, null, "admin", "nope")).Code);
        Assert.Equal(ConsentCode.AuthenticationFailed, Assert.Throws<ConsentException>(() => mac.Approve(Team, null, "mallory", "admin-pw")).Code);
        Assert.DoesNotContain("admin-pw", File.ReadAllText(Path.Combine(_f.MacDir, MachineLayout.Description)));
    }

    [Fact]
    public void Kexts_installed_on_10_12_are_grandfathered_after_the_upgrade()
    {
        _f.Init("10.12.6");
        _f.Verifier.Facts["com.example.legacy"] = FixtureVerifier.Signed(Team);
        using var mac = _f.Open();
        Assert.False(Assert.Single(mac.Install([_f.Kext("com.example.legacy")])).AlertShown);
        Assert.Equal(["com.example.legacy"], mac.Upgrade("10.13.6"));
        var d = mac.Why("com.example.legacy");
        Assert.True(d.Allowed);
        Assert.Equal(ConsentSource.Grandfathered, d.ConsentSource);
        // A kext installed after the upgrade is not.
        _f.Verifier.Facts["com.example.new"] = FixtureVerifier.Signed("ZZZZZ99999");
        mac.Install([_f.Kext("com.example.new")]);
        Assert.Equal(ConsentSource.None, mac.Why("com.example.new").ConsentSource);
    }

    [Fact]
    public void A_kext_replacing_a_previously_approved_one_needs_no_approval()
    {
        _f.Init("10.12.6");
        _f.Verifier.Facts["com.example.legacy"] = FixtureVerifier.Signed(Team);
        using var mac = _f.Open();
        mac.Install([_f.Kext("com.example.legacy", "1.0.0")]);
        mac.Upgrade("14.5");
        var r = Assert.Single(mac.Install([_f.Kext("com.example.legacy", "2.0.0")]));
        Assert.True(r.Replaced);
        Assert.False(r.AlertShown);
        var d = mac.Why("com.example.legacy");
        Assert.True(d.Allowed, d.Reason);
        Assert.Equal(ConsentSource.Replacement, d.ConsentSource);
        Assert.Equal("2.0.0", d.Version);
    }

    [Fact]
    public void Spctl_from_recovery_allows_a_team_and_is_refused_from_macOS()
    {
        _f.Init();
        _f.Verifier.Facts["com.example.driver"] = FixtureVerifier.Signed(Team);
        using var mac = _f.Open();
        var before = _f.Snapshot();
        Assert.Equal(ConsentCode.RecoveryOnly, Assert.Throws<ConsentException>(() => mac.SpctlTeam(Team, add: true)).Code);
        Assert.Equal(before, _f.Snapshot());
        Assert.Equal(RunningOS.RecoveryOS, mac.Startup(recovery: true).RunningOS);
        mac.SpctlTeam(Team, add: true);
        mac.Startup(recovery: false);
        Assert.False(Assert.Single(mac.Install([_f.Kext("com.example.driver")])).AlertShown);
        var d = mac.Why("com.example.driver");
        Assert.Equal(ConsentSource.Spctl, d.ConsentSource);
        Assert.Contains(UaklTeam(mac), e => e.TeamId == Team && e.Source == ConsentSource.Spctl);
    }

    private static IReadOnlyList<UaklEntry> UaklTeam(SystemPolicy mac) => mac.BuildUakl().Entries;

    [Fact]
    public void Apple_silicon_recovery_is_one_true_recovery()
    {
        _f.Init(platform: MacPlatform.AppleSilicon);
        using var mac = _f.Open();
        Assert.Equal(RunningOS.OneTrueRecovery, mac.Startup(recovery: true).RunningOS);
    }

    [Fact]
    public void Spctl_disable_turns_consent_off()
    {
        _f.Init();
        using var mac = _f.Open();
        mac.Startup(true);
        mac.SpctlSetEnabled(false);
        mac.Startup(false);
        mac.Install([_f.Kext("com.example.unsigned")]);
        Assert.Equal(ConsentSource.SpctlConsentDisabled, mac.Why("com.example.unsigned").ConsentSource);
    }

    [Fact]
    public void Excluded_kext_is_blocked_whatever_its_consent()
    {
        _f.Init(csr: CsrConfig.Disabled);
        using var mac = _f.Open();
        mac.Install([_f.Kext("com.example.banned", "3.0.0")]);
        var d = mac.Why("com.example.banned");
        Assert.False(d.Allowed);
        Assert.Equal(TrustCode.ExcludeListed, d.Code);
        Assert.Equal(TrustStep.ExcludeList, d.Steps.First(s => s.Outcome == TrustOutcome.Failed).Step);
    }

    [Fact]
    public void Wrong_architecture_is_code_71()
    {
        _f.Init(platform: MacPlatform.AppleSilicon, csr: CsrConfig.Disabled);
        using var mac = _f.Open();
        mac.Install([_f.Kext("com.example.intelonly")]);
        Assert.Equal(TrustCode.MissingArchitecture, mac.Why("com.example.intelonly").Code);
    }

    [Fact]
    public void Group_writable_kext_fails_validation_with_code_30()
    {
        _f.Init(csr: CsrConfig.Disabled);
        using var mac = _f.Open();
        var k = _f.Kext("com.example.loose");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(Path.Combine(k, "Contents", "Info.plist"), (UnixFileMode)0b110_110_100);
        }
        mac.Install([k]);
        Assert.Equal(TrustCode.ValidationFailed, mac.Why("com.example.loose").Code);
    }

    [Fact]
    public void Unsupported_KPI_blocks_on_Big_Sur_unless_SIP_is_off()
    {
        _f.Init("11.0");
        _f.Verifier.Facts["com.example.kauth"] = FixtureVerifier.Signed(Team);
        using var mac = _f.Open();
        mac.Install([_f.Kext("com.example.kauth", imports: ["_kauth_listen_scope"])]);
        mac.Approve(Team, null, "admin", "admin-pw");
        var d = mac.Why("com.example.kauth");
        Assert.Equal(TrustCode.UnsupportedKpi, d.Code);
        mac.Startup(true);
        mac.SetCsr(CsrConfig.Disabled, mac.Store.Begin());
        mac.Startup(false);
        d = mac.Why("com.example.kauth");
        Assert.True(d.Allowed, d.Reason);
        // As kmd and the audit say it: a warning, the unsupported KPI not enforced.
        var kpi = d.Steps.Single(s => s.Step == TrustStep.Kpi);
        Assert.Equal(TrustOutcome.Warning, kpi.Outcome);
        Assert.Equal(TrustCode.KpiNotEnforced, kpi.Code);
        Assert.Null(d.Code);
    }
}

namespace KextTrust.Cli.Tests;

public sealed class BootCommandTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "kextrust-bootcli-" + Guid.NewGuid().ToString("N")[..10]);

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, true);
        }
    }

    private void Init() => Assert.Equal(0, CliRunner.Run("machine", "init", "--machine", _dir, "--platform", "apple-silicon", "--macos", "14.5", "--admin", "admin:pw").ExitCode);

    [Fact]
    public void Bputil_from_macos_is_refused_with_reason()
    {
        Init();
        var r = CliRunner.Run("bputil", "--machine", _dir, "-g", "-k", "-u", "admin", "-p", "pw");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("NotInOneTrueRecovery", r.StdErr);
        Assert.Contains("Security Mode:               Full       (smb0): absent", CliRunner.Run("bputil", "--machine", _dir, "-d").StdOut);
    }

    [Fact]
    public void Bputil_in_recovery_with_wrong_password_is_refused_and_right_password_works()
    {
        Init();
        Assert.Equal(0, CliRunner.Run("startup", "--machine", _dir, "--recovery").ExitCode);
        var bad = CliRunner.Run("bputil", "--machine", _dir, "-g", "-k", "-u", "admin", "-p", "nope");
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("AuthenticationFailed", bad.StdErr);
        var ok = CliRunner.Run("bputil", "--machine", _dir, "-g", "-k", "-u", "admin", "-p", "pw");
        Assert.True(ok.ExitCode == 0, ok.StdErr);
        var d = CliRunner.Run("bputil", "--machine", _dir, "-d").StdOut;
        Assert.Contains("3rd Party Kexts Status:      Enabled    (smb2): 1", d);
        // Parsed as fleetdm parses real `bputil -d` output: rows after "Local policy for volume group UUID:".
        var rows = BputilParser.Parse(d);
        Assert.Equal(("Reduced", "smb0", "1"), rows["Security_Mode"]);
        Assert.Equal(("Enabled", "smb2", "1"), rows["3rd_Party_Kexts_Status"]);
        Assert.Equal(("Enabled", "sip0", "absent"), rows["SIP_Status"]);
        Assert.Equal(("", "auxp", "absent"), rows["User_Authorized_Kext_List_Hash"]);
        Assert.Equal(("", "", "Valid"), rows["Pairing_Integrity"]);
        Assert.Matches("^0x[0-9A-F]+$", rows["Unique_Chip_ID"].Value);
    }

    [Fact]
    public void Csrutil_from_macos_refused_status_works()
    {
        Init();
        Assert.Equal(1, CliRunner.Run("csrutil", "disable", "--machine", _dir, "-u", "admin", "-p", "pw").ExitCode);
        Assert.Contains("enabled", CliRunner.Run("csrutil", "status", "--machine", _dir).StdOut);
    }

    [Fact]
    public void Kmutil_create_without_kexts_enabled_is_refused()
    {
        Init();
        var r = CliRunner.Run("kmutil", "create", "--machine", _dir, "-u", "admin", "-p", "pw");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("ThirdPartyKextsDisabled", r.StdErr);
    }
}

namespace KextTrust.Cli.Tests;

/// <summary>
/// The commands that read the LocalPolicy on a Mac whose LocalPolicy file is corrupt: no crash, the JSON error object,
/// exit 2 and a reason naming the file; the commands that do not read it are unaffected; nothing on disk changes.
/// </summary>
[Collection(BootMacCollection.Name)]
public sealed class BootCorruptPolicyCommandTests(BootMacFixture fx)
{
    public enum Corruption { FirstByteFlipped, LengthByteFlipped, Truncated }

    private static void Corrupt(BootMac mac, Corruption how)
    {
        var bytes = mac.Read(BootMac.LocalPolicy);
        switch (how)
        {
            case Corruption.FirstByteFlipped:
                mac.FlipByte(BootMac.LocalPolicy, 0); // SEQUENCE becomes SET
                break;
            case Corruption.LengthByteFlipped:
                mac.FlipByte(BootMac.LocalPolicy, 1); // the outer length no longer matches the file
                break;
            default:
                File.WriteAllBytes(mac.PathOf(BootMac.LocalPolicy), bytes[..(bytes.Length / 2)]);
                break;
        }
    }

    [Theory]
    [InlineData(Corruption.FirstByteFlipped, "csrutil", "status")]
    [InlineData(Corruption.LengthByteFlipped, "csrutil", "status")]
    [InlineData(Corruption.Truncated, "csrutil", "status")]
    [InlineData(Corruption.FirstByteFlipped, "bputil", "-d")]
    [InlineData(Corruption.LengthByteFlipped, "bputil", "-d")]
    [InlineData(Corruption.Truncated, "bputil", "-d")]
    public void A_command_that_reads_a_corrupt_LocalPolicy_writes_its_json_error_naming_the_file_and_exits_2(Corruption how, string command, string arg)
    {
        using var mac = fx.Clone();
        Corrupt(mac, how);
        var before = mac.FolderHash();
        var path = mac.PathOf(BootMac.LocalPolicy);

        var r = mac.Json(command, arg);
        Assert.Equal(2, r.ExitCode);
        Assert.Equal("LocalPolicyMalformed", r.ErrorCode);
        var error = r.Json.GetProperty("error");
        Assert.Equal(2, error.GetProperty("exitCode").GetInt32());
        var message = error.GetProperty("message").GetString()!;
        Assert.StartsWith(path + ": invalid Image4 at offset ", message);
        Assert.Equal($"kextrust: {message}", r.StdErr.Trim());
        Assert.DoesNotContain("Unhandled", r.StdErr);

        var text = mac.K(command, arg);
        if (command == "bputil")
        {
            Assert.Equal(2, text.ExitCode);
            Assert.Equal("", text.StdOut);
            Assert.Equal($"kextrust: {message}", text.StdErr.Trim());
        }
        else
        {
            // Plain `csrutil status` shows only csr-active-config (NVRAM), not the LocalPolicy's sip0: it still answers.
            Assert.Equal(0, text.ExitCode);
            Assert.StartsWith("System Integrity Protection status: enabled.", text.StdOut);
        }
        Assert.Equal(before, mac.FolderHash());
    }

    [Theory]
    [InlineData(Corruption.FirstByteFlipped)]
    [InlineData(Corruption.Truncated)]
    public void Kmutil_inspect_and_applepay_status_do_not_read_the_LocalPolicy_and_answer_as_before(Corruption how)
    {
        using var mac = fx.Clone();
        var inspect = mac.Ok("kmutil", "inspect").Json.ToString();
        var pay = mac.Ok("applepay", "status").Json.ToString();
        Corrupt(mac, how);
        Assert.Equal(inspect, mac.Ok("kmutil", "inspect").Json.ToString());
        Assert.Equal(pay, mac.Ok("applepay", "status").Json.ToString());
        // startup, which does verify the LocalPolicy, refuses it and starts recoveryOS's path without kexts.
        var boot = mac.Json("startup");
        Assert.NotEqual(0, boot.ExitCode);
        Assert.DoesNotContain("Unhandled", boot.StdErr);
    }
}

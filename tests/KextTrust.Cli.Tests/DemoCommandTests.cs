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
        Assert.Equal(["aux-kc-rollback", "uakl-modified", "not-in-one-true-recovery"], codes);
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
            Assert.Matches(@"User Authorized Kext List Hash +\(auxp\): [0-9A-F]{96}", CliRunner.Run("bputil", "--machine", mac, "-d").StdOut);
            // The kept Mac's LocalPolicy and AuxKC Image4 read with `img4`: Apple's layout, the policy as bputil shows it,
            // and the AuxKC's DGST matching its IM4P (only the chain is not Apple's: the Secure Enclave signed it).
            var policyInfo = CliRunner.Run("img4", "info", Path.Combine(mac, "Preboot/LocalPolicy/LocalPolicy.im4m"));
            Assert.True(policyInfo.ExitCode == 0, policyInfo.StdErr);
            Assert.Contains("3rd Party Kexts Status:      Enabled    (smb2): 1", policyInfo.StdOut);
            var auxkc = Path.Combine(mac, "Preboot/boot/AuxiliaryKernelExtensions/AuxiliaryKernelExtensions.img4");
            Assert.Contains("payload (IM4P): type 'auxk'", CliRunner.Run("img4", "info", auxkc).StdOut);
            var verify = CliRunner.Run("img4", "verify", auxkc, "--json");
            Assert.Equal(1, verify.ExitCode);
            var problems = System.Text.Json.JsonDocument.Parse(verify.StdOut).RootElement.GetProperty("manifests")[0].GetProperty("problems");
            Assert.Equal(["chain-untrusted"], problems.EnumerateArray().Select(p => p.GetProperty("code").GetString()));
            var startup = CliRunner.Run("startup", "--machine", mac);
            Assert.Contains("iBoot: booting without third-party kexts: user-approved-kext-list: failed (uakl-modified) auxp mismatch", startup.StdOut);
            // The refusal goes to standard error: standard output stays kmutil's table.
            var shown = CliRunner.Run("kmutil", "showloaded", "--machine", mac);
            Assert.Contains("user-approved-kext-list: failed (uakl-modified)", shown.StdErr);
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

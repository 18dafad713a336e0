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
        // The exception's code (SecureBootCode.LocalPolicyMalformed) writes the TrustCode startup's trace names the fact with.
        Assert.Equal("local-policy-malformed", r.ErrorCode);
        Assert.Equal(KextTrust.Kexts.Trust.TrustCodes.Name(KextTrust.Kexts.Trust.TrustCode.LocalPolicyMalformed), r.ErrorCode);
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
        // startup, which does verify the LocalPolicy, refuses it and starts recoveryOS's path without kexts, with the code
        // bputil -d's error gives the same file.
        var boot = mac.Json("startup");
        Assert.NotEqual(0, boot.ExitCode);
        Assert.DoesNotContain("Unhandled", boot.StdErr);
        Assert.Equal("local-policy-malformed", boot.Json.GetProperty("refusal").GetProperty("code").GetString());
        Assert.Equal("local-policy-malformed", mac.Json("bputil", "-d").ErrorCode);
    }

    [Fact]
    public void Bputil_display_says_whether_iBoot_would_accept_the_policy()
    {
        using var mac = fx.Clone();
        var good = mac.Ok("bputil", "-d");
        Assert.True(good.Json.GetProperty("verified").GetBoolean());
        Assert.Equal(0, good.Json.GetProperty("verificationFailures").GetArrayLength());
        Assert.StartsWith("verified as iBoot checks it", mac.K("bputil", "-d").StdOut);

        // A flip inside the manifest signature (IM4M: "IM4M", version, body SET, signature OCTET STRING, certificates)
        // still decodes: displayed, but named as not verified, as startup refuses it.
        var bytes = mac.Read(BootMac.LocalPolicy);
        System.Formats.Asn1.AsnDecoder.ReadEncodedValue(bytes, System.Formats.Asn1.AsnEncodingRules.DER, out var pos, out _, out _);
        for (var i = 0; i < 3; i++)
        {
            System.Formats.Asn1.AsnDecoder.ReadEncodedValue(bytes.AsSpan(pos), System.Formats.Asn1.AsnEncodingRules.DER, out _, out _, out var consumed);
            pos += consumed;
        }
        System.Formats.Asn1.AsnDecoder.ReadEncodedValue(bytes.AsSpan(pos), System.Formats.Asn1.AsnEncodingRules.DER, out var signatureAt, out var signatureLength, out _);
        Assert.True(signatureLength > 40);
        mac.FlipByte(BootMac.LocalPolicy, pos + signatureAt + 12); // inside the ECDSA signature's r
        var bad = mac.Ok("bputil", "-d");
        Assert.False(bad.Json.GetProperty("verified").GetBoolean());
        var failure = Assert.Single(bad.Json.GetProperty("verificationFailures").EnumerateArray()).GetString()!;
        Assert.StartsWith("local-policy-not-signed-by-this-mac: ", failure);
        Assert.Equal(good.Str("securityMode"), bad.Str("securityMode"));
        var text = mac.K("bputil", "-d");
        Assert.Equal(0, text.ExitCode);
        Assert.StartsWith("NOT VERIFIED (startup would refuse it): local-policy-not-signed-by-this-mac: ", text.StdOut);
        // startup refuses it with the same code, at the step that names it.
        var startup = mac.Json("startup");
        Assert.NotEqual(0, startup.ExitCode);
        var refusal = startup.Json.GetProperty("refusal");
        Assert.Equal(("local-policy-signature", "local-policy-not-signed-by-this-mac"),
            (refusal.GetProperty("step").GetString(), refusal.GetProperty("code").GetString()));
    }
}

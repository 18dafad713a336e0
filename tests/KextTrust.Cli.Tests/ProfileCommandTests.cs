using System.Text.Json;
using KextTrust.TestSupport;

namespace KextTrust.Cli.Tests;

/// <summary>
/// <c>mdm profile</c> (generation from real signatures made with <c>pki init</c> + <c>codesign</c>), <c>mdm remove</c>,
/// <c>profiles remove</c>, and <c>--json</c> of the profile commands. Independent checks: Debian's <c>plistutil</c> reads
/// the generated XML, <c>openssl cms -verify</c> the signed one.
/// </summary>
public sealed class ProfileCommandTests : IDisposable
{
    private readonly ConsentCliFixture _f = new();
    private const string Team = "PROFTEAM01";

    public void Dispose() => _f.Dispose();

    /// <summary>Two signed kexts of the team (one with a plug-in), one unsigned; returns (pki folder, folder holding them).</summary>
    private (string Pki, string Folder, string Signed, string Other, string Unsigned) Kexts()
    {
        var pki = _f.Temp.Combine("pki");
        Assert.Equal(0, _f.Raw("pki", "init", pki, "--team", Team).ExitCode);
        var signed = _f.Kext("com.example.signed");
        var other = _f.Kext("com.example.other");
        var unsigned = _f.Kext("com.example.unsigned");
        var sign = _f.Raw("codesign", signed, other, "--p12", Path.Combine(pki, "leaf.p12"), "--password", "kextrust");
        Assert.True(sign.ExitCode == 0, sign.StdErr);
        return (pki, _f.Temp.Combine("src"), signed, other, unsigned);
    }

    [Fact]
    public void A_generated_profile_lists_teams_and_bundle_ids_from_verified_signatures_and_round_trips_through_mdm_push()
    {
        var (pki, _, signed, other, unsigned) = Kexts();
        var output = _f.Temp.Combine("kexts.mobileconfig");
        var gen = _f.Raw("mdm", "profile", signed, unsigned, "-o", output, "--trust-root", Path.Combine(pki, "root.pem"), "--identifier", "com.example.kext-policy", "--json");
        Assert.True(gen.ExitCode == 0, gen.StdErr);
        using (var doc = JsonDocument.Parse(gen.StdOut))
        {
            var map = doc.RootElement.GetProperty("allowedKernelExtensions");
            Assert.Equal(["com.example.signed"], map.GetProperty(Team).EnumerateArray().Select(e => e.GetString()));
            Assert.Equal(["com.example.unsigned"], map.GetProperty("").EnumerateArray().Select(e => e.GetString()));
            Assert.Empty(doc.RootElement.GetProperty("allowedTeamIdentifiers").EnumerateArray());
            Assert.Equal("developer-id", doc.RootElement.GetProperty("kexts")[0].GetProperty("signature").GetString());
        }
        // Debian's plistutil reads it, and our reader agrees with it.
        var xml = ExternalTool.Run(ExternalTool.PlistUtil, "-i", output, "-f", "xml");
        Assert.Equal(0, xml.ExitCode);
        Assert.Contains("<string>com.apple.syspolicy.kernel-extension-policy</string>", xml.StdOut);
        Assert.Contains($"<key>{Team}</key>", xml.StdOut);

        // Stable: the same kexts give the same bytes.
        var again = _f.Temp.Combine("again.mobileconfig");
        Assert.Equal(0, _f.Raw("mdm", "profile", signed, unsigned, "-o", again, "--trust-root", Path.Combine(pki, "root.pem"), "--identifier", "com.example.kext-policy").ExitCode);
        Assert.Equal(File.ReadAllBytes(output), File.ReadAllBytes(again));

        // Round trip: exactly those kexts are MDM-approved on a Mac trusting the same root.
        Assert.Equal(0, _f.Init("11.7", "intel", "--mdm", "automated", "--trust-root", Path.Combine(pki, "root.pem"), "--sip", "without-kext").ExitCode);
        var push = _f.K("mdm", "push", output);
        Assert.True(push.ExitCode == 0, push.StdErr);
        Assert.Equal(0, _f.K("install", signed, other, unsigned).ExitCode);
        foreach (var (id, mdm) in new[] { ("com.example.signed", true), ("com.example.unsigned", true), ("com.example.other", false) })
        {
            var why = _f.K("why", id, "--json");
            using var d = JsonDocument.Parse(why.StdOut);
            Assert.Equal(mdm ? "mdm" : "none", d.RootElement.GetProperty("consentSource").GetString());
        }
    }

    [Fact]
    public void Team_only_allows_the_team_and_keeps_unsigned_kexts_by_bundle_id_and_a_folder_is_searched()
    {
        var (pki, folder, _, _, _) = Kexts();
        var output = _f.Temp.Combine("team.mobileconfig");
        var gen = _f.Raw("mdm", "profile", folder, "-o", output, "--team-only", "--allow-user-overrides", "--non-admin-approvals", "--trust-root", Path.Combine(pki, "root.pem"));
        Assert.True(gen.ExitCode == 0, gen.StdErr);
        Assert.Contains($"AllowedTeamIdentifiers: {Team}", gen.StdOut);
        Assert.Contains("AllowedKernelExtensions['' (unsigned)]: com.example.unsigned", gen.StdOut);
        var xml = ExternalTool.Run(ExternalTool.PlistUtil, "-i", output, "-f", "xml").StdOut;
        Assert.Contains("<key>AllowUserOverrides</key>\n\t\t\t<true/>", xml);
        Assert.Contains("<key>AllowNonAdminUserApprovals</key>\n\t\t\t<true/>", xml);
    }

    [Fact]
    public void A_signed_profile_verifies_with_openssl_cms_and_is_accepted_by_mdm_push()
    {
        var (pki, _, signed, _, _) = Kexts();
        var output = _f.Temp.Combine("signed.mobileconfig");
        var gen = _f.Raw("mdm", "profile", signed, "-o", output, "--trust-root", Path.Combine(pki, "root.pem"), "--sign", Path.Combine(pki, "leaf.p12"), "--password", "kextrust");
        Assert.True(gen.ExitCode == 0, gen.StdErr);
        Assert.Contains("CMS-signed by", gen.StdOut);
        var content = _f.Temp.Combine("content.xml");
        var v = ExternalTool.Run(ExternalTool.OpenSsl, "cms", "-verify", "-inform", "DER", "-in", output, "-CAfile", Path.Combine(pki, "root.pem"), "-purpose", "any",
            // The leaf carries Apple's critical kext-signing extension (1.2.840.113635.100.6.1.18), unknown to OpenSSL.
            "-ignore_critical", "-out", content);
        Assert.True(v.ExitCode == 0, v.StdErr);
        Assert.Contains("Verification successful", v.StdErr);
        Assert.Contains("<string>com.example.signed</string>", File.ReadAllText(content));
        Assert.Equal(0, _f.Init("11.7", "intel", "--mdm", "automated").ExitCode);
        var push = _f.K("mdm", "push", output, "--json");
        Assert.True(push.ExitCode == 0, push.StdErr);
        using var d = JsonDocument.Parse(push.StdOut);
        Assert.Contains(Team, d.RootElement.GetProperty("signer").GetString()!, StringComparison.Ordinal);
        Assert.Equal("added", d.RootElement.GetProperty("action").GetString());
    }

    [Fact]
    public void Generation_refuses_an_invalid_signature_and_bad_input_with_exit_codes_1_and_2()
    {
        var (pki, _, signed, _, _) = Kexts();
        // Without --trust-root the test PKI's chain does not reach a trusted root: the signature does not verify.
        Assert.True(File.Exists(Path.Combine(pki, "root.pem")));
        var output = _f.Temp.Combine("never.mobileconfig");
        var bad = _f.Raw("mdm", "profile", signed, "-o", output);
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("does not verify", bad.StdErr);
        Assert.False(File.Exists(output));
        var missing = _f.Raw("mdm", "profile", _f.Temp.Combine("absent.kext"), "-o", output);
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("(code 1005 unreadable-kext)", missing.StdErr);
        Assert.Equal(2, _f.Raw("mdm", "profile", signed).ExitCode);
        Assert.Equal(0, _f.Raw("mdm", "profile", "--help").ExitCode);
    }

    [Fact]
    public void Mdm_remove_and_profiles_remove_with_json_and_exit_codes()
    {
        Assert.Equal(0, _f.Init("11.7", "intel", "--mdm", "automated").ExitCode);
        var defender = Corpus.TestData("profiles/mdatp-kext-005da0f.mobileconfig");
        Assert.Equal(0, _f.K("mdm", "push", defender).ExitCode);
        var older = _f.K("mdm", "push", Corpus.TestData("profiles/mdatp-kext-3edcfd3.mobileconfig"));
        Assert.Equal(0, older.ExitCode);
        Assert.Contains("also used by com.microsoft.wdav.kext", older.StdOut);
        var list = _f.K("profiles", "list");
        Assert.Contains("MDM", list.StdOut);

        var refused = _f.K("profiles", "remove", "com.microsoft.wdav.kext");
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("(code 1405 profile-managed-by-mdm)", refused.StdErr);
        var absent = _f.K("mdm", "remove", "com.example.absent", "--json");
        Assert.Equal(1, absent.ExitCode);
        Assert.Contains("(code 1404 profile-not-installed)", absent.StdErr);

        var removed = _f.K("mdm", "remove", "com.microsoft.wdav.kext", "--json");
        Assert.Equal(0, removed.ExitCode);
        using var d = JsonDocument.Parse(removed.StdOut);
        Assert.Equal("removed", d.RootElement.GetProperty("action").GetString());
        Assert.Equal("removed", d.RootElement.GetProperty("payloads")[0].GetProperty("change").GetString());
        Assert.Equal("43C579BA-CFF0-44F6-ABF4-DCC879B4100E", d.RootElement.GetProperty("kextPolicyMdm")[0].GetProperty("payloadUuid").GetString());
        Assert.Equal(0, _f.K("mdm", "remove", "--help").ExitCode);
        Assert.Equal(2, _f.K("mdm", "remove").ExitCode);
    }

    [Fact]
    public void The_non_UUID_vendor_profile_is_pushed_through_the_CLI()
    {
        Assert.Equal(0, _f.Init("11.7", "intel", "--mdm", "automated").ExitCode);
        var r = _f.K("mdm", "push", Corpus.TestData("profiles/kandji-quirk-crowdstrike-non-uuid.mobileconfig"), "--json");
        Assert.True(r.ExitCode == 0, r.StdErr);
        using var d = JsonDocument.Parse(r.StdOut);
        Assert.Equal("3f5a1c2e-b7gs-4d1e-9a0b-6c2d8e4f1a7b", d.RootElement.GetProperty("payloadUuid").GetString());
    }
}

using KextTrust.Consent;
using KextTrust.Consent.Policy;
using KextTrust.Machine;
using KextTrust.TestSupport;
using KextTrust.Kexts.Trust;

namespace KextTrust.Consent.Tests;

/// <summary>signed / unsigned / ad-hoc × SIP on/off × approved by user / MDM / spctl / none × grandfathered or not.</summary>
public sealed class DecisionTableTests
{
    public static TheoryData<string, bool, string, bool> Cases()
    {
        var data = new TheoryData<string, bool, string, bool>();
        foreach (var sig in new[] { "signed", "unsigned", "adhoc" })
        foreach (var sip in new[] { true, false })
        foreach (var by in new[] { "user", "mdm", "spctl", "none" })
        foreach (var gf in new[] { true, false })
        {
            data.Add(sig, sip, by, gf);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Decision(string signature, bool sipOn, string approvedBy, bool grandfathered)
    {
        const string Team = "ABCDE12345";
        const string Id = "com.example.table";
        using var f = new MacFixture();
        f.Init(grandfathered ? "10.12.6" : "14.5", mdm: MdmEnrollment.Automated, csr: sipOn ? CsrConfig.None : CsrConfig.AllowUntrustedKexts | CsrConfig.AllowUnrestrictedFs);
        f.Verifier.Facts[Id] = signature switch
        {
            "signed" => FixtureVerifier.Signed(Team),
            "adhoc" => FixtureVerifier.AdHoc,
            _ => SignatureVerdicts.Unsigned,
        };
        var policyTeam = f.Verifier.Facts[Id]("").VerifiedTeamId ?? "";
        using var mac = f.Open();
        mac.Install([f.Kext(Id)]);
        if (grandfathered)
        {
            mac.Upgrade("14.5");
        }
        switch (approvedBy)
        {
            case "user" when !grandfathered:
                mac.Approve(null, Id, "admin", "admin-pw");
                break;
            case "mdm":
                var p = f.Temp.Combine("p.mobileconfig");
                File.WriteAllText(p, AtomicityAndInputTests.Profile("11111111-2222-3333-4444-555555555555",
                    $"<key>AllowedKernelExtensions</key><dict><key>{policyTeam}</key><array><string>{Id}</string></array></dict><key>AllowUserOverrides</key><true/>"));
                mac.PushProfile(p);
                break;
            case "spctl" when policyTeam.Length > 0:
                mac.Startup(true);
                mac.SpctlTeam(Team, add: true);
                mac.Startup(false);
                break;
        }
        var d = mac.Why(Id);

        var signatureOk = !sipOn || signature == "signed";
        var expectedSource = approvedBy == "mdm" ? ConsentSource.Mdm
            : approvedBy == "spctl" && policyTeam.Length > 0 ? ConsentSource.Spctl
            : grandfathered ? ConsentSource.Grandfathered
            : approvedBy == "user" ? ConsentSource.User
            : ConsentSource.None;
        Assert.Equal(expectedSource, d.ConsentSource);
        Assert.Equal(signatureOk && expectedSource != ConsentSource.None, d.Allowed);
        Assert.Equal(!signatureOk ? (signature == "adhoc" ? TrustCode.SignatureAdHoc : TrustCode.SignatureUnsigned) : expectedSource == ConsentSource.None ? TrustCode.NotApproved : null, d.Code);
        Assert.Equal(sipOn ? (signatureOk ? TrustOutcome.Passed : TrustOutcome.Failed) : TrustOutcome.Skipped,
            d.Steps.Single(s => s.Step == TrustStep.Signature).Outcome);
        var inUakl = mac.BuildUakl().Entries.Any(e => e.TeamId == policyTeam && (e.BundleId == Id || e.BundleId == ""));
        Assert.Equal(expectedSource != ConsentSource.None, inUakl);
    }
}

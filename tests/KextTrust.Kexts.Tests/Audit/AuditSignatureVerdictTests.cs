using KextTrust.Kexts.Trust;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Audit;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;
using KextTrust.Kexts.Signing;
using KextTrust.TestSupport;
using static KextTrust.Kexts.Tests.Audit.AuditFixtures;

namespace KextTrust.Kexts.Tests.Audit;

/// <summary>
/// audit --signatures judges the one verdict of <see cref="KextSignatureVerifier"/>: a kext signed for real loads; the same
/// kext with one byte flipped in its arm64e code is refused (signature-invalid, as why and kmd say) with the verifier's problem code and page.
/// </summary>
public sealed class AuditSignatureVerdictTests
{
    [Fact]
    public void A_tampered_arm64e_page_refuses_the_kext_with_the_verifiers_code_and_page()
    {
        using var tmp = new TempDir();
        using var pki = TestPki.Create(new TestPki.Options("Audit Developer", "AUDIT00001"));
        var kext = KextBundleWriter.Write(tmp.Path, Spec("com.example.SignedAudit", ["_IOLog"], Libs(IOKit)));
        using (var identity = KextSigningIdentity.Create(pki.Leaf, [pki.Intermediate, pki.Root]))
        {
            KextSigner.Sign(kext, new KextSigningOptions { Identity = identity });
        }
        var options = new KextAuditOptions
        {
            ReadSignaturePresence = true,
            VerifySignatures = new KextSignatureVerifierOptions { TrustedTestRoot = pki.Root, MaxDegreeOfParallelism = 1 },
        };
        var auditor = new KextAuditor(Catalog, options);

        var good = auditor.Audit(KextBundle.Open(kext));
        Assert.Equal(KextSignatureState.Valid, good.Signature!.State);
        Assert.False(good.Signature.LacksKextSignature);
        Assert.DoesNotContain("signature-invalid", Codes(good, MacOSRelease.Monterey, MacPlatform.AppleSilicon));

        var exe = KextBundle.Open(kext).ExecutablePath!;
        long page = KextTrust.TestSupport.CodePageTamper.FlipFirstTextByte(exe);
        var refusal = KextSignatureVerifier.Verify(kext, options.VerifySignatures).Refusal!;
        Assert.Equal("code-page-hash-mismatch", refusal.Code);

        var bad = auditor.Audit(KextBundle.Open(kext));
        Assert.Equal(KextSignatureState.Invalid, bad.Signature!.State);
        var reason = bad.VerdictFor(MacOSRelease.Monterey, MacPlatform.AppleSilicon)!.Reasons.Single(r => r.Code == TrustCode.SignatureInvalid);
        Assert.Contains($"code-page-hash-mismatch (page {page}, arm64e)", reason.Message);
    }
}

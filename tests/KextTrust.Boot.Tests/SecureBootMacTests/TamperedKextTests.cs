using System.Security.Cryptography.Pkcs;
using KextTrust.Boot.KernelManagement;
using KextTrust.Boot.Policy;
using KextTrust.Boot.SecureBoot;
using KextTrust.Consent;
using KextTrust.Consent.Policy;
using KextTrust.Formats;
using KextTrust.Formats.CodeSigning;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;
using KextTrust.Kexts.Signing;
using KextTrust.Machine;
using KextTrust.TestSupport;
using KextTrust.Kexts.Trust;

namespace KextTrust.Boot.Tests.SecureBootMacTests;

/// <summary>
/// A Developer-ID-signed kext (fat x86_64 + arm64e, with a sealed resource), signed for real under a private PKI the
/// Mac trusts, and an Apple-silicon Mac with SIP on in Reduced Security with kexts allowed. Each test copies both.
/// </summary>
public sealed class TamperFixture : IDisposable
{
    public const string Admin = "admin", Password = "pw", Team = "TAMPER0001", BundleId = "com.acme.tamper";

    private readonly TempDir _root = new("kextrust-tamper");
    private int _copies;

    public TamperFixture()
    {
        using var pki = TestPki.Create(new TestPki.Options("Acme Developer", Team));
        var parent = Directory.CreateDirectory(_root.Combine("src")).FullName;
        SignedKext = KextBundleWriter.Write(parent, new KextBundleSpec(BundleId, "1.0.0")
        {
            Libraries = new Dictionary<string, string> { ["com.apple.kpi.iokit"] = "20.0", ["com.apple.kpi.libkern"] = "20.0" },
            Slices = [new KextSliceSpec(MachOTargetArchitecture.X86_64, ["_IOLog"]), new KextSliceSpec(MachOTargetArchitecture.Arm64e, ["_IOLog"])],
        });
        var resources = Directory.CreateDirectory(Path.Combine(SignedKext, "Contents", "Resources")).FullName;
        File.WriteAllText(Path.Combine(resources, "Defaults.plist"), "<plist><dict><key>mode</key><string>normal</string></dict></plist>\n");
        using (var identity = KextSigningIdentity.Create(pki.Leaf, [pki.Intermediate, pki.Root]))
        {
            KextSigner.Sign(SignedKext, new KextSigningOptions { Identity = identity });
        }
        BaseMac = _root.Combine("base");
        using var mac = Mac.Init(BaseMac, new MachineInitOptions(MacPlatform.AppleSilicon, "14.5", Admin, Password)
        {
            TrustRootPem = pki.Root.ExportCertificatePem(),
            PasswordIterations = 1000,
        });
        mac.Startup(recovery: true);
        mac.Bputil(new BputilRequest(SecurityMode.Reduced, EnableKexts: true, EnableMdm: false, Admin, Password));
        mac.Startup(recovery: false);
        Assert.True(mac.Description.SipEnforcesKexts);
    }

    /// <summary>The signed kext (do not modify: copy it with <see cref="CopyKext"/>).</summary>
    public string SignedKext { get; }

    /// <summary>The Mac (do not modify: copy it with <see cref="CopyMac"/>).</summary>
    public string BaseMac { get; }

    public string CopyMac() => Copy(BaseMac);

    public string CopyKext()
    {
        var to = Path.Combine(Copy(null), Path.GetFileName(SignedKext));
        MachineFolder.Copy(SignedKext, to);
        return to;
    }

    private string Copy(string? from)
    {
        var to = _root.Combine("copies", Interlocked.Increment(ref _copies).ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (from is null)
        {
            Directory.CreateDirectory(to);
        }
        else
        {
            MachineFolder.Copy(from, to);
        }
        return to;
    }

    public void Dispose() => _root.Dispose();
}

/// <summary>
/// The attack: a kext signed for real, then changed in each way <c>verify</c> knows, on a Mac with SIP on. Every
/// entry point (install, approve, why, kmutil create, startup) refuses it, and each reports the one verifier's problem
/// code (and code page where there is one): the code <c>kextrust verify</c> prints for the same bundle.
/// </summary>
public sealed class TamperedKextTests(TamperFixture fixture) : IClassFixture<TamperFixture>
{
    public enum Tamper
    {
        CodePageInArm64e,
        InfoPlist,
        SealedResource,
        CmsByte,
    }

    public static TheoryData<Tamper, string> Kinds() => new()
    {
        { Tamper.CodePageInArm64e, "code-page-hash-mismatch" },
        { Tamper.InfoPlist, "info-plist-hash-mismatch" },
        { Tamper.SealedResource, "resource-changed" },
        { Tamper.CmsByte, "cms-invalid" },
    };

    /// <summary>Changes the bundle; returns the code page changed (arm64e slice), or null.</summary>
    private static int? Apply(string kext, Tamper kind)
    {
        var exe = KextBundle.Open(kext).ExecutablePath!;
        switch (kind)
        {
            case Tamper.CodePageInArm64e:
                return KextTrust.TestSupport.CodePageTamper.FlipFirstTextByte(exe, "arm64e", 0xFF);
            case Tamper.InfoPlist:
                File.AppendAllText(Path.Combine(kext, "Contents", "Info.plist"), "\n");
                return null;
            case Tamper.SealedResource:
                File.WriteAllText(Path.Combine(kext, "Contents", "Resources", "Defaults.plist"), "<plist><dict><key>mode</key><string>evil</string></dict></plist>\n");
                return null;
            case Tamper.CmsByte:
            {
                var bytes = File.ReadAllBytes(exe);
                long at;
                using (var file = MachOFile.FromBytes(bytes, exe))
                {
                    var arm = file.Slices.Single(s => s.Architecture == "arm64e");
                    var sig = EmbeddedSignature.Parse(arm.CodeSignatureData, exe);
                    var cms = new SignedCms();
                    cms.Decode(sig.Signature!.CmsBytes.Span);
                    var value = cms.SignerInfos[0].GetSignature();
                    at = arm.FileOffset + arm.CodeSignature!.Value.DataOffset + arm.CodeSignatureData.Span.IndexOf(value) + 7;
                }
                bytes[at] ^= 0x01;
                File.WriteAllBytes(exe, bytes);
                return null;
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(kind));
        }
    }

    /// <summary>What <c>kextrust verify</c> says about the bundle, with the Mac's trust root.</summary>
    private static KextSignatureRefusal VerifyRefusal(Mac mac, string kext)
    {
        var v = KextSignatureVerifier.Verify(kext, new KextSignatureVerifierOptions { TrustedTestRoot = mac.TrustRoot() });
        Assert.Equal(KextSignatureStatus.Invalid, v.Status);
        return v.Refusal!;
    }

    private static void AssertSame(string expectedCode, int? expectedPage, KextSignatureRefusal verify, string reported)
    {
        Assert.Equal(expectedCode, verify.Code);
        Assert.Equal(expectedPage, verify.Page);
        Assert.Contains(verify.ToString(), reported, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Install_does_not_stage_it_and_why_blocks_it_at_the_signature(Tamper kind, string code)
    {
        var kext = fixture.CopyKext();
        var page = Apply(kext, kind);
        using var mac = Mac.Open(fixture.CopyMac());
        var refusal = VerifyRefusal(mac, kext);

        var installed = Assert.Single(mac.Install([kext]));
        Assert.False(installed.Staged);
        Assert.False(installed.AlertShown);
        Assert.Equal(code, installed.Signature.Refusal!.Code);
        Assert.Equal(page, installed.Signature.Refusal.Page);
        Assert.False(Directory.Exists(mac.Store.PathOf(MachineLayout.StagedPathOf(installed.InstalledPath.TrimStart('/')))));

        foreach (var decision in new[] { mac.Why(TamperFixture.BundleId), mac.Why(kext) })
        {
            Assert.False(decision.Allowed);
            Assert.Equal(TrustCode.SignatureInvalid, decision.Code);
            Assert.Equal(29, decision.Steps.Single(s => s.Step == TrustStep.Signature).KMErrorCode);
            var step = decision.Steps.Single(s => s.Step == TrustStep.Signature);
            Assert.Equal(TrustOutcome.Failed, step.Outcome);
            Assert.Equal(code, step.Evidence["problem"]);
            Assert.Equal(page?.ToString(System.Globalization.CultureInfo.InvariantCulture), step.Evidence.GetValueOrDefault("page"));
            AssertSame(code, page, refusal, step.Detail);
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Approve_refuses_a_kext_changed_after_its_alert(Tamper kind, string code)
    {
        using var mac = Mac.Open(fixture.CopyMac());
        var installed = Assert.Single(mac.Install([fixture.SignedKext]));
        Assert.True(installed.AlertShown);
        Assert.True(installed.Staged);
        var onMac = mac.Store.PathOf(installed.InstalledPath.TrimStart('/'));
        var page = Apply(onMac, kind);
        var refusal = VerifyRefusal(mac, onMac);
        var before = MachineFolder.Snapshot(mac.Store.Root);

        var e = Assert.Throws<KextSignatureRefusedException>(() => mac.Approve(TamperFixture.Team, null, TamperFixture.Admin, TamperFixture.Password));

        // The code why gives the same kext (and kmd, and the audit), with the verifier's problem and page.
        Assert.Equal(TrustCode.SignatureInvalid, e.Code);
        Assert.Equal(mac.Why(TamperFixture.BundleId).Code, e.Code);
        Assert.Equal("signature-invalid", e.ErrorCode);
        Assert.Equal(ErrorKind.Refused, e.Kind);
        Assert.Equal(code, e.Refusal.Code);
        AssertSame(code, page, refusal, e.Message);
        Assert.Equal(before, MachineFolder.Snapshot(mac.Store.Root));
        Assert.DoesNotContain(mac.ReadKextPolicy().Policy, r => r.BundleId == TamperFixture.BundleId && r.Allowed);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Kmutil_create_leaves_it_out_and_startup_does_not_load_it(Tamper kind, string code)
    {
        using var mac = Mac.Open(fixture.CopyMac());
        var installed = Assert.Single(mac.Install([fixture.SignedKext]));
        mac.Approve(TamperFixture.Team, null, TamperFixture.Admin, TamperFixture.Password);
        var onMac = mac.Store.PathOf(installed.InstalledPath.TrimStart('/'));
        var page = Apply(onMac, kind);
        var refusal = VerifyRefusal(mac, onMac);

        var create = mac.KmutilCreate(TamperFixture.Admin, TamperFixture.Password);

        var decision = create.Build.DecisionFor(TamperFixture.BundleId)!;
        Assert.Equal(TrustCode.SignatureInvalid, decision.Exclusion);
        var check = decision.Checks.Single(c => c.Step == TrustStep.Signature);
        AssertSame(code, page, refusal, check.Detail);
        Assert.Empty(create.Build.AuxKc.Kexts);

        var boot = mac.Startup(recovery: false);
        Assert.Null(boot.Refusal);
        Assert.Empty(boot.Loaded);
        var excluded = Assert.Single(boot.Excluded);
        Assert.Equal(TamperFixture.BundleId, excluded.BundleId);
        Assert.Equal(TrustCode.SignatureInvalid, excluded.Reason);
        AssertSame(code, page, refusal, excluded.Detail);
    }

    [Fact]
    public void The_untampered_kext_passes_every_entry_point()
    {
        using var mac = Mac.Open(fixture.CopyMac());
        var installed = Assert.Single(mac.Install([fixture.SignedKext]));
        Assert.True(installed.Staged);
        Assert.Null(installed.Signature.Refusal);
        mac.Approve(TamperFixture.Team, null, TamperFixture.Admin, TamperFixture.Password);
        Assert.True(mac.Why(TamperFixture.BundleId).Allowed);
        var create = mac.KmutilCreate(TamperFixture.Admin, TamperFixture.Password);
        Assert.True(create.Build.DecisionFor(TamperFixture.BundleId)!.Included);
        var boot = mac.Startup(recovery: false);
        Assert.Equal([TamperFixture.BundleId], boot.Loaded.Select(k => k.BundleId));
    }
}

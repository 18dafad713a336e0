using KextTrust.Boot.KernelManagement;
using KextTrust.Boot.Policy;
using KextTrust.Boot.Tests.KernelManagement;
using KextTrust.Boot.SecureBoot;
using KextTrust.Consent;
using KextTrust.Consent.Policy;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;
using KextTrust.Kexts.Signing;
using KextTrust.Machine;
using KextTrust.TestSupport;

namespace KextTrust.Boot.Tests.SecureBootMacTests;

public sealed class SecureBootMacTests
{
    [Fact]
    public void Demo_every_step_as_expected_and_each_attack_refused_with_its_code()
    {
        using var dir = new TempDir("kextrust-demo");
        var report = Demo.Run(dir.Path);
        Assert.True(report.Succeeded, string.Join("\n", report.Steps.Where(s => !s.AsExpected).Select(s => s.Title + ": " + s.Outcome)));
        Assert.Equal(["aux-kc-rollback", "uakl-modified", "not-in-one-true-recovery"], report.Steps.Where(s => s.Code is not null).Select(s => s.Code));
    }

    [Fact]
    public void Kmutil_create_then_startup_loads_the_signed_kext_and_wrong_password_is_refused()
    {
        using var dir = new TempDir("kextrust-sbmac");
        using var pki = TestPki.Create(new TestPki.Options("Dev", "TEAM000001"));
        using var mac = Mac.Init(dir.Combine("mac"), new MachineInitOptions(MacPlatform.AppleSilicon, "14.5", "admin", "pw")
        {
            TrustRootPem = pki.Root.ExportCertificatePem(),
            PasswordIterations = 1000,
        });
        var kexts = dir.Combine("kexts");
        Directory.CreateDirectory(kexts);
        var path = KextBundleWriter.Write(kexts, new KextBundleSpec("com.acme.drv", "1.0")
        {
            Libraries = new Dictionary<string, string> { ["com.apple.kpi.iokit"] = "20.0", ["com.apple.kpi.libkern"] = "20.0" },
            Slices = [new KextSliceSpec(MachOTargetArchitecture.Arm64e, ["_IOLog"])],
        });
        using (var id = KextSigningIdentity.Create(pki.Leaf, [pki.Intermediate, pki.Root]))
        {
            KextSigner.Sign(path, new KextSigningOptions { Identity = id });
        }
        mac.Install([path]);
        mac.Startup(recovery: true);
        var wrong = Assert.Throws<SecureBootException>(() => mac.Bputil(new BputilRequest(SecurityMode.Reduced, true, false, "admin", "bad")));
        Assert.Equal(SecureBootCode.AuthenticationFailed, wrong.Code);
        mac.Bputil(new BputilRequest(SecurityMode.Reduced, true, false, "admin", "pw"));
        mac.Startup(recovery: false);
        mac.Approve("TEAM000001", null, "admin", "pw");
        var created = mac.KmutilCreate("admin", "pw");
        Assert.Equal(["com.acme.drv"], created.Build.IncludedBundleIds);
        Assert.Null(mac.LastStartup()?.Loaded.FirstOrDefault(k => k.BundleId == "com.acme.drv"));
        var boot = mac.Startup(recovery: false);
        Assert.Null(boot.Refusal);
        Assert.Contains(boot.Loaded, k => k.BundleId == "com.acme.drv");
        var fromMacOS = Assert.Throws<SecureBootException>(() => mac.Bputil(new BputilRequest(SecurityMode.Permissive, true, false, "admin", "pw")));
        Assert.Equal(SecureBootCode.NotInOneTrueRecovery, fromMacOS.Code);
    }
}

public sealed class KmdParallelSignatureTests
{
    [Fact]
    public void Kexts_verified_in_parallel_give_the_same_AuxKC_receipt_and_decisions_as_one_at_a_time()
    {
        using var f = new KextFixtures("kextrust-kmdpar");
        using var pki = TestPki.Create(new TestPki.Options("Dev", KextFixtures.Acme));
        using var stranger = TestPki.Create(new TestPki.Options("Stranger", KextFixtures.Other));
        using var id = KextSigningIdentity.Create(pki.Leaf, [pki.Intermediate, pki.Root]);
        using var strangerId = KextSigningIdentity.Create(stranger.Leaf, [stranger.Intermediate, stranger.Root]);
        string Write(string bundleId, KextSigningIdentity? signer, string team)
        {
            var path = KextBundleWriter.Write(f.Extensions, new KextBundleSpec(bundleId, "1.0.0")
            {
                Libraries = KextFixtures.Kpis,
                Slices = [KextFixtures.Arm64e("_IOLog")],
            });
            if (signer is not null)
            {
                KextSigner.Sign(path, new KextSigningOptions { Identity = signer });
            }
            f.Approve(new UaklEntry(team, bundleId, ConsentSource.User, null));
            return path;
        }
        for (var i = 0; i < 9; i++)
        {
            Write($"com.acme.k{i}", id, KextFixtures.Acme);
        }
        Write("com.acme.unsigned", null, KextFixtures.Acme);
        Write("com.other.untrusted", strangerId, KextFixtures.Other);
        var tampered = Write("com.acme.tampered", id, KextFixtures.Acme);
        File.AppendAllText(Path.Combine(tampered, "Contents", "Info.plist"), "\n");

        var options = new KextSignatureVerifierOptions { TrustedTestRoot = pki.Root };
        AuxKcBuildResult Build(bool parallel)
        {
            var request = f.Request();
            return Kmd.BuildAuxKc(request with { VerifySignature = Mac.VerifySignatures(request.Candidates, options, parallel) });
        }
        var sequential = Build(parallel: false);
        var parallel = Build(parallel: true);

        Assert.Equal(9, sequential.IncludedBundleIds.Count());
        Assert.Equal(sequential.IncludedBundleIds, parallel.IncludedBundleIds);
        Assert.True(sequential.AuxKc.Bytes.Span.SequenceEqual(parallel.AuxKc.Bytes.Span), "AuxKC bytes differ");
        Assert.Equal(sequential.ReceiptBytes(), parallel.ReceiptBytes());
        Assert.Equal(sequential.Decisions.Select(d => (d.BundleId, d.Included, d.Exclusion, d.ExclusionDetail, d.CdHash)),
            parallel.Decisions.Select(d => (d.BundleId, d.Included, d.Exclusion, d.ExclusionDetail, d.CdHash)));
        Assert.Equal(3, parallel.Decisions.Count(d => !d.Included));
    }
}

using KextTrust.Boot.KernelManagement;
using KextTrust.Consent.Policy;
using KextTrust.Boot.Kernel;
using KextTrust.Boot.Policy;
using KextTrust.Boot.Receipt;
using KextTrust.Boot.Startup;
using KextTrust.Boot.Tests.KernelManagement;
using KextTrust.Formats.Image4;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;
using KextTrust.Kexts.Trust;

namespace KextTrust.Boot.Tests.Startup;

public sealed class IbootTests
{
    private static void AssertRefusedWithoutKexts(BootResult result, TrustCode code, BootTarget target = BootTarget.MacOS)
    {
        Assert.Equal(code, result.Refusal);
        Assert.Equal(target, result.Target);
        Assert.False(result.ThirdPartyKextsLoaded);
        Assert.Null(result.AuxKc);
        Assert.Null(result.Receipt);
        Assert.Equal(target == BootTarget.MacOS ? AuxKcStatus.Refused : AuxKcStatus.NotEnabled, result.AuxKcStatus);
        var failed = result.Trace.Single(c => c.Outcome == TrustOutcome.Failed && c.Code == code);
        Assert.False(string.IsNullOrWhiteSpace(failed.Detail));
    }

    [Fact]
    public void AGoodBootLoadsTheAuxKcAndTheKernelLoadsItsKextsInDependencyOrder()
    {
        using var mac = new MacWithKexts();
        var files = mac.Rebuild();
        var boot = mac.Boot(files);

        Assert.Null(boot.Refusal);
        Assert.Equal(BootTarget.MacOS, boot.Target);
        Assert.Equal(AuxKcStatus.Loaded, boot.AuxKcStatus);
        Assert.Equal(SecurityMode.Reduced, boot.Policy!.SecurityMode);
        Assert.All(boot.Trace, c => Assert.Equal(TrustOutcome.Passed, c.Outcome));
        Assert.Equal([TrustStep.LocalPolicyFormat, TrustStep.LocalPolicySignature, TrustStep.LocalPolicyEcid, TrustStep.LocalPolicyNonce,
            TrustStep.LocalPolicyConsistency, TrustStep.ThirdPartyKexts, TrustStep.AuxKcImage4Format, TrustStep.AuxKcImage4Signature,
            TrustStep.AuxKcImage4Ecid, TrustStep.AuxKcImage4Current, TrustStep.AuxKcImage4Digest, TrustStep.AuxKcBytes, TrustStep.AuxKcFormat,
            TrustStep.Receipt, TrustStep.UserApprovedKextList], boot.Trace.Select(c => c.Step));
        Assert.Equal(files.Build.IncludedBundleIds, boot.AuxKc!.Kexts.Select(k => k.BundleId));
        Assert.Equal(files.Build.Receipt, boot.Receipt);

        var session = Guid.Parse("0f0e0d0c-0b0a-0908-0706-050403020100");
        var load = KernelLinker.LoadAuxKc(boot.AuxKc, boot.Receipt!, KextFixtures.Catalog, MacOSRelease.Sequoia15_4, KextArchitecture.Arm64, session,
            new DateTimeOffset(2025, 3, 4, 5, 6, 7, TimeSpan.FromHours(2)));
        Assert.Empty(load.NotLoaded);
        Assert.Equal(["com.acme.driver", "com.acme.family", "com.acme.client"], load.Loaded.Select(k => k.BundleId));
        Assert.Equal([100, 101, 102], load.Loaded.Select(k => k.LoadTag));
        Assert.Equal(["com.acme.family"], load.Loaded.Single(k => k.BundleId == "com.acme.client").Dependencies.ToArray());
        var history = load.LoadHistory.Single(h => h.BundleId == "com.acme.client");
        Assert.Equal(new KextLoadHistoryRecord("/Library/Extensions/client.kext", KextFixtures.Acme, "com.acme.client", "0F0E0D0C-0B0A-0908-0706-050403020100",
            "2025-03-04 03:06:07", "2025-03-04 03:06:07", KextLoadHistoryRecord.LoadedFromAuxKc, KextFixtures.Signed("", "com.acme.client")("").PrimaryCdHash!), history);

        var pay = ApplePay.Status(boot);
        Assert.False(pay.Available);
        Assert.Equal(["com.acme.driver", "com.acme.family", "com.acme.client"], pay.InterferingKexts.Select(k => k.BundleId));
    }

    [Fact]
    public void AnOlderSepSignedAuxKcWithTheNewerLocalPolicyIsARollback()
    {
        using var mac = new MacWithKexts();
        var older = mac.Rebuild();
        mac.Kexts.AddSigned("com.acme.extra", ["_IOLog"]);
        var newer = mac.Rebuild();
        Assert.True(mac.Boot(newer).ThirdPartyKextsLoaded);

        var rollback = newer with { AuxKcImage4 = older.AuxKcImage4, AuxKc = older.AuxKc, Receipt = older.Receipt };
        AssertRefusedWithoutKexts(mac.Boot(rollback), TrustCode.AuxKcRollback);
        // The older Image4 alone, even with the newer receipt: still the rollback check that refuses.
        AssertRefusedWithoutKexts(mac.Boot(newer with { AuxKcImage4 = older.AuxKcImage4, AuxKc = older.AuxKc }), TrustCode.AuxKcRollback);
        // The newer AuxKC with the older receipt: auxr.
        AssertRefusedWithoutKexts(mac.Boot(newer with { Receipt = older.Receipt }), TrustCode.ReceiptModified);
    }

    [Fact]
    public void TheOldLocalPolicyIsAReplayAfterARebuild()
    {
        using var mac = new MacWithKexts();
        var older = mac.Rebuild();
        var newer = mac.Rebuild();
        Assert.True(mac.Boot(newer).ThirdPartyKextsLoaded);
        AssertRefusedWithoutKexts(mac.Boot(older), TrustCode.LocalPolicyReplayed, BootTarget.RecoveryOS);
        AssertRefusedWithoutKexts(mac.Boot(newer with { LocalPolicy = older.LocalPolicy }), TrustCode.LocalPolicyReplayed, BootTarget.RecoveryOS);
    }

    [Fact]
    public void ALocalPolicyFromAnotherMacsSecureEnclaveIsRefused()
    {
        using var mac = new MacWithKexts();
        using var other = new MacWithKexts(0x0A0B_0C0D_0E0F_1011);
        var files = mac.Rebuild();
        var foreign = other.Rebuild();
        AssertRefusedWithoutKexts(mac.Boot(files with { LocalPolicy = foreign.LocalPolicy }), TrustCode.LocalPolicyNotSignedByThisMac, BootTarget.RecoveryOS);
        // Another Mac's AuxKC Image4 under this Mac's policy.
        AssertRefusedWithoutKexts(mac.Boot(files with { AuxKcImage4 = foreign.AuxKcImage4, AuxKc = foreign.AuxKc }), TrustCode.AuxKcImage4NotSignedByThisMac);
    }

    [Fact]
    public void OneByteChangedInTheAuxKcImage4OrReceiptIsRefusedWithItsCode()
    {
        using var mac = new MacWithKexts();
        var files = mac.Rebuild();
        static byte[] Flip(byte[] b, int at)
        {
            var c = (byte[])b.Clone();
            c[at] ^= 0x01;
            return c;
        }
        AssertRefusedWithoutKexts(mac.Boot(files with { AuxKc = Flip(files.AuxKc, files.AuxKc.Length / 2) }), TrustCode.AuxKcModified);
        AssertRefusedWithoutKexts(mac.Boot(files with { Receipt = Flip(files.Receipt, files.Receipt.Length / 2) }), TrustCode.ReceiptModified);

        // A byte of the payload inside the Image4: the signed DGST no longer matches.
        var payloadAt = files.AuxKcImage4.AsSpan().IndexOf(files.AuxKc) + files.AuxKc.Length / 2;
        AssertRefusedWithoutKexts(mac.Boot(files with { AuxKcImage4 = Flip(files.AuxKcImage4, payloadAt) }), TrustCode.AuxKcImage4PayloadModified);

        // A byte of the signed manifest body (inside the DGST value): the SEP signature no longer verifies.
        var dgst = files.Build.AuxKc.Bytes.Length > 0 ? new Im4Payload(AuxKcImage4.PayloadType, "AuxiliaryKernelExtensions", files.AuxKc).ComputeDigest().ToArray() : [];
        var dgstAt = files.AuxKcImage4.AsSpan().IndexOf(dgst);
        Assert.True(dgstAt > payloadAt);
        AssertRefusedWithoutKexts(mac.Boot(files with { AuxKcImage4 = Flip(files.AuxKcImage4, dgstAt + 3) }), TrustCode.AuxKcImage4NotSignedByThisMac);

        // The Image4's DER structure: a length byte.
        var malformed = mac.Boot(files with { AuxKcImage4 = Flip(files.AuxKcImage4, 1) });
        Assert.Contains(malformed.Refusal, new TrustCode?[] { TrustCode.AuxKcImage4Malformed });
        Assert.False(malformed.ThirdPartyKextsLoaded);
    }

    [Fact]
    public void EveryByteOfTheLocalPolicyMatters()
    {
        using var mac = new MacWithKexts();
        var files = mac.Rebuild();
        var inputs = mac.Inputs(files);
        for (var i = 0; i < files.LocalPolicy.Length; i++)
        {
            var changed = (byte[])files.LocalPolicy.Clone();
            changed[i] ^= 0x20;
            var result = Iboot.Boot(inputs with { LocalPolicy = changed });
            Assert.Equal(BootTarget.RecoveryOS, result.Target);
            Assert.False(result.ThirdPartyKextsLoaded);
            Assert.Contains(result.Refusal, new TrustCode?[]
            {
                TrustCode.LocalPolicyMalformed, TrustCode.LocalPolicyNotSignedByThisMac,
            });
        }
    }

    [Fact]
    public void AKextAddedToTheAuxKcByHandWithoutTheSecureEnclaveIsRefused()
    {
        using var mac = new MacWithKexts();
        var files = mac.Rebuild();
        // The attacker approves and rebuilds with their kext outside kmd: a valid AuxKC and receipt, but nothing the SEP signed.
        mac.Kexts.Add(new KextBundleSpec("com.attacker.rootkit", "1.0") { Libraries = KextFixtures.Kpis, Slices = [KextFixtures.Arm64e("_IOLog")] },
            KextFixtures.Signed("ATTACKER01", "com.attacker.rootkit"));
        var tampered = Kmd.BuildAuxKc(mac.Kexts.Request());
        Assert.Contains("com.attacker.rootkit", tampered.IncludedBundleIds);
        var withKext = files with { AuxKc = tampered.AuxKc.Bytes.ToArray(), Receipt = tampered.ReceiptBytes() };
        AssertRefusedWithoutKexts(mac.Boot(withKext), TrustCode.AuxKcModified);
        // Also re-wrapping the new AuxKC into the old Image4's manifest.
        var old = Img4.FromBytes(files.AuxKcImage4);
        var rewrapped = new Img4(new Im4Payload(AuxKcImage4.PayloadType, old.Payload.Description, tampered.AuxKc.Bytes.Span), old.Manifest).Encode();
        AssertRefusedWithoutKexts(mac.Boot(withKext with { AuxKcImage4 = rewrapped }), TrustCode.AuxKcImage4PayloadModified);
    }

    [Fact]
    public void TheUaklIsDerivedOnlyWhenIbootReachesItsStep()
    {
        using var mac = new MacWithKexts();
        var files = mac.Rebuild();
        var reads = 0;
        var inputs = mac.Inputs(files) with
        {
            Uakl = () =>
            {
                reads++;
                return new UaklInput(files.Uakl);
            },
        };
        var receipt = (byte[])files.Receipt.Clone();
        receipt[^1] ^= 1;
        // Refused before the UAKL step (a modified receipt): the list is never derived.
        AssertRefusedWithoutKexts(Iboot.Boot(inputs with { Receipt = receipt }), TrustCode.ReceiptModified);
        Assert.Equal(0, reads);
        // A good startup reads it once, at iBoot's last step.
        var loaded = Iboot.Boot(inputs);
        Assert.True(loaded.ThirdPartyKextsLoaded);
        Assert.Equal(TrustStep.UserApprovedKextList, loaded.Trace[^1].Step);
        Assert.Equal(1, reads);
    }

    [Fact]
    public void TheUaklIsOneOfIbootsStepsAnEditedOrMissingListLoadsNoKexts()
    {
        using var mac = new MacWithKexts();
        var files = mac.Rebuild();
        var inputs = mac.Inputs(files);
        // One more entry, as an edit by hand would add: no longer the list auxp names.
        var uakl = UserApprovedKextList.Parse(files.Uakl, "UAKL");
        var edited = UserApprovedKextList.Create([.. uakl.Entries, new UaklEntry("EVILTEAM01", "", ConsentSource.User, null)]).ToBytes();
        var refused = Iboot.Boot(inputs with { Uakl = () => new UaklInput(edited, "edited for the test") });
        AssertRefusedWithoutKexts(refused, TrustCode.UaklModified);
        var check = refused.Failures.Single();
        Assert.Equal(TrustStep.UserApprovedKextList, check.Step);
        Assert.Contains($"(SHA-384 {Sha384Digest.Compute(edited)}) is not the one the LocalPolicy names ({files.Policy.AuxKextPolicyHash})", check.Detail);
        Assert.Contains("edited for the test", check.Detail);
        // Every check before it passed: the AuxKC itself is good.
        Assert.All(refused.Trace.SkipLast(1), c => Assert.Equal(TrustOutcome.Passed, c.Outcome));
        AssertRefusedWithoutKexts(Iboot.Boot(inputs with { Uakl = () => null }), TrustCode.UaklMissing);
        Assert.Equal(TrustOutcome.Passed, mac.Boot(files).Trace[^1].Outcome);
    }

    [Fact]
    public void MissingFilesAndGarbageNeverThrow()
    {
        using var mac = new MacWithKexts();
        var files = mac.Rebuild();
        var inputs = mac.Inputs(files);
        AssertRefusedWithoutKexts(Iboot.Boot(inputs with { AuxKcImage4 = null }), TrustCode.AuxKcImage4Missing);
        AssertRefusedWithoutKexts(Iboot.Boot(inputs with { Receipt = null }), TrustCode.ReceiptMissing);
        AssertRefusedWithoutKexts(Iboot.Boot(inputs with { AuxKcImage4 = new byte[] { 0x30, 0x03, 0x02, 0x01, 0x00 } }), TrustCode.AuxKcImage4Malformed);
        AssertRefusedWithoutKexts(Iboot.Boot(inputs with { LocalPolicy = Array.Empty<byte>() }), TrustCode.LocalPolicyMalformed, BootTarget.RecoveryOS);
        AssertRefusedWithoutKexts(Iboot.Boot(inputs with { LocalPolicy = files.AuxKcImage4 }), TrustCode.LocalPolicyMalformed, BootTarget.RecoveryOS);
        // Without the AuxKC file iBoot uses the signed payload itself.
        Assert.True(Iboot.Boot(inputs with { AuxKc = null }).ThirdPartyKextsLoaded);
        var random = new Random(6);
        for (var i = 0; i < 200; i++)
        {
            var image4 = (byte[])files.AuxKcImage4.Clone();
            image4[random.Next(image4.Length)] = (byte)random.Next(256);
            var truncated = files.AuxKcImage4.AsSpan(0, random.Next(files.AuxKcImage4.Length)).ToArray();
            foreach (var candidate in new[] { image4, truncated })
            {
                var result = Iboot.Boot(inputs with { AuxKcImage4 = candidate });
                Assert.Equal(candidate.AsSpan().SequenceEqual(files.AuxKcImage4), result.ThirdPartyKextsLoaded);
            }
        }
    }

    [Fact]
    public void FullSecurityAndPoliciesWithoutAnAuxKcLoadNoKexts()
    {
        using var mac = new MacWithKexts();
        var files = mac.Rebuild();
        var sep = mac.Mac.SecureEnclave;
        mac.Mac.RotateNonce();
        var full = LocalPolicy.CreateFullSecurity(sep, MacWithKexts.Vuid).Sign(sep).Encode();
        var boot = mac.Boot(files with { LocalPolicy = full });
        Assert.Null(boot.Refusal);
        Assert.Equal(BootTarget.MacOS, boot.Target);
        Assert.Equal(AuxKcStatus.NotEnabled, boot.AuxKcStatus);
        Assert.True(ApplePay.Status(boot).Available);

        mac.Mac.RotateNonce();
        var enabledNotBuilt = (LocalPolicy.CreateFullSecurity(sep, MacWithKexts.Vuid) with { ReducedSecurity = true, ThirdPartyKextsEnabled = true }).Sign(sep).Encode();
        Assert.Equal(AuxKcStatus.NotBuilt, mac.Boot(files with { LocalPolicy = enabledNotBuilt }).AuxKcStatus);
    }

    [Fact]
    public void UpdatingAPolicyThatCannotHoldAnAuxKcLeavesTheNonceAlone()
    {
        using var mac = new MacWithKexts();
        var sep = mac.Mac.SecureEnclave;
        var build = Kmd.BuildAuxKc(mac.Kexts.Request());
        var signed = Kmd.SignAuxKc(build, sep);
        var before = sep.CurrentLocalPolicyNonceHash;
        var full = LocalPolicy.CreateFullSecurity(sep, MacWithKexts.Vuid);
        var e = Assert.Throws<LocalPolicyException>(() => Kmd.UpdateLocalPolicy(full, sep, signed));
        Assert.Contains(e.Failures, f => f.Code == TrustCode.LocalPolicyInconsistent);
        Assert.Equal(before, sep.CurrentLocalPolicyNonceHash);

        var update = Kmd.UpdateLocalPolicy(mac.Policy, sep, signed);
        // Signed for the new nonce, which is not installed yet: the old policy still verifies, the new one not yet.
        Assert.Equal(before, sep.CurrentLocalPolicyNonceHash);
        Assert.True(LocalPolicyVerifier.Verify(Im4Manifest.FromBytes(mac.PolicyBytes), sep).Valid);
        Assert.False(LocalPolicyVerifier.Verify(update.Manifest, sep).Valid);
        Assert.Equal(update.Nonce.Hash, mac.Mac.Install(update.Nonce));
        Assert.NotEqual(before, sep.CurrentLocalPolicyNonceHash);
        Assert.Equal(signed.AuxKcImage4Hash, update.Policy.AuxKcImage4Hash);
        Assert.Equal(build.Receipt.ComputeHash(), update.Policy.AuxKcReceiptHash);
        Assert.Equal(mac.Kexts.Uakl.Hash, update.Policy.AuxKextPolicyHash);
        Assert.True(LocalPolicyVerifier.Verify(update.Manifest, sep).Valid);
        Assert.False(LocalPolicyVerifier.Verify(Im4Manifest.FromBytes(mac.PolicyBytes), sep).Valid);
    }
}

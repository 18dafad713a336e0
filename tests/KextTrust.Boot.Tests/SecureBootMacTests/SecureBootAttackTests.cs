using KextTrust.Boot.KernelManagement;
using KextTrust.Boot.Policy;
using KextTrust.Boot.SecureBoot;
using KextTrust.Consent;
using KextTrust.Machine;
using static KextTrust.Boot.Tests.SecureBootMacTests.SecureBootMacFixture;
using KextTrust.Kexts.Trust;

namespace KextTrust.Boot.Tests.SecureBootMacTests;

/// <summary>
/// The attacks on a whole Mac in its last good state: each is refused at the next startup with its exact code
/// (no third-party kext loaded), and the refused startup changes nothing but its log and boot session.
/// </summary>
public sealed class SecureBootAttackTests(SecureBootMacFixture f) : IClassFixture<SecureBootMacFixture>
{
    private static readonly string AuxKcFile = SecureBootLayout.AuxKc(Platform), Image4File = SecureBootLayout.AuxKcImage4(Platform),
        ReceiptFile = SecureBootLayout.Receipt(Platform);

    public static TheoryData<string> StartupAttacks =>
    [
        "rollback to the older SEP-signed AuxKC", "replay of the older LocalPolicy", "one byte of the AuxKC", "one byte of the AuxKC Image4",
        "one byte of the receipt", "one byte of the LocalPolicy", "AuxKC with one more kext", "AuxKC, Image4 and receipt of an unauthorized rebuild",
        "KextPolicy row added with sqlite", "LocalPolicy of another Mac",
    ];

    /// <summary>Does the attack on the Mac in <paramref name="dir"/>; returns the refusal code the next startup must give.</summary>
    private string Attack(string name, string dir)
    {
        void Write(string relative, byte[] bytes) => File.WriteAllBytes(Path.Combine(dir, relative), bytes);
        byte[] Read(string relative) => File.ReadAllBytes(Path.Combine(dir, relative));
        var driverId = System.Text.Encoding.ASCII.GetBytes(Driver);
        switch (name)
        {
            case "rollback to the older SEP-signed AuxKC":
                Assert.NotEqual(f.Older[Image4File], Read(Image4File));
                foreach (var file in new[] { AuxKcFile, Image4File, ReceiptFile })
                {
                    Write(file, f.Older[file]);
                }
                return nameof(TrustCode.AuxKcRollback);
            case "replay of the older LocalPolicy":
                Write(SecureBootLayout.LocalPolicy, f.Older[SecureBootLayout.LocalPolicy]);
                return nameof(TrustCode.LocalPolicyReplayed);
            case "one byte of the AuxKC":
                FlipByteAt(dir, AuxKcFile, driverId);
                return nameof(TrustCode.AuxKcModified);
            case "one byte of the AuxKC Image4":
                FlipByteAt(dir, Image4File, driverId);
                return nameof(TrustCode.AuxKcImage4PayloadModified);
            case "one byte of the receipt":
                FlipByteAt(dir, ReceiptFile, driverId);
                return nameof(TrustCode.ReceiptModified);
            case "one byte of the LocalPolicy":
                using (var mac = Mac.Open(dir))
                {
                    FlipByteAt(dir, SecureBootLayout.LocalPolicy, Mac.VolumeGroup(mac.Description).ToByteArray(bigEndian: true));
                }
                return nameof(TrustCode.LocalPolicyNotSignedByThisMac);
            case "AuxKC with one more kext":
                Write(AuxKcFile, Read(Path.Combine(UnauthorizedRebuild(), AuxKcFile)));
                return nameof(TrustCode.AuxKcModified);
            case "AuxKC, Image4 and receipt of an unauthorized rebuild":
                var rebuilt = UnauthorizedRebuild();
                foreach (var file in new[] { AuxKcFile, Image4File, ReceiptFile })
                {
                    Write(file, Read(Path.Combine(rebuilt, file)));
                }
                return nameof(TrustCode.AuxKcRollback);
            case "KextPolicy row added with sqlite":
                AddPolicyRowByHand(dir, "EVILTEAM01", "");
                return "UaklModified";
            case "LocalPolicy of another Mac":
                Write(SecureBootLayout.LocalPolicy, f.OtherMacPolicy);
                return nameof(TrustCode.LocalPolicyNotSignedByThisMac);
            default:
                throw new ArgumentOutOfRangeException(nameof(name), name, null);
        }
    }

    /// <summary>
    /// The same Mac rebuilt by kmd elsewhere (a copy of its folder, so signed by the same Secure Enclave), with
    /// <see cref="SecureBootMacFixture.Second"/> added: files whose LocalPolicy and nonce never reach this Mac.
    /// </summary>
    private string UnauthorizedRebuild()
    {
        var copy = f.Copy();
        using var mac = Mac.Open(copy);
        Assert.Equal([Driver, Second], mac.KmutilCreate(Admin, Password).Build.IncludedBundleIds.Order());
        return copy;
    }

    [Theory]
    [MemberData(nameof(StartupAttacks))]
    public void Startup_refuses_the_attack_with_its_code_and_changes_nothing_else(string attack)
    {
        var dir = f.Copy();
        var expected = Attack(attack, dir);
        var before = State(dir);
        var boot = Restart(dir);
        Assert.NotNull(boot.Refusal);
        Assert.Equal(expected, boot.Refusal.Code.ToString());
        Assert.Equal(TrustOutcome.Failed, boot.Refusal.Outcome);
        Assert.False(boot.ThirdPartyKextsLoaded);
        Assert.Empty(boot.Loaded);
        Assert.Equal(boot.Refusal, boot.Trace.First(c => c.Outcome == TrustOutcome.Failed));
        Assert.Equal(before, State(dir));
        // The good state loads its kext: the refusal is the attack's doing, not the fixture's.
        Assert.Equal([Driver], LoadedIds(f.GoodBoot));
    }

    [Fact]
    public void A_kext_bundle_copied_by_hand_into_the_AuxKC_folder_and_Library_Extensions_is_never_loaded()
    {
        var dir = f.Copy();
        foreach (var folder in new[] { SecureBootLayout.AuxKcFolder(Platform), MachineLayout.LibraryExtensions })
        {
            KextTrust.TestSupport.MachineFolder.Copy(f.Kext(Unsigned), Path.Combine(dir, folder, Path.GetFileName(f.Kext(Unsigned))));
        }
        var before = State(dir, withDatabase: false);
        var boot = Restart(dir);
        // iBoot reads only the signed AuxKC: the good state boots as before and the bundle is neither loaded nor recorded.
        Assert.Null(boot.Refusal);
        Assert.Equal(LoadedIds(f.GoodBoot), LoadedIds(boot));
        Assert.DoesNotContain(boot.NotLoaded, n => n.BundleId == Unsigned);
        Assert.Equal(before, State(dir, withDatabase: false));
        using var mac = Mac.Open(dir);
        Assert.DoesNotContain(mac.ReadKextPolicy().History, h => h.BundleId == Unsigned);
    }

    public static TheoryData<string, TrustCode> KmdRefusals => new()
    {
        { Unsigned, TrustCode.SignatureUnsigned },
        { Banned, TrustCode.ExcludeListed },
    };

    [Theory]
    [MemberData(nameof(KmdRefusals))]
    public void Kmd_leaves_out_an_approved_unsigned_kext_with_SIP_on_and_a_banned_kext(string bundleId, TrustCode expected)
    {
        var dir = f.Copy();
        using (var mac = Mac.Open(dir))
        {
            Assert.Equal(CsrConfig.None, mac.Description.CsrActiveConfig);
            mac.Install([f.Kext(bundleId)]);
        }
        // Approved: the banned kext by its team's approval; the unsigned one (no team) by a row added by hand.
        if (bundleId == Unsigned)
        {
            AddPolicyRowByHand(dir, "", Unsigned);
        }
        using (var mac = Mac.Open(dir))
        {
            Assert.Contains(mac.BuildUakl().Entries, e => e.TeamId == (bundleId == Unsigned ? "" : Team));
            var created = mac.KmutilCreate(Admin, Password);
            Assert.Equal(expected, created.Build.DecisionFor(bundleId)?.Exclusion);
            Assert.Equal([Driver, Second], created.Build.IncludedBundleIds.Order());
            Assert.Contains(mac.ReadReceipt()!.Excluded, x => x.BundleId == bundleId && x.Reason == expected);
            // The same fact has the same code in why.
            Assert.Equal(expected, mac.Why(bundleId).Code);
            Assert.DoesNotContain(AuxiliaryKernelCollection.Read(File.ReadAllBytes(mac.Store.PathOf(AuxKcFile)), mac.Store.PathOf(AuxKcFile)).Kexts, k => k.BundleId == bundleId);
        }
        var boot = Restart(dir);
        Assert.Null(boot.Refusal);
        Assert.Equal([Driver, Second], LoadedIds(boot).Order());
    }

    public static TheoryData<string> SecurityChanges => ["bputil from macOS", "csrutil from macOS", "bputil with a wrong password", "csrutil with a wrong password"];

    [Theory]
    [MemberData(nameof(SecurityChanges))]
    public void Lowering_security_from_macOS_or_with_a_wrong_password_is_refused_and_changes_nothing(string attempt)
    {
        var dir = f.Copy();
        var inRecovery = attempt.Contains("password", StringComparison.Ordinal);
        if (inRecovery)
        {
            using var mac = Mac.Open(dir);
            mac.Startup(recovery: true);
        }
        var before = State(dir);
        var password = inRecovery ? "wrong" : Password;
        using (var mac = Mac.Open(dir))
        {
            var e = Assert.Throws<SecureBootException>(() =>
            {
                if (attempt.StartsWith("bputil", StringComparison.Ordinal))
                {
                    mac.Bputil(new BputilRequest(SecurityMode.Permissive, EnableKexts: true, EnableMdm: false, Admin, password));
                }
                else
                {
                    mac.Csrutil(enable: false, withoutKext: false, Admin, password);
                }
            });
            Assert.Equal(inRecovery ? SecureBootCode.AuthenticationFailed : SecureBootCode.NotInOneTrueRecovery, e.Code);
        }
        Assert.Equal(before, State(dir));
        Assert.Equal(LoadedIds(f.GoodBoot), LoadedIds(Restart(dir)));
    }
}

using KextTrust.Machine;
using System.Security.Cryptography;
using KextTrust.Boot.Policy;
using KextTrust.Boot.Startup;
using KextTrust.Boot.Tests.Enclave;
using KextTrust.Formats.Image4;
using KextTrust.Kexts.Trust;
using KextTrust.TestSupport;

namespace KextTrust.Boot.Tests.Policies;

public sealed class LocalPolicyTests
{
    private static readonly Guid Vuid = Guid.Parse("0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9");

    private static Sha384Digest Hash(string s) => Sha384Digest.Compute(System.Text.Encoding.UTF8.GetBytes(s));

    private static LocalPolicy EveryField(Mac mac) => LocalPolicy.CreateFullSecurity(mac.SecureEnclave, Vuid) with
    {
        ReducedSecurity = true,
        PermissiveSecurity = true,
        ThirdPartyKextsEnabled = true,
        MdmManagesKexts = true,
        SipConfig = CsrConfig.AllowUntrustedKexts | CsrConfig.AllowUnapprovedKexts | CsrConfig.AllowResearchGuests,
        AuxKextPolicyHash = Hash("uakl"),
        AuxKcImage4Hash = Hash("auxkc im4m"),
        AuxKcReceiptHash = Hash("receipt"),
        KekGroupUuid = Guid.Parse("41196911-e654-4d2c-9a1b-0123456789ab"),
        RemotePolicyNonceHash = Hash("remote nonce"),
        NextStageImage4Hash = Hash("macOS im4m"),
        CustomKcImage4Hash = Hash("custom kc"),
        DepMdmControl = true,
        SignedSystemVolumeDisabled = true,
        KernelCtrrDisabled = true,
        BootArgsFilteringDisabled = true,
    };

    private static LocalPolicy ReducedWithKexts(Mac mac) =>
        LocalPolicy.CreateFullSecurity(mac.SecureEnclave, Vuid) with { ReducedSecurity = true, ThirdPartyKextsEnabled = true };

    [Fact]
    public void Every_field_round_trips_through_a_signed_DER_manifest()
    {
        using var mac = new Mac();
        var policy = EveryField(mac);
        Assert.Empty(policy.CheckConsistency());
        var der = policy.Sign(mac.SecureEnclave).Encode();

        var back = LocalPolicy.FromBytes(der, "LocalPolicy.img4");
        Assert.Equal(policy, back);
        Assert.Equal(Mac.DefaultEcid, back.Ecid);
        Assert.Equal(mac.SecureEnclave.CurrentLocalPolicyNonceHash, back.LocalPolicyNonceHash);
        Assert.Equal(Vuid, back.VolumeGroupUuid);
        Assert.True(back.ReducedSecurity && back.PermissiveSecurity && back.ThirdPartyKextsEnabled && back.MdmManagesKexts);
        Assert.Equal((CsrConfig)0x1201, back.SipConfig);
        Assert.Equal(Hash("uakl"), back.AuxKextPolicyHash);
        Assert.Equal(Hash("auxkc im4m"), back.AuxKcImage4Hash);
        Assert.Equal(Hash("receipt"), back.AuxKcReceiptHash);
        Assert.Equal(SecurityMode.Permissive, back.SecurityMode);
        Assert.Equal(Guid.Parse("41196911-e654-4d2c-9a1b-0123456789ab"), back.KekGroupUuid);
        Assert.Equal(Hash("macOS im4m"), back.NextStageImage4Hash);
        Assert.True(back.DepMdmControl && back.SignedSystemVolumeDisabled && back.KernelCtrrDisabled && back.BootArgsFilteringDisabled);

        var verification = LocalPolicyVerifier.Verify(Im4Manifest.FromBytes(der), mac.SecureEnclave);
        Assert.True(verification.Valid, string.Join("; ", verification.Failures));
        Assert.Equal(policy, verification.Policy);
    }

    [Fact]
    public void Properties_use_the_spec_types_and_lengths()
    {
        using var mac = new Mac();
        var manp = EveryField(mac).ToManifestProperties();
        Assert.Equal(new Im4Integer(Mac.DefaultEcid), manp.Find("ECID"));
        Assert.Equal(new Im4Boolean(true), manp.Find("smb2"));
        Assert.Equal(new Im4Integer(0x1201), manp.Find("sip0"));
        foreach (var tag in new[] { "lpnh", "rpnh", "nsih", "coih", "auxp", "auxi", "auxr" })
        {
            Assert.Equal(48, Assert.IsType<Im4OctetString>(manp.Find(tag)).Value.Length);
        }
        Assert.Equal(Vuid.ToByteArray(bigEndian: true), Assert.IsType<Im4OctetString>(manp.Find("vuid")).Value.ToArray());
        Assert.Equal("0a1b2c3d4e5f60718293a4b5c6d7e8f9", Convert.ToHexStringLower(Vuid.ToByteArray(bigEndian: true)));
        Assert.Equal(16, Assert.IsType<Im4OctetString>(manp.Find("kuid")).Value.Length);
        foreach (var tag in new[] { "smb0", "smb1", "smb3", "smb4", "sip1", "sip2", "sip3" })
        {
            Assert.Equal(new Im4Boolean(true), manp.Find(tag));
        }
        // As in Apple's policies (bputil -d: "absent"), a Full Security policy carries no flag, no sip0 and no AuxKC hash.
        var full = LocalPolicy.CreateFullSecurity(mac.SecureEnclave, Vuid).ToManifestProperties();
        Assert.Equal(["ECID", "lpnh", "vuid"], full.Select(p => p.FourCC).Order(StringComparer.Ordinal));
        var der = EveryField(mac).Sign(mac.SecureEnclave).Encode();
        Assert.True(der.AsSpan().IndexOf(Convert.FromHexString("ff879bb5c432")) > 0);
        Assert.True(der.AsSpan().IndexOf(Convert.FromHexString("ff868bd5f070")) > 0);
    }

    [Theory]
    [InlineData(false, false, SecurityMode.Full)]
    [InlineData(true, false, SecurityMode.Reduced)]
    [InlineData(true, true, SecurityMode.Permissive)]
    [InlineData(false, true, SecurityMode.Permissive)]
    public void Security_mode_is_derived_from_smb0_and_smb1(bool smb0, bool smb1, SecurityMode expected)
    {
        using var mac = new Mac();
        var policy = LocalPolicy.CreateFullSecurity(mac.SecureEnclave, Vuid) with { ReducedSecurity = smb0, PermissiveSecurity = smb1 };
        Assert.Equal(expected, policy.SecurityMode);
    }

    [Fact]
    public void Reduced_security_with_kexts_signs_and_verifies()
    {
        using var mac = new Mac();
        var manifest = ReducedWithKexts(mac).Sign(mac.SecureEnclave);
        var result = LocalPolicyVerifier.Verify(manifest, mac.SecureEnclave);
        Assert.True(result.Valid);
        Assert.Equal(SecurityMode.Reduced, result.Policy!.SecurityMode);
    }

    public static TheoryData<string> InconsistentCases() =>
        ["smb2 without smb0", "smb1 without smb0", "smb3 without smb0", "sip0 without smb1", "auxp without smb2", "auxi without auxr", "auxi without auxp"];

    private static LocalPolicy Inconsistent(Mac mac, string which)
    {
        var reduced = ReducedWithKexts(mac);
        return which switch
        {
            "smb2 without smb0" => reduced with { ReducedSecurity = false },
            "smb1 without smb0" => reduced with { ReducedSecurity = false, ThirdPartyKextsEnabled = false, PermissiveSecurity = true },
            "smb3 without smb0" => reduced with { ReducedSecurity = false, ThirdPartyKextsEnabled = false, MdmManagesKexts = true },
            "sip0 without smb1" => reduced with { SipConfig = CsrConfig.AllowUntrustedKexts },
            "auxp without smb2" => reduced with { ThirdPartyKextsEnabled = false, AuxKextPolicyHash = Hash("uakl") },
            "auxi without auxr" => reduced with { AuxKextPolicyHash = Hash("uakl"), AuxKcImage4Hash = Hash("i") },
            "auxi without auxp" => reduced with { AuxKcImage4Hash = Hash("i"), AuxKcReceiptHash = Hash("r") },
            _ => throw new ArgumentOutOfRangeException(nameof(which)),
        };
    }

    [Theory]
    [MemberData(nameof(InconsistentCases))]
    public void Inconsistent_policy_is_not_signed_and_not_accepted(string which)
    {
        using var mac = new Mac();
        var policy = Inconsistent(mac, which);
        Assert.NotEmpty(policy.CheckConsistency());
        var e = Assert.Throws<LocalPolicyException>(() => policy.Sign(mac.SecureEnclave));
        Assert.All(e.Failures, f => Assert.Equal(TrustCode.LocalPolicyInconsistent, f.Code));

        // Even if a (buggy) caller has the SEP sign the raw body, iBoot-side verification refuses it.
        var manifest = mac.SecureEnclave.SignManifest(policy.ToManifestBody());
        var result = LocalPolicyVerifier.Verify(manifest, mac.SecureEnclave);
        Assert.False(result.Valid);
        Assert.Null(result.Policy);
        Assert.Equal([TrustCode.LocalPolicyInconsistent], result.Failures.Select(f => f.Code).Distinct());
    }

    [Fact]
    public void Smb2_without_smb0_names_the_rule()
    {
        using var mac = new Mac();
        var failure = Assert.Single(Inconsistent(mac, "smb2 without smb0").CheckConsistency());
        Assert.Contains("smb2", failure.Detail);
        Assert.Contains("smb0", failure.Detail);
    }

    [Fact]
    public void A_new_nonce_invalidates_an_older_policy_replay()
    {
        using var mac = new Mac();
        var old = ReducedWithKexts(mac).Sign(mac.SecureEnclave);
        Assert.True(LocalPolicyVerifier.Verify(old, mac.SecureEnclave).Valid);

        mac.RotateNonce();
        var replay = LocalPolicyVerifier.Verify(old, mac.SecureEnclave);
        Assert.False(replay.Valid);
        Assert.Equal(TrustCode.LocalPolicyReplayed, Assert.Single(replay.Failures).Code);

        // Still refused after a restart (the nonce change was persisted), and the SEP will not re-sign the stale policy.
        mac.Reopen();
        Assert.True(LocalPolicyVerifier.Verify(old, mac.SecureEnclave).Has(TrustCode.LocalPolicyReplayed));
        Assert.Equal(TrustCode.LocalPolicyReplayed,
            Assert.Single(Assert.Throws<LocalPolicyException>(() => LocalPolicy.FromManifest(old).Sign(mac.SecureEnclave)).Failures).Code);

        var fresh = (LocalPolicy.FromManifest(old) with { LocalPolicyNonceHash = mac.SecureEnclave.CurrentLocalPolicyNonceHash }).Sign(mac.SecureEnclave);
        Assert.True(LocalPolicyVerifier.Verify(fresh, mac.SecureEnclave).Valid);
    }

    [Fact]
    public void A_policy_for_a_pending_nonce_verifies_only_once_that_nonce_is_installed()
    {
        using var mac = new Mac();
        using var other = new Mac();
        var old = ReducedWithKexts(mac).Sign(mac.SecureEnclave);
        var pending = mac.SecureEnclave.PrepareLocalPolicyNonce();
        var next = ReducedWithKexts(mac) with { LocalPolicyNonceHash = pending.Hash };
        var signed = next.Sign(mac.SecureEnclave, pending);
        Assert.True(LocalPolicyVerifier.Verify(old, mac.SecureEnclave).Valid);
        Assert.True(LocalPolicyVerifier.Verify(signed, mac.SecureEnclave).Has(TrustCode.LocalPolicyReplayed));

        // Refused: the pending nonce of another SEP, an lpnh that is not the pending nonce's, no pending nonce at all.
        var foreign = other.SecureEnclave.PrepareLocalPolicyNonce();
        foreach (var (policy, nonce) in new[] { (next with { LocalPolicyNonceHash = foreign.Hash }, foreign), (ReducedWithKexts(mac), pending), (next, null) })
        {
            Assert.Equal(TrustCode.LocalPolicyReplayed,
                Assert.Single(Assert.Throws<LocalPolicyException>(() => policy.Sign(mac.SecureEnclave, nonce)).Failures).Code);
        }

        mac.Install(pending);
        Assert.True(LocalPolicyVerifier.Verify(signed, mac.SecureEnclave).Valid);
        Assert.True(LocalPolicyVerifier.Verify(old, mac.SecureEnclave).Has(TrustCode.LocalPolicyReplayed));
    }

    [Fact]
    public void Policy_from_another_Mac_is_refused_for_signature_and_ECID()
    {
        using var mac = new Mac();
        using var other = new Mac(ecid: 0x0A0B_0C0D_0E0F_1011);
        var foreign = ReducedWithKexts(other).Sign(other.SecureEnclave);
        var result = LocalPolicyVerifier.Verify(foreign, mac.SecureEnclave);
        Assert.False(result.Valid);
        Assert.True(result.Has(TrustCode.LocalPolicyNotSignedByThisMac));
        Assert.True(result.Has(TrustCode.LocalPolicyForAnotherMac));

        // Same ECID but a different SEP key (e.g. a re-provisioned or cloned Mac): still a bad signature.
        using var twin = new Mac();
        var twinPolicy = ReducedWithKexts(twin).Sign(twin.SecureEnclave);
        using var key = mac.SecureEnclave.CreatePublicKey();
        var twinResult = LocalPolicyVerifier.Verify(twinPolicy, key, mac.Ecid, twin.SecureEnclave.CurrentLocalPolicyNonceHash);
        Assert.Equal(TrustCode.LocalPolicyNotSignedByThisMac, Assert.Single(twinResult.Failures).Code);

        Assert.Equal(TrustCode.LocalPolicyForAnotherMac, Assert.Single(Assert.Throws<LocalPolicyException>(
            () => ReducedWithKexts(other).Sign(mac.SecureEnclave)).Failures, f => f.Code == TrustCode.LocalPolicyForAnotherMac).Code);
    }

    [Fact]
    public void Flipping_smb2_in_a_signed_policy_breaks_the_signature()
    {
        using var mac = new Mac();
        var der = ReducedWithKexts(mac).Sign(mac.SecureEnclave).Encode();
        var at = der.AsSpan().IndexOf(Convert.FromHexString("ff879bb5c432"));
        var boolean = der.AsSpan(at).IndexOf(new byte[] { 0x01, 0x01, 0xff });
        der[at + boolean + 2] = 0x00;
        using var key = mac.SecureEnclave.CreatePublicKey();
        var result = LocalPolicyVerifier.Verify(der, "flipped", key, mac.Ecid, mac.SecureEnclave.CurrentLocalPolicyNonceHash);
        Assert.Equal(TrustCode.LocalPolicyNotSignedByThisMac, Assert.Single(result.Failures).Code);
    }

    public static TheoryData<string> MalformedCases() =>
        ["lpnh 47 bytes", "ECID boolean", "smb2 integer", "unknown property", "sip0 too wide", "vuid missing", "lpnh missing", "ECID missing", "object set"];

    [Fact]
    public void Our_LocalPolicy_has_Apples_explicit_layout_as_openssl_asn1parse_reads_it()
    {
        using var mac = new Mac();
        var policy = EveryField(mac);
        var elements = Asn1Parse.Run(policy.Sign(mac.SecureEnclave).Encode());
        Assert.Equal(
            ["SEQUENCE", "IA5STRING:IM4M", "INTEGER:00", "SET", "priv [ 1296125506 ]", "SEQUENCE", "IA5STRING:MANB", "SET",
             "priv [ 1296125520 ]", "SEQUENCE", "IA5STRING:MANP", "SET"],
            elements.Take(12).Select(e => e.Shape));
        // Each property: [PRIVATE 4CC] (depth 8) wrapping SEQUENCE (9) { IA5String 4CC, value } (10), in the policy's order and types.
        var expected = policy.ToManifestProperties().Select(p => (
            $"priv [ {FourCC.ToUInt32(p.FourCC)} ]", p.FourCC,
            p.Value switch { Im4Integer => "INTEGER", Im4Boolean => "BOOLEAN", Im4OctetString => "OCTET STRING", _ => "?" })).ToList();
        var found = new List<(string, string, string)>();
        for (var i = 12; i + 3 < elements.Count && elements[i].Depth == 8; i += 4)
        {
            Assert.Equal(("SEQUENCE", 9), (elements[i + 1].Kind, elements[i + 1].Depth));
            Assert.Equal(("IA5STRING", 10), (elements[i + 2].Kind, elements[i + 2].Depth));
            Assert.Equal(10, elements[i + 3].Depth);
            found.Add((elements[i].Kind, elements[i + 2].Value!, elements[i + 3].Kind));
        }
        Assert.Equal(expected, found);
        Assert.Equal(19, found.Count);
        // Then the signature and the certificate chain at depth 1.
        var top = elements.Where(e => e.Depth == 1).Select(e => e.Kind).ToList();
        Assert.Equal(["IA5STRING", "INTEGER", "SET", "OCTET STRING", "SEQUENCE"], top);
    }

    [Fact]
    public void Our_AuxKC_Image4_has_Apples_layout_and_its_DGST_is_what_openssl_reads()
    {
        using var mac = new Mac();
        var auxKc = Enumerable.Range(0, 5000).Select(i => (byte)(i * 13)).ToArray();
        var img4 = AuxKcImage4.Create(mac.SecureEnclave, auxKc);
        var elements = Asn1Parse.Run(img4.Encode());
        Assert.Equal(
            ["SEQUENCE", "IA5STRING:IMG4", "SEQUENCE", "IA5STRING:IM4P", "IA5STRING:auxk", "IA5STRING:AuxiliaryKernelExtensions",
             "OCTET STRING", "cont [ 0 ]", "SEQUENCE", "IA5STRING:IM4M", "INTEGER:00", "SET", "priv [ 1296125506 ]", "SEQUENCE",
             "IA5STRING:MANB", "SET", "priv [ 1296125520 ]", "SEQUENCE", "IA5STRING:MANP", "SET",
             "priv [ 1162037572 ]", "SEQUENCE", "IA5STRING:ECID", $"INTEGER:{Mac.DefaultEcid:X}",
             $"priv [ {FourCC.ToUInt32("auxk")} ]", "SEQUENCE", "IA5STRING:auxk", "SET",
             $"priv [ {FourCC.ToUInt32("DGST")} ]", "SEQUENCE", "IA5STRING:DGST", "OCTET STRING"],
            elements.Take(32).Select(e => e.Shape));
        // The DGST openssl shows is SHA-384 of the whole IM4P element as openssl delimits it.
        var im4p = elements[2];
        var im4pLength = (int)(elements[7].Offset - im4p.Offset);
        var der = img4.Encode();
        Assert.Equal(Convert.ToHexString(SHA384.HashData(der.AsSpan((int)im4p.Offset, im4pLength))), elements[31].Value);
    }

    [Theory]
    [MemberData(nameof(MalformedCases))]
    public void Wrong_types_lengths_and_unknown_properties_are_malformed(string which)
    {
        using var mac = new Mac();
        var manp = LocalPolicy.CreateFullSecurity(mac.SecureEnclave, Vuid).ToManifestProperties().ToDictionary(p => p.FourCC, p => p.Value);
        IEnumerable<Im4ObjectProperties> objects = [];
        switch (which)
        {
            case "lpnh 47 bytes": manp["lpnh"] = new Im4OctetString(new byte[47]); break;
            case "ECID boolean": manp["ECID"] = new Im4Boolean(true); break;
            case "smb2 integer": manp["smb2"] = new Im4Integer(1); break;
            case "unknown property": manp["love"] = new Im4String("21.1.559.0.0,0"); break;
            case "sip0 too wide": manp["sip0"] = new Im4Integer(0x1_0000); break;
            case "vuid missing": manp.Remove("vuid"); break;
            case "lpnh missing": manp.Remove("lpnh"); break;
            case "ECID missing": manp.Remove("ECID"); break;
            case "object set": objects = [new Im4ObjectProperties("auxk", Im4PropertySet.Empty)]; break;
        }
        var body = new Im4ManifestBody(new Im4PropertySet(manp.Select(kv => new Im4Property(kv.Key, kv.Value))), objects);
        var manifest = Im4Manifest.Create(body, [], []);
        var e = Assert.Throws<LocalPolicyException>(() => LocalPolicy.FromManifest(manifest));
        Assert.Equal(TrustCode.LocalPolicyMalformed, Assert.Single(e.Failures).Code);
        var result = LocalPolicyVerifier.Verify(manifest, mac.SecureEnclave);
        Assert.True(result.Has(TrustCode.LocalPolicyMalformed));
        Assert.Null(result.Policy);
    }

    [Fact]
    public void Non_DER_bytes_are_a_malformed_result_or_Image4FormatException()
    {
        using var mac = new Mac();
        using var key = mac.SecureEnclave.CreatePublicKey();
        var result = LocalPolicyVerifier.Verify(new byte[] { 0x30, 0x80, 0x00, 0x00 }, "bad", key, mac.Ecid, mac.SecureEnclave.CurrentLocalPolicyNonceHash);
        Assert.Equal(TrustCode.LocalPolicyMalformed, Assert.Single(result.Failures).Code);
        Assert.Throws<Image4FormatException>(() => LocalPolicy.FromBytes(new byte[] { 0x30, 0x01 }));
    }

    [Fact]
    public void Absent_booleans_and_sip0_read_as_off()
    {
        using var mac = new Mac();
        var body = new Im4ManifestBody(new Im4PropertySet(
            new Im4Property("ECID", new Im4Integer(mac.Ecid)),
            new Im4Property("lpnh", new Im4OctetString(mac.SecureEnclave.CurrentLocalPolicyNonceHash.Span)),
            new Im4Property("vuid", new Im4OctetString(Vuid.ToByteArray(bigEndian: true)))));
        var result = LocalPolicyVerifier.Verify(mac.SecureEnclave.SignManifest(body), mac.SecureEnclave);
        Assert.True(result.Valid);
        Assert.Equal(SecurityMode.Full, result.Policy!.SecurityMode);
        Assert.False(result.Policy.ThirdPartyKextsEnabled);
        Assert.Equal(CsrConfig.None, result.Policy.SipConfig);
    }

    [Fact]
    public void Csr_bits_match_xnu()
    {
        Assert.Equal(1 << 0, (int)CsrConfig.AllowUntrustedKexts);
        Assert.Equal(1 << 4, (int)CsrConfig.AllowAppleInternal);
        Assert.Equal(1 << 7, (int)CsrConfig.AllowDeviceConfiguration);
        Assert.Equal(1 << 8, (int)CsrConfig.AllowAnyRecoveryOs);
        Assert.Equal(1 << 9, (int)CsrConfig.AllowUnapprovedKexts);
        Assert.Equal(1 << 11, (int)CsrConfig.AllowUnauthenticatedRoot);
        Assert.Equal(1 << 12, (int)CsrConfig.AllowResearchGuests);
        Assert.Equal(0xE7Fu, (uint)CsrConfig.Disabled);
    }
}

public sealed class AuxKcImage4Tests
{
    private static readonly byte[] AuxKc = RandomNumberGenerator.GetBytes(4096);

    private static LocalPolicy PolicyFor(Mac mac, Img4 auxKc) => new()
    {
        Ecid = mac.Ecid,
        LocalPolicyNonceHash = mac.SecureEnclave.CurrentLocalPolicyNonceHash,
        VolumeGroupUuid = Guid.NewGuid(),
        ReducedSecurity = true,
        ThirdPartyKextsEnabled = true,
        AuxKextPolicyHash = Sha384Digest.Compute("uakl"u8),
        AuxKcImage4Hash = AuxKcImage4.ManifestHash(auxKc),
        AuxKcReceiptHash = Sha384Digest.Compute("receipt"u8),
    };

    /// <summary>
    /// iBoot's checks of <paramref name="auxKcImage4"/> under <paramref name="policy"/> (signed now, for the current nonce):
    /// the one AuxKC Image4 verifier, whose trace names each failure with its <see cref="TrustCode"/>.
    /// </summary>
    private static BootResult Boot(Mac mac, Img4 auxKcImage4, LocalPolicy policy)
    {
        using var key = mac.SecureEnclave.CreatePublicKey();
        return Iboot.Boot(new IbootInputs
        {
            LocalPolicy = (policy with { LocalPolicyNonceHash = mac.SecureEnclave.CurrentLocalPolicyNonceHash }).Sign(mac.SecureEnclave).Encode(),
            SepPublicKey = key.ExportSubjectPublicKeyInfo(),
            Ecid = mac.Ecid,
            CurrentNonceHash = mac.SecureEnclave.CurrentLocalPolicyNonceHash,
            AuxKcImage4 = auxKcImage4.Encode(),
        });
    }

    /// <summary>The step iBoot refused the AuxKC at, with its code; the LocalPolicy itself verified.</summary>
    private static void AssertRefused(BootResult boot, TrustStep step, TrustCode code)
    {
        Assert.Equal(BootTarget.MacOS, boot.Target);
        Assert.Equal(AuxKcStatus.Refused, boot.AuxKcStatus);
        var failed = Assert.Single(boot.Failures);
        Assert.Equal((step, code), (failed.Step, failed.Code!.Value));
    }

    [Fact]
    public void SEP_signed_AuxKC_verifies_against_the_LocalPolicy_after_a_DER_round_trip()
    {
        using var mac = new Mac();
        var img4 = Img4.FromBytes(AuxKcImage4.Create(mac.SecureEnclave, AuxKc).Encode(), "AuxiliaryKernelExtensions.img4");
        Assert.Equal("auxk", img4.Payload.Type);
        Assert.Equal(AuxKc, img4.Payload.Data.ToArray());
        var dgst = Assert.IsType<Im4OctetString>(img4.Manifest.Body.FindObject("auxk")!.Find("DGST"));
        Assert.Equal(SHA384.HashData(img4.Payload.Encode()), dgst.Value.ToArray());
        Assert.Equal(SHA384.HashData(img4.Manifest.Encode()), AuxKcImage4.ManifestHash(img4).ToArray());

        var policyManifest = PolicyFor(mac, img4).Sign(mac.SecureEnclave);
        var policy = LocalPolicyVerifier.Verify(policyManifest, mac.SecureEnclave);
        Assert.True(policy.Valid, string.Join("; ", policy.Failures));
        // Every Image4 check passes; the random payload is then no kernel collection, which iBoot checks next.
        var boot = Boot(mac, img4, policy.Policy!);
        Assert.All(boot.Trace.TakeWhile(c => c.Step != TrustStep.AuxKcFormat), c => Assert.NotEqual(TrustOutcome.Failed, c.Outcome));
        Assert.Contains(boot.Trace, c => c is { Step: TrustStep.AuxKcBytes, Outcome: TrustOutcome.Passed });
        AssertRefused(boot, TrustStep.AuxKcFormat, TrustCode.AuxKcMalformed);
    }

    [Fact]
    public void A_different_AuxKC_payload_under_the_same_manifest_is_a_modified_payload()
    {
        using var mac = new Mac();
        var img4 = AuxKcImage4.Create(mac.SecureEnclave, AuxKc);
        var swapped = AuxKc.ToArray();
        swapped[100] ^= 1;
        var forged = new Img4(new Im4Payload("auxk", img4.Payload.Description, swapped), img4.Manifest);
        AssertRefused(Boot(mac, forged, PolicyFor(mac, img4)), TrustStep.AuxKcImage4Digest, TrustCode.AuxKcImage4PayloadModified);
    }

    [Fact]
    public void An_older_AuxKC_under_a_newer_policy_auxi_is_a_rollback()
    {
        using var mac = new Mac();
        var older = AuxKcImage4.Create(mac.SecureEnclave, AuxKc);
        var newer = AuxKcImage4.Create(mac.SecureEnclave, [.. AuxKc, 0x00]);
        AssertRefused(Boot(mac, older, PolicyFor(mac, newer)), TrustStep.AuxKcImage4Current, TrustCode.AuxKcRollback);
        // The older Image4 under its own policy passes the same step.
        Assert.Contains(Boot(mac, older, PolicyFor(mac, older)).Trace, c => c is { Step: TrustStep.AuxKcImage4Current, Outcome: TrustOutcome.Passed });
    }

    [Fact]
    public void AuxKC_signed_by_another_SEP_is_refused_and_a_policy_without_smb2_loads_none()
    {
        using var mac = new Mac();
        using var other = new Mac();
        var foreign = AuxKcImage4.Create(other.SecureEnclave, AuxKc);
        AssertRefused(Boot(mac, foreign, PolicyFor(mac, foreign)), TrustStep.AuxKcImage4Signature, TrustCode.AuxKcImage4NotSignedByThisMac);

        // Full Security (no smb2, no auxi): iBoot does not look at an AuxKC at all.
        var own = AuxKcImage4.Create(mac.SecureEnclave, AuxKc);
        var full = Boot(mac, own, LocalPolicy.CreateFullSecurity(mac.SecureEnclave, Guid.NewGuid()));
        Assert.Empty(full.Failures);
        Assert.Equal(AuxKcStatus.NotEnabled, full.AuxKcStatus);
        Assert.Equal(TrustOutcome.Skipped, full.Trace.Single(c => c.Step == TrustStep.ThirdPartyKexts).Outcome);
    }

    [Fact]
    public void Wrong_payload_type_and_missing_digest_are_malformed_and_no_AuxKC_is_signed_for_another_ECID()
    {
        using var mac = new Mac();
        var body = new Im4ManifestBody(new Im4PropertySet(new Im4Property("ECID", new Im4Integer(mac.Ecid))));
        var kernel = new Img4(new Im4Payload("krnl", "kernel", AuxKc), mac.SecureEnclave.SignManifest(body));
        AssertRefused(Boot(mac, kernel, PolicyFor(mac, kernel)), TrustStep.AuxKcImage4Format, TrustCode.AuxKcImage4Malformed);
        var noDigest = new Img4(new Im4Payload("auxk", "AuxiliaryKernelExtensions", AuxKc), mac.SecureEnclave.SignManifest(body));
        AssertRefused(Boot(mac, noDigest, PolicyFor(mac, noDigest)), TrustStep.AuxKcImage4Digest, TrustCode.AuxKcImage4Malformed);

        // An AuxKC manifest for another ECID: this Mac's Secure Enclave does not sign one (so iBoot's ECID step,
        // aux-kc-image4-for-another-mac, can only meet another Mac's Image4, which its signature step refuses first).
        var own = AuxKcImage4.Create(mac.SecureEnclave, AuxKc);
        var otherEcid = new Im4ManifestBody(new Im4PropertySet(new Im4Property("ECID", new Im4Integer(mac.Ecid + 1))), own.Manifest.Body.Objects);
        Assert.Throws<KextTrust.Boot.Enclave.SecureEnclaveException>(() => mac.SecureEnclave.SignManifest(otherEcid));
    }
}

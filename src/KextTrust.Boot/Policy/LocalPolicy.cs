using KextTrust.Formats.Image4;
using KextTrust.Boot.Enclave;
using KextTrust.Kexts.Trust;
using KextTrust.Machine;

namespace KextTrust.Boot.Policy;

/// <summary>
/// The LocalPolicy of one bootable macOS on an Apple-silicon Mac: an IM4M whose MANP holds the
/// properties below, signed by the Mac's Secure Enclave. Immutable, value equality.
/// </summary>
/// <remarks>
/// Encoding (MANP), with the 4CCs and types of the LocalPolicy keys Asahi Linux documents and <c>bputil -d</c>
/// names: <c>ECID</c> INTEGER; <c>vuid</c> and <c>kuid</c> OCTET STRING(16, RFC 4122 byte order); <c>lpnh</c>,
/// <c>rpnh</c>, <c>nsih</c>, <c>coih</c>, <c>auxp</c>, <c>auxi</c>, <c>auxr</c> OCTET STRING(48, SHA-384);
/// <c>smb0</c>–<c>smb4</c> and <c>sip1</c>–<c>sip3</c> BOOLEAN; <c>sip0</c> INTEGER (≤ 0xFFFF). As in Apple's
/// policies (where <c>bputil -d</c> prints "absent"), a flag is written only when true, <c>sip0</c> only when
/// non-zero, and an optional hash or UUID only when set; on reading, absent flags are false and an absent
/// <c>sip0</c> is 0. Any other property, or any object property set, is refused (fail closed).
/// </remarks>
public sealed record LocalPolicy
{
    /// <summary>MANP 4CCs.</summary>
    public const string EcidTag = "ECID", NonceHashTag = "lpnh", VolumeGroupTag = "vuid", ReducedTag = "smb0",
        PermissiveTag = "smb1", ThirdPartyKextsTag = "smb2", MdmTag = "smb3", SipTag = "sip0",
        AuxKextPolicyTag = "auxp", AuxKcImage4Tag = "auxi", AuxKcReceiptTag = "auxr",
        KekGroupTag = "kuid", RemoteNonceHashTag = "rpnh", NextStageImage4Tag = "nsih", CustomKcImage4Tag = "coih",
        DepMdmTag = "smb4", SsvDisabledTag = "sip1", CtrrDisabledTag = "sip2", BootArgsUnfilteredTag = "sip3";

    private static readonly HashSet<string> KnownTags =
    [
        EcidTag, NonceHashTag, VolumeGroupTag, ReducedTag, PermissiveTag, ThirdPartyKextsTag, MdmTag, SipTag,
        AuxKextPolicyTag, AuxKcImage4Tag, AuxKcReceiptTag, KekGroupTag, RemoteNonceHashTag, NextStageImage4Tag,
        CustomKcImage4Tag, DepMdmTag, SsvDisabledTag, CtrrDisabledTag, BootArgsUnfilteredTag,
    ];

    /// <summary><c>ECID</c>: the Mac this policy is personalized for.</summary>
    public required ulong Ecid { get; init; }

    /// <summary><c>lpnh</c>: SHA-384 of the SEP's Local Policy Nonce at signing time (anti-replay).</summary>
    public required Sha384Digest LocalPolicyNonceHash { get; init; }

    /// <summary><c>vuid</c>: the APFS volume group this policy is for.</summary>
    public required Guid VolumeGroupUuid { get; init; }

    /// <summary><c>smb0</c>: Reduced Security.</summary>
    public bool ReducedSecurity { get; init; }

    /// <summary><c>smb1</c>: Permissive Security (implies <c>smb0</c>).</summary>
    public bool PermissiveSecurity { get; init; }

    /// <summary><c>smb2</c>: third-party kernel extensions enabled (iBoot loads the AuxKC); requires <c>smb0</c>.</summary>
    public bool ThirdPartyKextsEnabled { get; init; }

    /// <summary><c>smb3</c>: MDM may manage kexts and software updates; requires <c>smb0</c>.</summary>
    public bool MdmManagesKexts { get; init; }

    /// <summary><c>sip0</c>: the SIP (CSR) bits relaxed; non-zero requires <c>smb1</c>.</summary>
    public CsrConfig SipConfig { get; init; }

    /// <summary><c>auxp</c>: SHA-384 of the user-authorized kext list (UAKL), or null.</summary>
    public Sha384Digest? AuxKextPolicyHash { get; init; }

    /// <summary><c>auxi</c>: SHA-384 of the AuxKC Image4 manifest (IM4M DER), or null.</summary>
    public Sha384Digest? AuxKcImage4Hash { get; init; }

    /// <summary><c>auxr</c>: SHA-384 of the AuxKC receipt, or null.</summary>
    public Sha384Digest? AuxKcReceiptHash { get; init; }

    /// <summary><c>kuid</c>: the KEK group UUID (the key group protecting the policy's signing key), or null.</summary>
    public Guid? KekGroupUuid { get; init; }

    /// <summary><c>rpnh</c>: SHA-384 of the Remote Policy Nonce, or null.</summary>
    public Sha384Digest? RemotePolicyNonceHash { get; init; }

    /// <summary><c>nsih</c>: SHA-384 of the next stage's (macOS) Image4 manifest, or null.</summary>
    public Sha384Digest? NextStageImage4Hash { get; init; }

    /// <summary><c>coih</c>: SHA-384 of a custom kernel collection's or fuOS Image4, or null.</summary>
    public Sha384Digest? CustomKcImage4Hash { get; init; }

    /// <summary><c>smb4</c>: DEP-allowed MDM control.</summary>
    public bool DepMdmControl { get; init; }

    /// <summary><c>sip1</c>: Signed System Volume verification disabled.</summary>
    public bool SignedSystemVolumeDisabled { get; init; }

    /// <summary><c>sip2</c>: kernel CTRR disabled.</summary>
    public bool KernelCtrrDisabled { get; init; }

    /// <summary><c>sip3</c>: boot-args filtering disabled.</summary>
    public bool BootArgsFilteringDisabled { get; init; }

    /// <summary>Permissive if <c>smb1</c>, else Reduced if <c>smb0</c>, else Full.</summary>
    public SecurityMode SecurityMode =>
        PermissiveSecurity ? SecurityMode.Permissive : ReducedSecurity ? SecurityMode.Reduced : SecurityMode.Full;

    /// <summary>A Full Security policy for this SEP's Mac, carrying its current <c>lpnh</c>.</summary>
    internal static LocalPolicy CreateFullSecurity(SecureEnclave secureEnclave, Guid volumeGroupUuid)
    {
        ArgumentNullException.ThrowIfNull(secureEnclave);
        return new LocalPolicy
        {
            Ecid = secureEnclave.Ecid,
            LocalPolicyNonceHash = secureEnclave.CurrentLocalPolicyNonceHash,
            VolumeGroupUuid = volumeGroupUuid,
        };
    }

    /// <summary>
    /// Every way in which the settings contradict each other (empty when consistent):
    /// <c>smb1</c>, <c>smb2</c> and <c>smb3</c> each require <c>smb0</c>; a non-zero <c>sip0</c> requires
    /// <c>smb1</c>, and so do <c>sip1</c>–<c>sip3</c> and <c>coih</c>; any AuxKC hash requires <c>smb2</c>; <c>auxi</c> and <c>auxr</c> come together (one
    /// AuxKC build) and require <c>auxp</c> (the UAKL it was built from).
    /// </summary>
    internal IReadOnlyList<LocalPolicyFailure> CheckConsistency()
    {
        var failures = new List<LocalPolicyFailure>();
        void Fail(string detail) => failures.Add(new LocalPolicyFailure(TrustCode.LocalPolicyInconsistent, detail));
        if (PermissiveSecurity && !ReducedSecurity)
        {
            Fail("Permissive Security (smb1) implies Reduced Security (smb0)");
        }
        if (ThirdPartyKextsEnabled && !ReducedSecurity)
        {
            Fail("third-party kexts (smb2) require Reduced or Permissive Security (smb0)");
        }
        if (MdmManagesKexts && !ReducedSecurity)
        {
            Fail("MDM kext management (smb3) requires Reduced or Permissive Security (smb0)");
        }
        if (SipConfig != CsrConfig.None && !PermissiveSecurity)
        {
            Fail($"relaxing SIP (sip0 = 0x{(ushort)SipConfig:x}) requires Permissive Security (smb1)");
        }
        if ((SignedSystemVolumeDisabled || KernelCtrrDisabled || BootArgsFilteringDisabled) && !PermissiveSecurity)
        {
            Fail("disabling the signed system volume, CTRR or boot-args filtering (sip1–sip3) requires Permissive Security (smb1)");
        }
        if (CustomKcImage4Hash is not null && !PermissiveSecurity)
        {
            Fail("a custom kernel collection (coih) requires Permissive Security (smb1)");
        }
        if ((AuxKextPolicyHash ?? AuxKcImage4Hash ?? AuxKcReceiptHash) is not null && !ThirdPartyKextsEnabled)
        {
            Fail("AuxKC hashes (auxp/auxi/auxr) require third-party kexts enabled (smb2)");
        }
        if ((AuxKcImage4Hash is null) != (AuxKcReceiptHash is null))
        {
            Fail("auxi and auxr describe one AuxKC build and must be present together");
        }
        if (AuxKcImage4Hash is not null && AuxKextPolicyHash is null)
        {
            Fail("an AuxKC (auxi) is built from a user-authorized kext list, so auxp must be present");
        }
        return failures;
    }

    /// <summary>The MANP properties of this policy.</summary>
    internal Im4PropertySet ToManifestProperties()
    {
        var properties = new List<Im4Property>
        {
            new(EcidTag, new Im4Integer(Ecid)),
            new(NonceHashTag, new Im4OctetString(Require(LocalPolicyNonceHash, nameof(LocalPolicyNonceHash)).Span)),
            new(VolumeGroupTag, new Im4OctetString(VolumeGroupUuid.ToByteArray(bigEndian: true))),
        };
        if (KekGroupUuid is { } kuid)
        {
            properties.Add(new(KekGroupTag, new Im4OctetString(kuid.ToByteArray(bigEndian: true))));
        }
        AddFlag(properties, ReducedTag, ReducedSecurity);
        AddFlag(properties, PermissiveTag, PermissiveSecurity);
        AddFlag(properties, ThirdPartyKextsTag, ThirdPartyKextsEnabled);
        AddFlag(properties, MdmTag, MdmManagesKexts);
        AddFlag(properties, DepMdmTag, DepMdmControl);
        if (SipConfig != CsrConfig.None)
        {
            properties.Add(new(SipTag, new Im4Integer((ushort)SipConfig)));
        }
        AddFlag(properties, SsvDisabledTag, SignedSystemVolumeDisabled);
        AddFlag(properties, CtrrDisabledTag, KernelCtrrDisabled);
        AddFlag(properties, BootArgsUnfilteredTag, BootArgsFilteringDisabled);
        AddHash(properties, RemoteNonceHashTag, RemotePolicyNonceHash);
        AddHash(properties, NextStageImage4Tag, NextStageImage4Hash);
        AddHash(properties, CustomKcImage4Tag, CustomKcImage4Hash);
        AddHash(properties, AuxKextPolicyTag, AuxKextPolicyHash);
        AddHash(properties, AuxKcImage4Tag, AuxKcImage4Hash);
        AddHash(properties, AuxKcReceiptTag, AuxKcReceiptHash);
        return new Im4PropertySet(properties);
    }

    /// <summary>The manifest body (MANP only, no objects) that the SEP signs.</summary>
    internal Im4ManifestBody ToManifestBody() => new(ToManifestProperties());

    /// <summary>
    /// Has <paramref name="secureEnclave"/> sign this policy. Refused (<see cref="LocalPolicyException"/>)
    /// if the policy is inconsistent, for another ECID, or not carrying the SEP's current <c>lpnh</c>.
    /// </summary>
    internal Im4Manifest Sign(SecureEnclave secureEnclave) => Sign(secureEnclave, null);

    /// <summary>
    /// Has <paramref name="secureEnclave"/> sign this policy for the nonce it will carry once
    /// <paramref name="nextNonce"/> is installed (see <see cref="SecureEnclave.PrepareLocalPolicyNonce"/>): <c>lpnh</c> must be
    /// <paramref name="nextNonce"/>'s hash, and the nonce must be one this SEP sealed. With null, as <see cref="Sign(SecureEnclave)"/>.
    /// </summary>
    internal Im4Manifest Sign(SecureEnclave secureEnclave, PendingLocalPolicyNonce? nextNonce)
    {
        ArgumentNullException.ThrowIfNull(secureEnclave);
        var failures = CheckConsistency().ToList();
        if (Ecid != secureEnclave.Ecid)
        {
            failures.Add(new(TrustCode.LocalPolicyForAnotherMac, $"policy ECID 0x{Ecid:x16} is not this Mac's 0x{secureEnclave.Ecid:x16}"));
        }
        if (nextNonce is null && LocalPolicyNonceHash != secureEnclave.CurrentLocalPolicyNonceHash)
        {
            failures.Add(new(TrustCode.LocalPolicyReplayed, "lpnh is not the Secure Enclave's current Local Policy Nonce hash"));
        }
        if (nextNonce is not null && (LocalPolicyNonceHash != nextNonce.Hash || !secureEnclave.CanInstall(nextNonce)))
        {
            failures.Add(new(TrustCode.LocalPolicyReplayed, "lpnh is not the hash of a new Local Policy Nonce sealed by this Secure Enclave"));
        }
        if (failures.Count > 0)
        {
            throw new LocalPolicyException(failures);
        }
        return secureEnclave.SignManifest(ToManifestBody());
    }

    /// <summary>
    /// Reads the policy from a manifest's MANP, validating types and lengths. Does not check the
    /// signature, ECID, nonce or consistency: use <see cref="LocalPolicyVerifier"/> for that.
    /// </summary>
    /// <exception cref="LocalPolicyException">Code <see cref="TrustCode.LocalPolicyMalformed"/>.</exception>
    public static LocalPolicy FromManifest(Im4Manifest manifest)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        if (manifest.Body.Objects.Count > 0)
        {
            throw Malformed($"a LocalPolicy holds no object property sets, found '{manifest.Body.Objects[0].ObjectFourCC}'");
        }
        var manp = manifest.ManifestProperties;
        foreach (var p in manp)
        {
            if (!KnownTags.Contains(p.FourCC))
            {
                throw Malformed($"unknown LocalPolicy property '{p.FourCC}'");
            }
        }
        var sip = ReadInteger(manp, SipTag) ?? 0;
        if (sip > ushort.MaxValue)
        {
            throw Malformed($"sip0 is a 16-bit mask, found 0x{sip:x}");
        }
        var vuid = ReadBytes(manp, VolumeGroupTag, 16) ?? throw Malformed("vuid is missing");
        return new LocalPolicy
        {
            Ecid = ReadInteger(manp, EcidTag) ?? throw Malformed("ECID is missing"),
            LocalPolicyNonceHash = ReadHash(manp, NonceHashTag) ?? throw Malformed("lpnh is missing"),
            VolumeGroupUuid = new Guid(vuid, bigEndian: true),
            ReducedSecurity = ReadBoolean(manp, ReducedTag),
            PermissiveSecurity = ReadBoolean(manp, PermissiveTag),
            ThirdPartyKextsEnabled = ReadBoolean(manp, ThirdPartyKextsTag),
            MdmManagesKexts = ReadBoolean(manp, MdmTag),
            SipConfig = (CsrConfig)(ushort)sip,
            AuxKextPolicyHash = ReadHash(manp, AuxKextPolicyTag),
            AuxKcImage4Hash = ReadHash(manp, AuxKcImage4Tag),
            AuxKcReceiptHash = ReadHash(manp, AuxKcReceiptTag),
            KekGroupUuid = ReadBytes(manp, KekGroupTag, 16) is { } kuid ? new Guid(kuid, bigEndian: true) : null,
            RemotePolicyNonceHash = ReadHash(manp, RemoteNonceHashTag),
            NextStageImage4Hash = ReadHash(manp, NextStageImage4Tag),
            CustomKcImage4Hash = ReadHash(manp, CustomKcImage4Tag),
            DepMdmControl = ReadBoolean(manp, DepMdmTag),
            SignedSystemVolumeDisabled = ReadBoolean(manp, SsvDisabledTag),
            KernelCtrrDisabled = ReadBoolean(manp, CtrrDisabledTag),
            BootArgsFilteringDisabled = ReadBoolean(manp, BootArgsUnfilteredTag),
        };
    }

    /// <summary>Decodes an IM4M (strict DER; <see cref="Image4FormatException"/>) and reads the policy from it.</summary>
    public static LocalPolicy FromBytes(ReadOnlyMemory<byte> im4m, string? sourceName = null) =>
        FromManifest(Im4Manifest.FromBytes(im4m, sourceName));

    private static Sha384Digest Require(Sha384Digest? digest, string name) =>
        digest ?? throw new InvalidOperationException($"{name} is required");

    private static void AddFlag(List<Im4Property> properties, string tag, bool value)
    {
        if (value)
        {
            properties.Add(new Im4Property(tag, new Im4Boolean(true)));
        }
    }

    private static void AddHash(List<Im4Property> properties, string tag, Sha384Digest? digest)
    {
        if (digest is not null)
        {
            properties.Add(new Im4Property(tag, new Im4OctetString(digest.Span)));
        }
    }

    private static LocalPolicyException Malformed(string detail) => new(TrustCode.LocalPolicyMalformed, detail);

    private static ulong? ReadInteger(Im4PropertySet manp, string tag) => manp.Find(tag) switch
    {
        null => null,
        Im4Integer i => i.Value,
        var other => throw Malformed($"{tag} must be an INTEGER, found {other.GetType().Name}"),
    };

    private static bool ReadBoolean(Im4PropertySet manp, string tag) => manp.Find(tag) switch
    {
        null => false,
        Im4Boolean b => b.Value,
        var other => throw Malformed($"{tag} must be a BOOLEAN, found {other.GetType().Name}"),
    };

    private static byte[]? ReadBytes(Im4PropertySet manp, string tag, int length) => manp.Find(tag) switch
    {
        null => null,
        Im4OctetString o when o.Value.Length == length => o.Value.ToArray(),
        Im4OctetString o => throw Malformed($"{tag} must be {length} bytes, found {o.Value.Length}"),
        var other => throw Malformed($"{tag} must be an OCTET STRING, found {other.GetType().Name}"),
    };

    private static Sha384Digest? ReadHash(Im4PropertySet manp, string tag) =>
        ReadBytes(manp, tag, Sha384Digest.Length) is { } bytes ? Sha384Digest.FromBytes(bytes) : null;
}

using System.Collections.Immutable;
using System.Formats.Asn1;
using System.Security.Cryptography;
using KextTrust.Boot.Enclave;
using KextTrust.Boot.KernelManagement;
using KextTrust.Boot.Policy;
using KextTrust.Boot.Receipt;
using KextTrust.Formats.Image4;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Kpi;
using KextTrust.Kexts.Trust;

namespace KextTrust.Boot.Startup;

/// <summary>
/// The user-approved kext list for iBoot's last step: its bytes (<see cref="Consent.Policy.UserApprovedKextList.ToBytes"/>)
/// and, when it may have changed for a reason that is no tampering (e.g. user consent no longer in force), that reason, named
/// in the refusal; null for the usual causes (an approval or removal, a change of SIP or kext consent, an edit by hand).
/// </summary>
internal sealed record UaklInput(ReadOnlyMemory<byte> Bytes, string? ChangeCause = null);

/// <summary>What iBoot is given at startup: the files it reads and this Mac's Secure Enclave identity.</summary>
internal sealed record IbootInputs
{
    /// <summary>The LocalPolicy file (IM4M DER).</summary>
    public required ReadOnlyMemory<byte> LocalPolicy { get; init; }

    /// <summary>This Mac's SEP public key (DER SubjectPublicKeyInfo).</summary>
    public required ReadOnlyMemory<byte> SepPublicKey { get; init; }

    /// <summary>This Mac's ECID.</summary>
    public required ulong Ecid { get; init; }

    /// <summary>The Secure Enclave's current <c>lpnh</c>.</summary>
    public required Sha384Digest CurrentNonceHash { get; init; }

    /// <summary>
    /// This Mac's SEP certificate (DER). When given, the certificate embedded in the LocalPolicy and in the AuxKC Image4
    /// must be exactly it, so no byte of either file can change unnoticed (the signature covers only the manifest body).
    /// </summary>
    public ReadOnlyMemory<byte>? SepCertificate { get; init; }

    /// <summary>The AuxKC Image4 file, or null when there is none.</summary>
    public ReadOnlyMemory<byte>? AuxKcImage4 { get; init; }

    /// <summary>The AuxKC file, or null to use the Image4's payload (which is the whole AuxKC).</summary>
    public ReadOnlyMemory<byte>? AuxKc { get; init; }

    /// <summary>The kext receipt file, or null when there is none.</summary>
    public ReadOnlyMemory<byte>? Receipt { get; init; }

    /// <summary>The AuxKC file's path (or a label), named when its bytes turn out malformed.</summary>
    public string AuxKcName { get; init; } = "AuxKC";

    /// <summary>The receipt file's path (or a label), named when its bytes turn out malformed.</summary>
    public string ReceiptName { get; init; } = "kext receipt";

    /// <summary>
    /// Reads the user-approved kext list as it is now, or gives null when there is none: with an AuxKC, its SHA-384 must be
    /// the LocalPolicy's <c>auxp</c>, or no third-party kext loads. Called only when iBoot reaches that step (its last, after
    /// the AuxKC and the receipt verified), so a startup without an AuxKC to load never derives the list.
    /// </summary>
    public Func<UaklInput?>? Uakl { get; init; }

    /// <summary>Inputs with the identity (public key, ECID, current nonce hash) of <paramref name="secureEnclave"/>.</summary>
    public static IbootInputs For(SecureEnclave secureEnclave, ReadOnlyMemory<byte> localPolicy)
    {
        ArgumentNullException.ThrowIfNull(secureEnclave);
        return new IbootInputs
        {
            LocalPolicy = localPolicy,
            SepPublicKey = secureEnclave.PublicKey,
            SepCertificate = secureEnclave.Certificate,
            Ecid = secureEnclave.Ecid,
            CurrentNonceHash = secureEnclave.CurrentLocalPolicyNonceHash,
        };
    }
}

/// <summary>Where the Mac starts.</summary>
public enum BootTarget
{
    /// <summary>macOS (with or without third-party kexts).</summary>
    MacOS,
    /// <summary>recoveryOS: LLB refuses a LocalPolicy it cannot trust, so macOS does not start at all.</summary>
    RecoveryOS,
}

/// <summary>What happened to the third-party kexts.</summary>
public enum AuxKcStatus
{
    /// <summary>The LocalPolicy does not enable third-party kexts (Full Security, or no <c>smb2</c>), or was refused.</summary>
    NotEnabled,
    /// <summary><c>smb2</c> is set but no AuxKC has been built (no <c>auxi</c>).</summary>
    NotBuilt,
    /// <summary>The AuxKC verified and is handed to the kernel.</summary>
    Loaded,
    /// <summary>The AuxKC failed a check; macOS starts without third-party kexts.</summary>
    Refused,
}

/// <summary>The outcome of a startup.</summary>
public sealed record BootResult
{
    /// <summary>macOS or recoveryOS.</summary>
    public required BootTarget Target { get; init; }

    /// <summary>The verified LocalPolicy, or null when refused.</summary>
    public LocalPolicy? Policy { get; init; }

    /// <summary>What happened to the third-party kexts.</summary>
    public required AuxKcStatus AuxKcStatus { get; init; }

    /// <summary>True when the AuxKC verified and is loaded.</summary>
    public bool ThirdPartyKextsLoaded => AuxKcStatus == AuxKcStatus.Loaded;

    /// <summary>The verified AuxKC bytes (only when loaded): a view of the caller's input, not a copy.</summary>
    public ReadOnlyMemory<byte>? AuxKcBytes { get; init; }

    /// <summary>The verified receipt bytes (only when loaded): a view of the caller's input, not a copy.</summary>
    public ReadOnlyMemory<byte>? ReceiptBytes { get; init; }

    /// <summary>
    /// The verified AuxKC, parsed on first use (only when loaded). Its bytes are SEP-signed and bound by <c>auxi</c>, so
    /// they are what kmd wrote; a parse failure (<see cref="AuxKcFormatException"/>) would mean kmd wrote a broken collection.
    /// </summary>
    public AuxiliaryKernelCollection? AuxKc => _auxKc?.Value;

    /// <summary>The verified receipt, parsed on first use (only when loaded); bound by <c>auxr</c> like <see cref="AuxKc"/>.</summary>
    public KextReceipt? Receipt => _receipt?.Value;

    private Lazy<AuxiliaryKernelCollection>? _auxKc;
    private Lazy<KextReceipt>? _receipt;

    internal BootResult WithAuxKc(ReadOnlyMemory<byte> auxKc, ReadOnlyMemory<byte> receipt, IbootInputs names) => this with
    {
        AuxKcBytes = auxKc,
        ReceiptBytes = receipt,
        _auxKc = new Lazy<AuxiliaryKernelCollection>(() => AuxiliaryKernelCollection.ReadInPlace(auxKc, names.AuxKcName)),
        _receipt = new Lazy<KextReceipt>(() => KextReceipt.FromBytes(receipt.Span, names.ReceiptName)),
    };

    /// <summary>Every check in order (the one trace record <c>why</c> and kmd write).</summary>
    public required ImmutableArray<TrustCheck> Trace { get; init; }

    /// <summary>The failed checks.</summary>
    public IEnumerable<TrustCheck> Failures => Trace.Where(c => c.Outcome == TrustOutcome.Failed);

    /// <summary>The first refusal code, or null when nothing failed.</summary>
    public TrustCode? Refusal => Failures.FirstOrDefault()?.Code;
}

/// <summary>
/// iBoot's startup verification for an Apple-silicon Mac. LocalPolicy: signed by this Mac's SEP key, this ECID, the
/// current nonce (no replay), consistent — otherwise the Mac starts recoveryOS. Then, only when the policy is Reduced or
/// Permissive with <c>smb2</c> and an <c>auxi</c>: the AuxKC Image4 signed by the same key and ECID, its manifest hash
/// equal to <c>auxi</c> (an older SEP-signed AuxKC is refused), its <c>DGST</c> equal to its IM4P, the AuxKC file equal to
/// the signed payload, an arm64e MH_FILESET, the receipt's SHA-384 equal to <c>auxr</c>, and the user-approved kext list's
/// SHA-384 equal to <c>auxp</c>. Any AuxKC failure: macOS starts without third-party kexts. Never throws on malformed input.
/// </summary>
/// <remarks>
/// The dominant cost is one SHA-384 over the IM4P (the AuxKC), read in place. The kexts and the receipt are parsed later
/// (<see cref="BootResult.AuxKc"/>, <see cref="BootResult.Receipt"/>, the kernel): their bytes are bound by <c>auxi</c> and
/// <c>auxr</c>, signed together in the policy, and the kernel re-checks that the receipt describes the AuxKC.
/// </remarks>
internal static class Iboot
{
    /// <summary>Verifies and decides what to start.</summary>
    /// <exception cref="ArgumentException">The SEP public key itself is not a valid P-384 key (a configuration error, not input).</exception>
    public static BootResult Boot(IbootInputs inputs)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(inputs.CurrentNonceHash);
        using var key = ECDsa.Create();
        try
        {
            key.ImportSubjectPublicKeyInfo(inputs.SepPublicKey.Span, out _);
        }
        catch (CryptographicException e)
        {
            throw new ArgumentException("the SEP public key is not a valid SubjectPublicKeyInfo", nameof(inputs), e);
        }
        var trace = ImmutableArray.CreateBuilder<TrustCheck>();
        var policy = VerifyPolicy(inputs, key, trace);
        if (policy is null)
        {
            return new BootResult { Target = BootTarget.RecoveryOS, AuxKcStatus = AuxKcStatus.NotEnabled, Trace = trace.ToImmutable() };
        }
        if (policy.SecurityMode == SecurityMode.Full || !policy.ThirdPartyKextsEnabled)
        {
            trace.Add(new(TrustStep.ThirdPartyKexts, TrustOutcome.Skipped, null, policy.SecurityMode == SecurityMode.Full
                ? "Full Security: no third-party kexts"
                : $"{policy.SecurityMode} Security without third-party kexts enabled (smb2)"));
            return Done(policy, AuxKcStatus.NotEnabled, trace);
        }
        if (policy.AuxKcImage4Hash is null)
        {
            trace.Add(new(TrustStep.ThirdPartyKexts, TrustOutcome.Skipped, null, "third-party kexts are enabled but no AuxKC has been built (no auxi)"));
            return Done(policy, AuxKcStatus.NotBuilt, trace);
        }
        trace.Add(new(TrustStep.ThirdPartyKexts, TrustOutcome.Passed, null, $"{policy.SecurityMode} Security with third-party kexts: the AuxKC must verify"));
        var (auxKc, receipt) = VerifyAuxKc(inputs, key, policy, trace);
        return auxKc is null || receipt is null
            ? Done(policy, AuxKcStatus.Refused, trace)
            : Done(policy, AuxKcStatus.Loaded, trace).WithAuxKc(auxKc.Value, receipt.Value, inputs);
    }

    private static BootResult Done(LocalPolicy policy, AuxKcStatus status, ImmutableArray<TrustCheck>.Builder trace) =>
        new() { Target = BootTarget.MacOS, Policy = policy, AuxKcStatus = status, Trace = trace.ToImmutable() };

    private static LocalPolicy? VerifyPolicy(IbootInputs inputs, ECDsa key, ImmutableArray<TrustCheck>.Builder trace)
    {
        LocalPolicyVerification verification;
        Im4Manifest manifest;
        try
        {
            manifest = Im4Manifest.FromBytes(inputs.LocalPolicy, "LocalPolicy");
            verification = LocalPolicyVerifier.Verify(manifest, key, inputs.Ecid, inputs.CurrentNonceHash);
        }
        catch (Exception e) when (e is Image4FormatException or LocalPolicyException or CryptographicException or ArgumentException)
        {
            trace.Add(new(TrustStep.LocalPolicyFormat, TrustOutcome.Failed, TrustCode.LocalPolicyMalformed, e.Message));
            return null;
        }
        if (CertificateMismatch(inputs, manifest) is { } mismatch)
        {
            trace.Add(new(TrustStep.LocalPolicyFormat, TrustOutcome.Passed, null, "decodes as an IM4M"));
            trace.Add(new(TrustStep.LocalPolicySignature, TrustOutcome.Failed, TrustCode.LocalPolicyNotSignedByThisMac, mismatch));
            return null;
        }
        // The verifier names each failure with the code of its step, so the trace only orders them.
        (TrustStep Step, TrustCode Code, string Ok)[] checks =
        [
            (TrustStep.LocalPolicyFormat, TrustCode.LocalPolicyMalformed, "well-formed LocalPolicy"),
            (TrustStep.LocalPolicySignature, TrustCode.LocalPolicyNotSignedByThisMac, "signed by this Mac's Secure Enclave"),
            (TrustStep.LocalPolicyEcid, TrustCode.LocalPolicyForAnotherMac, $"personalized for ECID 0x{inputs.Ecid:x16}"),
            (TrustStep.LocalPolicyNonce, TrustCode.LocalPolicyReplayed, "carries the current Local Policy Nonce hash"),
            (TrustStep.LocalPolicyConsistency, TrustCode.LocalPolicyInconsistent, "consistent settings"),
        ];
        var malformed = verification.Has(TrustCode.LocalPolicyMalformed);
        foreach (var (step, code, ok) in checks)
        {
            var failures = verification.Failures.Where(f => f.Code == code).ToList();
            if (failures.Count > 0)
            {
                trace.Add(new(step, TrustOutcome.Failed, code, string.Join("; ", failures.Select(f => f.Detail))));
            }
            else if (malformed && step is not (TrustStep.LocalPolicyFormat or TrustStep.LocalPolicySignature))
            {
                trace.Add(new(step, TrustOutcome.Skipped, null, "not checked: the policy does not decode"));
            }
            else
            {
                trace.Add(new(step, TrustOutcome.Passed, null, ok));
            }
        }
        return verification.Valid ? verification.Policy : null;
    }

    private static string? CertificateMismatch(IbootInputs inputs, Im4Manifest manifest) =>
        inputs.SepCertificate is { } expected && (manifest.CertificateChain.Count != 1 || !manifest.CertificateChain[0].Span.SequenceEqual(expected.Span))
            ? "the embedded certificate is not this Mac's Secure Enclave certificate"
            : null;

    private static (ReadOnlyMemory<byte>?, ReadOnlyMemory<byte>?) VerifyAuxKc(IbootInputs inputs, ECDsa key, LocalPolicy policy, ImmutableArray<TrustCheck>.Builder trace)
    {
        bool Fail(TrustStep step, TrustCode code, string detail)
        {
            trace.Add(new(step, TrustOutcome.Failed, code, detail));
            return false;
        }
        void Pass(TrustStep step, string detail) => trace.Add(new(step, TrustOutcome.Passed, null, detail));

        if (inputs.AuxKcImage4 is not { } image4Bytes)
        {
            Fail(TrustStep.AuxKcImage4Format, TrustCode.AuxKcImage4Missing, "the LocalPolicy names an AuxKC (auxi) but there is no AuxKC Image4");
            return (null, null);
        }
        Image4View image4;
        try
        {
            image4 = Image4View.Read(image4Bytes);
        }
        catch (Exception e) when (e is Image4FormatException or AsnContentException)
        {
            Fail(TrustStep.AuxKcImage4Format, TrustCode.AuxKcImage4Malformed, e.Message);
            return (null, null);
        }
        if (image4.PayloadType != AuxKcImage4.PayloadType)
        {
            Fail(TrustStep.AuxKcImage4Format, TrustCode.AuxKcImage4Malformed, $"IM4P type is '{image4.PayloadType}', not '{AuxKcImage4.PayloadType}'");
            return (null, null);
        }
        Pass(TrustStep.AuxKcImage4Format, $"IMG4 with an '{AuxKcImage4.PayloadType}' payload of {image4.Payload.Length} bytes");

        var signature = SecureEnclaveSignature.Verify(image4.Manifest, key);
        if (!signature.Valid || CertificateMismatch(inputs, image4.Manifest) is not null)
        {
            Fail(TrustStep.AuxKcImage4Signature, TrustCode.AuxKcImage4NotSignedByThisMac, signature.Failure ?? CertificateMismatch(inputs, image4.Manifest)!);
            return (null, null);
        }
        Pass(TrustStep.AuxKcImage4Signature, "signed by the same Secure Enclave key as the LocalPolicy");

        if (image4.Manifest.ManifestProperties.Find(LocalPolicy.EcidTag) is not Im4Integer { Value: var ecid } || ecid != inputs.Ecid)
        {
            Fail(TrustStep.AuxKcImage4Ecid, TrustCode.AuxKcImage4ForAnotherMac, $"the AuxKC manifest is not personalized for ECID 0x{inputs.Ecid:x16}");
            return (null, null);
        }
        Pass(TrustStep.AuxKcImage4Ecid, $"personalized for ECID 0x{inputs.Ecid:x16}");

        if (Sha384Digest.Compute(image4.Manifest.Encode()) != policy.AuxKcImage4Hash)
        {
            Fail(TrustStep.AuxKcImage4Current, TrustCode.AuxKcRollback,
                "a Secure Enclave-signed AuxKC Image4, but not the one this LocalPolicy names (auxi): an older AuxKC is refused");
            return (null, null);
        }
        Pass(TrustStep.AuxKcImage4Current, "its manifest hash is the LocalPolicy's auxi");

        var digest = image4.Manifest.Body.FindObject(AuxKcImage4.PayloadType)?.Find(AuxKcImage4.DigestTag);
        if (digest is not Im4OctetString { Value.Length: Sha384Digest.Length } dgst)
        {
            Fail(TrustStep.AuxKcImage4Digest, TrustCode.AuxKcImage4Malformed, $"the manifest has no 48-byte '{AuxKcImage4.PayloadType}' {AuxKcImage4.DigestTag}");
            return (null, null);
        }
        if (Sha384Digest.FromBytes(dgst.Value.Span) != Sha384Digest.Compute(image4.Im4pElement.Span))
        {
            Fail(TrustStep.AuxKcImage4Digest, TrustCode.AuxKcImage4PayloadModified, "SHA-384 of the IM4P is not the signed DGST: the payload was modified");
            return (null, null);
        }
        Pass(TrustStep.AuxKcImage4Digest, "SHA-384 of the IM4P is the signed DGST");

        var payload = image4.Payload;
        if (inputs.AuxKc is { } auxKcFile && !auxKcFile.Span.SequenceEqual(payload.Span))
        {
            Fail(TrustStep.AuxKcBytes, TrustCode.AuxKcModified,
                $"the AuxKC file ({auxKcFile.Length} bytes) is not the signed AuxKC ({payload.Length} bytes): modified or rebuilt without the Secure Enclave");
            return (null, null);
        }
        Pass(TrustStep.AuxKcBytes, inputs.AuxKc is null ? "using the signed payload" : "the AuxKC file is the signed payload");

        try
        {
            var file = MachOFile.FromBytes(payload, inputs.AuxKcName);
            if (file.IsFat || file.Slices[0].FileType != MachOFileType.Fileset || file.Slices[0].Architecture != KextArchitecture.Arm64.SliceName())
            {
                Fail(TrustStep.AuxKcFormat, TrustCode.AuxKcMalformed, "the signed AuxKC is not a thin arm64e MH_FILESET (LocalPolicies exist only on Apple silicon)");
                return (null, null);
            }
            Pass(TrustStep.AuxKcFormat, $"{file.Slices[0].Architecture} MH_FILESET of {file.Slices[0].FilesetEntries.Count} fileset entries");
        }
        catch (MachOFormatException e)
        {
            Fail(TrustStep.AuxKcFormat, TrustCode.AuxKcMalformed, e.Message);
            return (null, null);
        }

        if (inputs.Receipt is not { } receiptBytes)
        {
            Fail(TrustStep.Receipt, TrustCode.ReceiptMissing, "the LocalPolicy names a kext receipt (auxr) but there is none");
            return (null, null);
        }
        if (Sha384Digest.Compute(receiptBytes.Span) != policy.AuxKcReceiptHash)
        {
            Fail(TrustStep.Receipt, TrustCode.ReceiptModified, "SHA-384 of the kext receipt is not the LocalPolicy's auxr");
            return (null, null);
        }
        Pass(TrustStep.Receipt, "SHA-384 of the kext receipt is the LocalPolicy's auxr");

        if (policy.AuxKextPolicyHash is not { } auxp)
        {
            trace.Add(new(TrustStep.UserApprovedKextList, TrustOutcome.Skipped, null, "the LocalPolicy names no user-approved kext list (no auxp)"));
        }
        else if (inputs.Uakl?.Invoke() is not { } uakl)
        {
            Fail(TrustStep.UserApprovedKextList, TrustCode.UaklMissing, "the LocalPolicy names a user-approved kext list (auxp) but there is none");
            return (null, null);
        }
        else if (Sha384Digest.Compute(uakl.Bytes.Span) is var uaklHash && uaklHash != auxp)
        {
            var cause = uakl.ChangeCause
                ?? "it changed since the last authorized kmd rebuild: an approval or removal, a change of SIP or kext consent, or an edit by hand";
            Fail(TrustStep.UserApprovedKextList, TrustCode.UaklModified,
                $"auxp mismatch: the user-authorized kext list on disk (SHA-384 {uaklHash}) is not the one the LocalPolicy names ({auxp}): {cause}; no third-party kext loads until an administrator runs kmutil create");
            return (null, null);
        }
        else
        {
            Pass(TrustStep.UserApprovedKextList, "auxp matches the UAKL");
        }

        return (payload, receiptBytes);
    }
}

/// <summary>
/// A zero-copy view of an AuxKC IMG4 for iBoot: the envelope <c>SEQUENCE { "IMG4", IM4P, [0] IM4M }</c> read with a strict
/// DER reader, the IM4P kept as a slice of the input (hashed in place, once), the IM4M decoded strictly, and the payload
/// OCTET STRING located inside the IM4P without copying. Only the DGST check gives the IM4P bytes meaning.
/// </summary>
internal sealed record Image4View(ReadOnlyMemory<byte> Im4pElement, string PayloadType, ReadOnlyMemory<byte> Payload, Im4Manifest Manifest)
{
    private static readonly Asn1Tag ManifestTag = new(TagClass.ContextSpecific, 0, isConstructed: true);

    public static Image4View Read(ReadOnlyMemory<byte> der)
    {
        var outer = new AsnReader(der, AsnEncodingRules.DER);
        var img4 = outer.ReadSequence();
        outer.ThrowIfNotEmpty();
        if (img4.ReadCharacterString(UniversalTagNumber.IA5String) != Img4.Magic)
        {
            throw new AsnContentException("not an IMG4");
        }
        var im4p = img4.ReadEncodedValue();
        var wrapper = img4.ReadSequence(ManifestTag);
        var manifest = Im4Manifest.FromBytes(wrapper.ReadEncodedValue(), "AuxKC Image4 manifest");
        wrapper.ThrowIfNotEmpty();
        img4.ThrowIfNotEmpty();

        var payload = new AsnReader(im4p, AsnEncodingRules.DER).ReadSequence();
        if (payload.ReadCharacterString(UniversalTagNumber.IA5String) != Im4Payload.Magic)
        {
            throw new AsnContentException("the first element is not an IM4P");
        }
        var type = payload.ReadCharacterString(UniversalTagNumber.IA5String);
        payload.ReadCharacterString(UniversalTagNumber.IA5String);
        if (!payload.TryReadPrimitiveOctetString(out var data))
        {
            throw new AsnContentException("the IM4P payload is not a primitive OCTET STRING");
        }
        return new Image4View(im4p, type, data, manifest);
    }
}

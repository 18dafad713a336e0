using System.Security.Cryptography;
using KextTrust.Boot.Enclave;
using KextTrust.Kexts.Trust;
using KextTrust.Formats.Image4;

namespace KextTrust.Boot.Policy;

/// <summary>
/// The outcome of verifying a LocalPolicy. <see cref="Policy"/> is set only when <see cref="Valid"/>,
/// so a refused policy cannot be used by mistake; <see cref="Failures"/> lists every reason.
/// </summary>
public sealed record LocalPolicyVerification
{
    internal LocalPolicyVerification(LocalPolicy? parsed, IReadOnlyList<LocalPolicyFailure> failures)
    {
        Failures = failures;
        Policy = failures.Count == 0 ? parsed : null;
    }

    /// <summary>True when no check failed.</summary>
    public bool Valid => Failures.Count == 0;

    /// <summary>The verified policy, or null when not valid.</summary>
    public LocalPolicy? Policy { get; }

    /// <summary>Every failed check.</summary>
    public IReadOnlyList<LocalPolicyFailure> Failures { get; }

    /// <summary>True if some failure has this code.</summary>
    public bool Has(TrustCode code) => Failures.Any(f => f.Code == code);
}

/// <summary>
/// What iBoot checks before honouring a LocalPolicy: signed by this Mac's SEP key (over the
/// original body bytes), personalized for this ECID, carrying the SEP's current <c>lpnh</c>
/// (so an older policy cannot be replayed), well formed and consistent.
/// </summary>
internal static class LocalPolicyVerifier
{
    /// <summary>Verifies a decoded LocalPolicy manifest against this Mac's SEP key, ECID and current <c>lpnh</c>.</summary>
    public static LocalPolicyVerification Verify(Im4Manifest manifest, ECDsa sepPublicKey, ulong ecid, Sha384Digest currentNonceHash)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(currentNonceHash);
        var failures = new List<LocalPolicyFailure>();
        var signature = SecureEnclaveSignature.Verify(manifest, sepPublicKey);
        if (!signature.Valid)
        {
            failures.Add(new(TrustCode.LocalPolicyNotSignedByThisMac, signature.Failure!));
        }
        LocalPolicy policy;
        try
        {
            policy = LocalPolicy.FromManifest(manifest);
        }
        catch (LocalPolicyException e)
        {
            failures.AddRange(e.Failures);
            return new LocalPolicyVerification(null, failures);
        }
        if (policy.Ecid != ecid)
        {
            failures.Add(new(TrustCode.LocalPolicyForAnotherMac, $"policy ECID 0x{policy.Ecid:x16} is not this Mac's 0x{ecid:x16}"));
        }
        if (policy.LocalPolicyNonceHash != currentNonceHash)
        {
            failures.Add(new(TrustCode.LocalPolicyReplayed,
                "lpnh is not the Secure Enclave's current Local Policy Nonce hash (stale or replayed policy)"));
        }
        failures.AddRange(policy.CheckConsistency());
        return new LocalPolicyVerification(policy, failures);
    }

    /// <summary>Decodes the IM4M bytes (malformed DER becomes a <see cref="TrustCode.LocalPolicyMalformed"/> failure) and verifies.</summary>
    public static LocalPolicyVerification Verify(ReadOnlyMemory<byte> im4m, string? sourceName, ECDsa sepPublicKey, ulong ecid,
        Sha384Digest currentNonceHash)
    {
        Im4Manifest manifest;
        try
        {
            manifest = Im4Manifest.FromBytes(im4m, sourceName);
        }
        catch (Image4FormatException e)
        {
            return new LocalPolicyVerification(null, [new(TrustCode.LocalPolicyMalformed, e.Message)]);
        }
        return Verify(manifest, sepPublicKey, ecid, currentNonceHash);
    }

    /// <summary>Decodes the IM4M bytes and verifies them against the given Secure Enclave's public key, ECID and current nonce hash.</summary>
    public static LocalPolicyVerification Verify(ReadOnlyMemory<byte> im4m, string? sourceName, SecureEnclave secureEnclave)
    {
        ArgumentNullException.ThrowIfNull(secureEnclave);
        using var key = secureEnclave.CreatePublicKey();
        return Verify(im4m, sourceName, key, secureEnclave.Ecid, secureEnclave.CurrentLocalPolicyNonceHash);
    }

    /// <summary>Verifies against the given Secure Enclave's public key, ECID and current nonce hash.</summary>
    public static LocalPolicyVerification Verify(Im4Manifest manifest, SecureEnclave secureEnclave)
    {
        ArgumentNullException.ThrowIfNull(secureEnclave);
        using var key = secureEnclave.CreatePublicKey();
        return Verify(manifest, key, secureEnclave.Ecid, secureEnclave.CurrentLocalPolicyNonceHash);
    }
}

using KextTrust.Formats;

namespace KextTrust.Boot.Policy;

/// <summary>Why a LocalPolicy (or an AuxKC Image4) was refused.</summary>
public enum LocalPolicyFailureCode
{
    /// <summary>Not a well-formed LocalPolicy: bad DER, wrong property types or lengths, unknown properties.</summary>
    Malformed,
    /// <summary>Not signed by this Mac's Secure Enclave key.</summary>
    BadSignature,
    /// <summary>Personalized for another Mac.</summary>
    EcidMismatch,
    /// <summary><c>lpnh</c> is not the Secure Enclave's current nonce hash (a replayed older policy).</summary>
    NonceMismatch,
    /// <summary>The settings contradict each other (e.g. <c>smb2</c> without <c>smb0</c>).</summary>
    Inconsistent,
    /// <summary>The LocalPolicy does not allow an AuxKC (no <c>smb2</c>).</summary>
    AuxKcNotAllowed,
    /// <summary>An AuxKC hash (<c>auxi</c>, <c>DGST</c>) does not match.</summary>
    DigestMismatch,
}

/// <summary>One reason a policy or an AuxKC Image4 was refused.</summary>
public sealed record LocalPolicyFailure(LocalPolicyFailureCode Code, string Detail)
{
    /// <inheritdoc/>
    public override string ToString() => $"{Code}: {Detail}";
}

/// <summary>Thrown when a LocalPolicy cannot be read or signed; carries every reason.</summary>
public sealed class LocalPolicyException : KextTrustException
{
    /// <summary>Creates the exception from one or more reasons.</summary>
    public LocalPolicyException(IReadOnlyList<LocalPolicyFailure> failures, Exception? inner = null)
        : base("LocalPolicy refused: " + string.Join("; ", failures), inner)
    {
        if (failures.Count == 0)
        {
            throw new ArgumentException("at least one failure", nameof(failures));
        }
        Failures = failures;
    }

    /// <summary>Creates the exception from one reason.</summary>
    public LocalPolicyException(LocalPolicyFailureCode code, string detail, Exception? inner = null)
        : this([new LocalPolicyFailure(code, detail)], inner)
    {
    }

    /// <summary>The reasons.</summary>
    public IReadOnlyList<LocalPolicyFailure> Failures { get; }

    /// <summary>The first reason's code.</summary>
    public override string ErrorCode => Failures[0].Code.ToString();

    /// <inheritdoc/>
    public override ErrorKind Kind => ErrorKind.Refused;
}

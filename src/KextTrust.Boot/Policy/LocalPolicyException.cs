using KextTrust.Formats;
using KextTrust.Kexts.Trust;

namespace KextTrust.Boot.Policy;

/// <summary>
/// One reason a LocalPolicy was refused, in the one code vocabulary: the code iBoot's startup trace gives the same fact
/// (<see cref="TrustCode.LocalPolicyMalformed"/>, <see cref="TrustCode.LocalPolicyNotSignedByThisMac"/>,
/// <see cref="TrustCode.LocalPolicyForAnotherMac"/>, <see cref="TrustCode.LocalPolicyReplayed"/>,
/// <see cref="TrustCode.LocalPolicyInconsistent"/>).
/// </summary>
public sealed record LocalPolicyFailure(TrustCode Code, string Detail)
{
    /// <summary><c>local-policy-replayed: detail</c>, the code named as every JSON document and text output names it.</summary>
    public override string ToString() => $"{Code.Name()}: {Detail}";
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
    public LocalPolicyException(TrustCode code, string detail, Exception? inner = null)
        : this([new LocalPolicyFailure(code, detail)], inner)
    {
    }

    /// <summary>The reasons.</summary>
    public IReadOnlyList<LocalPolicyFailure> Failures { get; }

    /// <summary>The first reason's code, as the startup trace names it (<c>local-policy-inconsistent</c>).</summary>
    public override string ErrorCode => Failures[0].Code.Name();

    /// <inheritdoc/>
    public override ErrorKind Kind => ErrorKind.Refused;
}

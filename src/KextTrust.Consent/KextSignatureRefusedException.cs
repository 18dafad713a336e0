using KextTrust.Formats;
using KextTrust.Kexts.Signing;
using KextTrust.Kexts.Trust;

namespace KextTrust.Consent;

/// <summary>
/// A kext's signature refused by a consent action (approving a kext changed since its alert while SIP enforces
/// signatures, listing it in a kext-policy profile): a refusal (exit 1) whose code is the one <c>why</c>, kmd and the
/// audit give the same verdict (<see cref="TrustCodes.ForSignature(KextSignatureVerification)"/>:
/// <c>signature-invalid</c>, <c>not-kext-signing-authority</c>, …, <c>KMErrorDomain</c> 29), and whose message names the
/// verifier's problem code and page as <c>verify</c> does.
/// </summary>
public sealed class KextSignatureRefusedException : KextTrustException
{
    /// <summary>Creates the refusal of <paramref name="signature"/>, which must be refused (<see cref="KextSignatureVerification.Refusal"/> set).</summary>
    /// <param name="signature">The one verifier's verdict.</param>
    /// <param name="path">The kext concerned, when any.</param>
    /// <param name="message">Why the action refuses it; the verdict's refusal (problem code, page) is appended.</param>
    internal KextSignatureRefusedException(KextSignatureVerification signature, string? path, string message)
        : base(NamingPathOnce(path, $"{message}: {Refused(signature)}"))
    {
        Code = TrustCodes.ForSignature(signature)!.Value;
        Refusal = signature.Refusal!;
        Path = path;
    }

    /// <summary>The code <c>why</c> gives the same verdict.</summary>
    public TrustCode Code { get; }

    /// <summary>The verifier's refusal: its problem code, message and page.</summary>
    public KextSignatureRefusal Refusal { get; }

    /// <summary>The kext concerned, when any.</summary>
    public string? Path { get; }

    /// <summary>The trust code's name, as <c>why --json</c>'s <c>code</c>: <c>signature-invalid</c>.</summary>
    public override string ErrorCode => Code.Name();

    /// <inheritdoc/>
    public override ErrorKind Kind => ErrorKind.Refused;

    /// <summary>"signature-invalid (KMErrorDomain 29)", as <c>why</c>'s text names the code.</summary>
    public override string Label => Code.KMErrorCode() is { } k ? $"{Code.Name()} (KMErrorDomain {k})" : Code.Name();

    private static KextSignatureRefusal Refused(KextSignatureVerification signature)
    {
        ArgumentNullException.ThrowIfNull(signature);
        return signature.Refusal ?? throw new ArgumentException("the signature is not refused", nameof(signature));
    }
}

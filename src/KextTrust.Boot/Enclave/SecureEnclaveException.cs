using KextTrust.Formats;

namespace KextTrust.Boot.Enclave;

/// <summary>Why a Secure Enclave operation failed.</summary>
public enum SecureEnclaveError
{
    /// <summary>Create was called on a directory that already holds a sealed SEP key.</summary>
    AlreadyProvisioned,

    /// <summary>Open was called on a directory that holds no sealed SEP state.</summary>
    NotProvisioned,

    /// <summary>A sealed file is too short, has a wrong header, or its plaintext is malformed.</summary>
    MalformedSealedState,

    /// <summary>
    /// AES-GCM authentication failed: wrong hardware UID, another Mac's ECID, or a modified file.
    /// </summary>
    UnsealFailed,

    /// <summary>The SEP refused to sign (e.g. the manifest is not personalized for this ECID).</summary>
    SigningRefused,
}

/// <summary>A failure of the simulated Secure Enclave, with a typed <see cref="Error"/>.</summary>
public sealed class SecureEnclaveException : KextTrustException
{
    /// <summary>Creates the exception.</summary>
    public SecureEnclaveException(SecureEnclaveError error, string message, Exception? inner = null)
        : base(message, inner) => Error = error;

    /// <summary>The kind of failure.</summary>
    public SecureEnclaveError Error { get; }

    /// <inheritdoc/>
    public override string ErrorCode => Error.ToString();

    /// <summary>The Secure Enclave refused (a sealed file it will not open, a nonce it will not sign for).</summary>
    public override ErrorKind Kind => ErrorKind.Refused;
}

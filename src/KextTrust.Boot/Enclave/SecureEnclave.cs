using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using KextTrust.Formats.Image4;

namespace KextTrust.Boot.Enclave;

/// <summary>
/// The simulated Secure Enclave of one Mac. It owns an ECDSA P-384 signing key that never leaves
/// this type (only the public key and a self-issued certificate are exposed), sealed on disk to
/// the hardware UID and ECID (see the sealed-file layout on <c>SealedStore</c>), and the Local
/// Policy Nonce (LPN), of which only the hash <c>lpnh</c> is ever revealed. One instance per
/// directory at a time; instance methods are thread-safe; there is no static mutable state.
/// </summary>
/// <remarks>
/// Files in the directory: <c>sep-key.sealed</c> (DER <c>SEQUENCE { INTEGER 1, OCTET STRING pkcs8,
/// OCTET STRING certificate }</c>, sealed) and <c>lpn.sealed</c> (the 32-byte LPN, sealed). After provisioning the
/// SEP never writes <c>lpn.sealed</c> itself: a new nonce is handed out sealed (<see cref="PrepareLocalPolicyNonce"/>)
/// for the caller to install atomically together with the LocalPolicy that carries it.
/// </remarks>
public sealed class SecureEnclave : IDisposable
{
    /// <summary>File name of the sealed signing key.</summary>
    internal const string KeyFileName = "sep-key.sealed";

    /// <summary>File name of the sealed Local Policy Nonce.</summary>
    internal const string NonceFileName = "lpn.sealed";

    /// <summary>Length of the Local Policy Nonce in bytes.</summary>
    internal const int LocalPolicyNonceLength = 32;

    /// <summary>Minimum accepted hardware-UID length in bytes.</summary>
    internal const int MinimumUidLength = 16;

    private const string KeyPurpose = "sep-signing-key";
    private const string NoncePurpose = "local-policy-nonce";

    private readonly object _gate = new();
    private readonly SealedStore _store;
    private readonly string _directory;
    private readonly ECDsa _key;
    private readonly byte[] _publicKey;
    private readonly byte[] _certificate;
    private Sha384Digest _nonceHash;
    private bool _disposed;

    private SecureEnclave(string directory, SealedStore store, ulong ecid, ECDsa key, byte[] certificate, Sha384Digest nonceHash)
    {
        _directory = directory;
        _store = store;
        Ecid = ecid;
        _key = key;
        _publicKey = key.ExportSubjectPublicKeyInfo();
        _certificate = certificate;
        _nonceHash = nonceHash;
    }

    /// <summary>
    /// Provisions a new Secure Enclave in <paramref name="directory"/> (created if missing): a fresh
    /// P-384 key, its self-issued certificate (CN "Secure Enclave &lt;ECID hex&gt;") and a first LPN,
    /// all sealed to <paramref name="hardwareUid"/> and <paramref name="ecid"/>.
    /// </summary>
    /// <exception cref="SecureEnclaveException"><see cref="SecureEnclaveError.AlreadyProvisioned"/>.</exception>
    internal static SecureEnclave Create(string directory, ReadOnlySpan<byte> hardwareUid, ulong ecid)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        CheckUid(hardwareUid);
        Directory.CreateDirectory(directory);
        var keyPath = Path.Combine(directory, KeyFileName);
        if (File.Exists(keyPath))
        {
            throw new SecureEnclaveException(SecureEnclaveError.AlreadyProvisioned,
                $"'{directory}' already holds a sealed Secure Enclave key");
        }
        var provisioned = Provision(directory, hardwareUid, ecid);
        try
        {
            // Provisioning writes the first nonce itself: there is no LocalPolicy yet that an interrupted write could invalidate.
            SealedStore.WriteAtomically(keyPath, provisioned.SealedKey.Span);
            SealedStore.WriteAtomically(Path.Combine(directory, NonceFileName), provisioned.FirstNonce.SealedBytes.Span);
            provisioned.Enclave.ReloadLocalPolicyNonce();
            return provisioned.Enclave;
        }
        catch
        {
            provisioned.Enclave.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Provisions a new Secure Enclave in memory, writing nothing: a fresh P-384 key, its self-issued certificate and a
    /// first LPN, sealed to <paramref name="hardwareUid"/> and <paramref name="ecid"/>. The caller stores
    /// <see cref="ProvisionedSecureEnclave.SealedKey"/> as <see cref="KeyFileName"/> and the first nonce's sealed bytes
    /// as <see cref="NonceFileName"/> in <paramref name="directory"/>, in the same atomic change as the first LocalPolicy
    /// the returned enclave signs (its current nonce hash is already the first nonce's).
    /// </summary>
    internal static ProvisionedSecureEnclave Provision(string directory, ReadOnlySpan<byte> hardwareUid, ulong ecid)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        CheckUid(hardwareUid);
        var store = new SealedStore(hardwareUid, ecid);
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        try
        {
            var certificate = CreateCertificate(key, ecid);
            var pkcs8 = key.ExportPkcs8PrivateKey();
            var writer = new AsnWriter(AsnEncodingRules.DER);
            writer.PushSequence();
            writer.WriteInteger(1);
            writer.WriteOctetString(pkcs8);
            writer.WriteOctetString(certificate);
            writer.PopSequence();
            var plaintext = writer.Encode();
            byte[] sealedKey;
            try
            {
                sealedKey = store.Seal(KeyPurpose, plaintext);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(pkcs8);
                CryptographicOperations.ZeroMemory(plaintext);
            }
            var enclave = new SecureEnclave(directory, store, ecid, key, certificate, Sha384Digest.Compute([]));
            var first = enclave.PrepareLocalPolicyNonce();
            enclave._nonceHash = first.Hash;
            return new ProvisionedSecureEnclave(enclave, sealedKey, first);
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }

    /// <summary>Reopens a provisioned Secure Enclave by unsealing its key and current LPN.</summary>
    /// <exception cref="SecureEnclaveException">
    /// <see cref="SecureEnclaveError.NotProvisioned"/>, <see cref="SecureEnclaveError.MalformedSealedState"/> or
    /// <see cref="SecureEnclaveError.UnsealFailed"/> (wrong UID/ECID or a modified file).
    /// </exception>
    internal static SecureEnclave Open(string directory, ReadOnlySpan<byte> hardwareUid, ulong ecid)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        CheckUid(hardwareUid);
        var store = new SealedStore(hardwareUid, ecid);
        var plaintext = store.Read(Path.Combine(directory, KeyFileName), KeyPurpose);
        byte[]? pkcs8 = null;
        ECDsa? key = null;
        try
        {
            var reader = new AsnReader(plaintext, AsnEncodingRules.DER);
            var sequence = reader.ReadSequence();
            reader.ThrowIfNotEmpty();
            if (!sequence.TryReadInt32(out var version) || version != 1)
            {
                throw Malformed("unknown sealed key version", null);
            }
            pkcs8 = sequence.ReadOctetString();
            var certificate = sequence.ReadOctetString();
            sequence.ThrowIfNotEmpty();
            key = ECDsa.Create();
            key.ImportPkcs8PrivateKey(pkcs8, out var read);
            if (read != pkcs8.Length || key.KeySize != 384)
            {
                throw Malformed("the sealed key is not a single P-384 private key", null);
            }
            using (var cert = X509CertificateLoader.LoadCertificate(certificate))
            {
                if (!cert.PublicKey.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(key.ExportSubjectPublicKeyInfo()))
                {
                    throw Malformed("the sealed certificate does not match the sealed key", null);
                }
            }
            return new SecureEnclave(directory, store, ecid, key, certificate, ReadNonceHash(store, directory));
        }
        catch (Exception e) when (e is AsnContentException or CryptographicException)
        {
            key?.Dispose();
            throw Malformed(e.Message, e);
        }
        catch
        {
            key?.Dispose();
            throw;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plaintext);
            if (pkcs8 is not null)
            {
                CryptographicOperations.ZeroMemory(pkcs8);
            }
        }
    }

    /// <summary>This Mac's ECID (Exclusive Chip ID).</summary>
    public ulong Ecid { get; }

    /// <summary>The SEP public key as DER SubjectPublicKeyInfo.</summary>
    public ReadOnlyMemory<byte> PublicKey => _publicKey;

    /// <summary>The self-issued X.509 certificate (DER) for the SEP key. Informational: never a trust anchor.</summary>
    public ReadOnlyMemory<byte> Certificate => _certificate;

    /// <summary>A new public-only <see cref="ECDsa"/> for the SEP key (the caller disposes it).</summary>
    internal ECDsa CreatePublicKey()
    {
        var key = ECDsa.Create();
        key.ImportSubjectPublicKeyInfo(_publicKey, out _);
        return key;
    }

    /// <summary><c>lpnh</c>: SHA-384 of the current Local Policy Nonce.</summary>
    public Sha384Digest CurrentLocalPolicyNonceHash
    {
        get
        {
            lock (_gate)
            {
                ThrowIfDisposed();
                return _nonceHash;
            }
        }
    }

    /// <summary>
    /// Draws the next Local Policy Nonce (32 fresh random bytes) and returns it sealed, with its hash, WITHOUT
    /// installing it: the current nonce stays the one that verifies. The caller stages
    /// <see cref="PendingLocalPolicyNonce.SealedBytes"/> as <see cref="NonceFileName"/> in the same atomic change as
    /// the LocalPolicy that carries <see cref="PendingLocalPolicyNonce.Hash"/>, so an interrupted change leaves the
    /// old nonce (and the old LocalPolicy) valid, and a committed one leaves only the new pair valid. Then
    /// <see cref="ReloadLocalPolicyNonce"/> makes this instance see the installed nonce.
    /// </summary>
    internal PendingLocalPolicyNonce PrepareLocalPolicyNonce()
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            var lpn = RandomNumberGenerator.GetBytes(LocalPolicyNonceLength);
            try
            {
                return new PendingLocalPolicyNonce(Sha384Digest.Compute(lpn), _store.Seal(NoncePurpose, lpn));
            }
            finally
            {
                CryptographicOperations.ZeroMemory(lpn);
            }
        }
    }

    /// <summary>
    /// True when <paramref name="pending"/> was sealed by this Secure Enclave (this hardware UID and ECID) and its
    /// sealed nonce hashes to <see cref="PendingLocalPolicyNonce.Hash"/>: installing it makes that hash current.
    /// </summary>
    internal bool CanInstall(PendingLocalPolicyNonce pending)
    {
        ArgumentNullException.ThrowIfNull(pending);
        lock (_gate)
        {
            ThrowIfDisposed();
            if (!_store.TryUnseal(pending.SealedBytes.Span, NoncePurpose, out var lpn))
            {
                return false;
            }
            try
            {
                return lpn.Length == LocalPolicyNonceLength && Sha384Digest.Compute(lpn) == pending.Hash;
            }
            finally
            {
                CryptographicOperations.ZeroMemory(lpn);
            }
        }
    }

    /// <summary>
    /// Re-reads the sealed Local Policy Nonce (after a change that installed a <see cref="PendingLocalPolicyNonce"/>
    /// was committed, or rolled back) and returns its hash, now <see cref="CurrentLocalPolicyNonceHash"/>.
    /// </summary>
    /// <exception cref="SecureEnclaveException">The nonce file is missing, modified or malformed.</exception>
    internal Sha384Digest ReloadLocalPolicyNonce()
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            _nonceHash = ReadNonceHash(_store, _directory);
            return _nonceHash;
        }
    }

    private static Sha384Digest ReadNonceHash(SealedStore store, string directory)
    {
        var lpn = store.Read(Path.Combine(directory, NonceFileName), NoncePurpose);
        try
        {
            if (lpn.Length != LocalPolicyNonceLength)
            {
                throw Malformed($"the sealed Local Policy Nonce is {lpn.Length} bytes, not {LocalPolicyNonceLength}", null);
            }
            return Sha384Digest.Compute(lpn);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(lpn);
        }
    }

    /// <summary>
    /// Signs a manifest body with the SEP key: ECDSA P-384 / SHA-384 over the DER of the body SET,
    /// DER-encoded signature (RFC 3279), certificate chain = [this SEP's certificate]. The body's MANP
    /// must carry <c>ECID</c> (INTEGER) equal to this Mac's: the SEP only personalizes for itself.
    /// </summary>
    /// <exception cref="SecureEnclaveException"><see cref="SecureEnclaveError.SigningRefused"/>.</exception>
    internal Im4Manifest SignManifest(Im4ManifestBody body)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (body.ManifestProperties.Find("ECID") is not Im4Integer { Value: var ecid } || ecid != Ecid)
        {
            throw new SecureEnclaveException(SecureEnclaveError.SigningRefused,
                $"the manifest is not personalized for this Mac (MANP ECID must be INTEGER 0x{Ecid:x16})");
        }
        var bodyBytes = body.Encode();
        byte[] signature;
        lock (_gate)
        {
            ThrowIfDisposed();
            signature = _key.SignData(bodyBytes, HashAlgorithmName.SHA384, DSASignatureFormat.Rfc3279DerSequence);
        }
        return Im4Manifest.Create(body, signature, [_certificate]);
    }

    /// <summary>Forgets the in-memory key.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (!_disposed)
            {
                _disposed = true;
                _key.Dispose();
            }
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    private static void CheckUid(ReadOnlySpan<byte> hardwareUid)
    {
        if (hardwareUid.Length < MinimumUidLength)
        {
            throw new ArgumentException($"the hardware UID must be at least {MinimumUidLength} bytes", nameof(hardwareUid));
        }
    }

    private static SecureEnclaveException Malformed(string detail, Exception? inner) =>
        new(SecureEnclaveError.MalformedSealedState, $"the sealed Secure Enclave key is malformed: {detail}", inner);

    private static byte[] CreateCertificate(ECDsa key, ulong ecid)
    {
        var request = new CertificateRequest($"CN=Secure Enclave {ecid:X16}", key, HashAlgorithmName.SHA384);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        var now = DateTimeOffset.UtcNow;
        using var certificate = request.CreateSelfSigned(now.AddMinutes(-5), now.AddYears(30));
        return certificate.RawData;
    }
}

/// <summary>
/// A Local Policy Nonce drawn by <see cref="SecureEnclave.PrepareLocalPolicyNonce"/> and not yet installed: the nonce
/// itself only in sealed form (readable by that Secure Enclave alone), and its hash <c>lpnh</c> for the new LocalPolicy.
/// </summary>
public sealed class PendingLocalPolicyNonce
{
    private readonly byte[] _sealed;

    internal PendingLocalPolicyNonce(Sha384Digest hash, byte[] sealedBytes)
    {
        Hash = hash;
        _sealed = sealedBytes;
    }

    /// <summary><c>lpnh</c> of the new nonce.</summary>
    public Sha384Digest Hash { get; }

    /// <summary>The new content of <see cref="SecureEnclave.NonceFileName"/> (sealed to the Mac's hardware UID and ECID).</summary>
    public ReadOnlyMemory<byte> SealedBytes => _sealed;
}

/// <summary>A Secure Enclave provisioned in memory (<see cref="SecureEnclave.Provision"/>) and the sealed files it still needs on disk.</summary>
/// <param name="Enclave">The enclave (its current nonce is <paramref name="FirstNonce"/>); the caller disposes it.</param>
/// <param name="SealedKey">The content of <see cref="SecureEnclave.KeyFileName"/>.</param>
/// <param name="FirstNonce">The first Local Policy Nonce: <see cref="PendingLocalPolicyNonce.SealedBytes"/> is the content of <see cref="SecureEnclave.NonceFileName"/>.</param>
public sealed record ProvisionedSecureEnclave(SecureEnclave Enclave, ReadOnlyMemory<byte> SealedKey, PendingLocalPolicyNonce FirstNonce);

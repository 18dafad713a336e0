using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace KextTrust.Boot.Enclave;

/// <summary>
/// Seals small secrets to a (simulated) hardware UID. File layout, version 1:
/// <code>
///   0  8  header  "KTSEAL" 0x01 0x00
///   8 12  AES-GCM nonce (random per write)
///  20 16  AES-GCM tag
///  36  n  ciphertext
/// </code>
/// Key = HKDF-SHA384(IKM = hardware UID, salt = "KextTrust SEP seal v1", info = purpose ‖ ECID (u64 BE), 32 bytes);
/// AAD = header ‖ purpose ‖ ECID (u64 BE). So each file is bound to one UID, one ECID and one purpose:
/// swapping files between purposes or Macs fails authentication like a modified byte does.
/// Writes are atomic: temporary file in the same directory, flushed to disk, renamed over.
/// </summary>
internal sealed class SealedStore
{
    private static readonly byte[] Header = [(byte)'K', (byte)'T', (byte)'S', (byte)'E', (byte)'A', (byte)'L', 0x01, 0x00];
    private static readonly byte[] Salt = "KextTrust SEP seal v1"u8.ToArray();
    private const int NonceSize = 12;
    private const int TagSize = 16;
    private const int CiphertextOffset = 8 + NonceSize + TagSize;

    private readonly byte[] _uid;
    private readonly ulong _ecid;

    public SealedStore(ReadOnlySpan<byte> hardwareUid, ulong ecid)
    {
        _uid = hardwareUid.ToArray();
        _ecid = ecid;
    }

    public void Write(string path, string purpose, ReadOnlySpan<byte> plaintext) => WriteAtomically(path, Seal(purpose, plaintext));

    /// <summary>The sealed blob of <paramref name="plaintext"/> (what <see cref="Write"/> would store).</summary>
    public byte[] Seal(string purpose, ReadOnlySpan<byte> plaintext)
    {
        var blob = new byte[CiphertextOffset + plaintext.Length];
        Header.CopyTo(blob, 0);
        var nonce = blob.AsSpan(8, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        var key = DeriveKey(purpose);
        try
        {
            using var gcm = new AesGcm(key, TagSize);
            gcm.Encrypt(nonce, plaintext, blob.AsSpan(CiphertextOffset), blob.AsSpan(8 + NonceSize, TagSize), Aad(purpose));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
        return blob;
    }

    public byte[] Read(string path, string purpose)
    {
        byte[] blob;
        try
        {
            blob = File.ReadAllBytes(path);
        }
        catch (FileNotFoundException e)
        {
            throw new SecureEnclaveException(SecureEnclaveError.NotProvisioned, $"sealed file '{path}' does not exist", e);
        }
        if (!IsBlob(blob))
        {
            throw new SecureEnclaveException(SecureEnclaveError.MalformedSealedState,
                $"sealed file '{path}' is not a version-1 KextTrust sealed blob");
        }
        if (!TryDecrypt(blob, purpose, out var plaintext))
        {
            throw new SecureEnclaveException(SecureEnclaveError.UnsealFailed,
                $"sealed file '{path}' failed authentication (wrong hardware UID or ECID, or the file was modified)");
        }
        return plaintext;
    }

    /// <summary>Unseals an in-memory blob; false when it is not a blob of this UID, ECID and purpose (or was modified).</summary>
    public bool TryUnseal(ReadOnlySpan<byte> blob, string purpose, out byte[] plaintext)
    {
        plaintext = [];
        return IsBlob(blob) && TryDecrypt(blob, purpose, out plaintext);
    }

    private static bool IsBlob(ReadOnlySpan<byte> blob) => blob.Length >= CiphertextOffset && blob[..Header.Length].SequenceEqual(Header);

    private bool TryDecrypt(ReadOnlySpan<byte> blob, string purpose, out byte[] plaintext)
    {
        plaintext = new byte[blob.Length - CiphertextOffset];
        var key = DeriveKey(purpose);
        try
        {
            using var gcm = new AesGcm(key, TagSize);
            gcm.Decrypt(blob.Slice(8, NonceSize), blob[CiphertextOffset..], blob.Slice(8 + NonceSize, TagSize), plaintext, Aad(purpose));
            return true;
        }
        catch (AuthenticationTagMismatchException)
        {
            CryptographicOperations.ZeroMemory(plaintext);
            plaintext = [];
            return false;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    private byte[] DeriveKey(string purpose) =>
        HKDF.DeriveKey(HashAlgorithmName.SHA384, _uid, 32, Salt, Info(purpose));

    private byte[] Info(string purpose)
    {
        var label = Encoding.ASCII.GetBytes(purpose);
        var info = new byte[label.Length + 8];
        label.CopyTo(info, 0);
        BinaryPrimitives.WriteUInt64BigEndian(info.AsSpan(label.Length), _ecid);
        return info;
    }

    private byte[] Aad(string purpose) => [.. Header, .. Info(purpose)];

    public static void WriteAtomically(string path, ReadOnlySpan<byte> contents)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var temp = Path.Combine(directory, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 4096, FileOptions.WriteThrough))
            {
                stream.Write(contents);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }
}

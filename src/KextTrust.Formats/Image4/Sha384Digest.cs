using System.Security.Cryptography;

namespace KextTrust.Formats.Image4;

/// <summary>
/// An immutable SHA-384 digest (exactly 48 bytes) with value equality (compared in constant time).
/// Used for <c>DGST</c> and for the LocalPolicy hashes (<c>lpnh</c>, <c>auxp</c>, <c>auxi</c>, <c>auxr</c>).
/// </summary>
public sealed class Sha384Digest : IEquatable<Sha384Digest>
{
    /// <summary>Digest length in bytes.</summary>
    public const int Length = 48;

    private readonly byte[] _bytes;

    private Sha384Digest(byte[] bytes) => _bytes = bytes;

    /// <summary>The digest bytes.</summary>
    public ReadOnlySpan<byte> Span => _bytes;

    /// <summary>Wraps a copy of 48 digest bytes; <see cref="ArgumentException"/> for any other length.</summary>
    public static Sha384Digest FromBytes(ReadOnlySpan<byte> digest)
    {
        if (digest.Length != Length)
        {
            throw new ArgumentException($"a SHA-384 digest is {Length} bytes, not {digest.Length}", nameof(digest));
        }
        return new Sha384Digest(digest.ToArray());
    }

    /// <summary>SHA-384 of <paramref name="data"/>.</summary>
    public static Sha384Digest Compute(ReadOnlySpan<byte> data) => new(SHA384.HashData(data));

    /// <summary>A fresh copy of the digest bytes.</summary>
    public byte[] ToArray() => (byte[])_bytes.Clone();

    /// <inheritdoc/>
    public bool Equals(Sha384Digest? other) =>
        other is not null && CryptographicOperations.FixedTimeEquals(_bytes, other._bytes);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as Sha384Digest);

    /// <inheritdoc/>
    public override int GetHashCode() => BitConverter.ToInt32(_bytes, 0);

    /// <summary>Lower-case hexadecimal.</summary>
    public override string ToString() => Convert.ToHexStringLower(_bytes);

    /// <summary>Value equality.</summary>
    public static bool operator ==(Sha384Digest? left, Sha384Digest? right) =>
        left is null ? right is null : left.Equals(right);

    /// <summary>Value inequality.</summary>
    public static bool operator !=(Sha384Digest? left, Sha384Digest? right) => !(left == right);
}

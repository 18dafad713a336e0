using System.Buffers;
using System.Text;
using System.Text.Unicode;

namespace KextTrust.Kexts.Audit;

/// <summary>
/// Ordinal string equality whose hash is that of the string's UTF-8 bytes, so that a table keyed by strings can be
/// searched with a symbol's UTF-8 bytes straight from a Mach-O string table, no string made. A byte span stands for
/// the string <see cref="Encoding.UTF8"/> decodes it to (ill-formed bytes read as U+FFFD), and hashes as that string does.
/// </summary>
internal sealed class Utf8SymbolComparer : IEqualityComparer<string>, IAlternateEqualityComparer<ReadOnlySpan<byte>, string>
{
    private const int StackLimit = 512;

    // Seeded per process by HashCode: symbol names come from untrusted files.
    public static readonly Utf8SymbolComparer Instance = new();

    private Utf8SymbolComparer()
    {
    }

    public bool Equals(string? x, string? y) => string.Equals(x, y);

    public int GetHashCode(string obj)
    {
        ArgumentNullException.ThrowIfNull(obj);
        // Lone surrogates encode as U+FFFD: such a string equals no decoded span, so sharing its hash is harmless.
        var length = Encoding.UTF8.GetByteCount(obj);
        byte[]? rented = null;
        var bytes = length <= StackLimit ? stackalloc byte[StackLimit] : (rented = ArrayPool<byte>.Shared.Rent(length));
        try
        {
            return Hash(bytes[..Encoding.UTF8.GetBytes(obj, bytes)]);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    public bool Equals(ReadOnlySpan<byte> alternate, string other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (Ascii.Equals(alternate, other))
        {
            return true;
        }
        if (Ascii.IsValid(alternate))
        {
            return false; // ASCII bytes equal only the same ASCII string
        }
        var length = Encoding.UTF8.GetCharCount(alternate);
        if (length != other.Length)
        {
            return false;
        }
        char[]? rented = null;
        var chars = length <= StackLimit ? stackalloc char[StackLimit] : (rented = ArrayPool<char>.Shared.Rent(length));
        try
        {
            return chars[..Encoding.UTF8.GetChars(alternate, chars)].SequenceEqual(other);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<char>.Shared.Return(rented);
            }
        }
    }

    public int GetHashCode(ReadOnlySpan<byte> alternate) =>
        // Ill-formed bytes hash as the string they decode to (rare: allocating then is fine).
        Utf8.IsValid(alternate) ? Hash(alternate) : GetHashCode(Create(alternate));

    public string Create(ReadOnlySpan<byte> alternate) => Encoding.UTF8.GetString(alternate);

    private static int Hash(ReadOnlySpan<byte> utf8)
    {
        var hash = default(HashCode);
        hash.AddBytes(utf8);
        return hash.ToHashCode();
    }
}

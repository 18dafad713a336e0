using System.Buffers.Binary;

namespace KextTrust.Formats.CodeSigning;

/// <summary>Bounds-checked big-endian reads over a blob; every failure is a <see cref="CodeSignatureFormatException"/>.</summary>
internal readonly struct BlobCursor
{
    private readonly ReadOnlyMemory<byte> _data;
    private readonly string? _source;
    private readonly long _base;

    public BlobCursor(ReadOnlyMemory<byte> data, string? source, long baseOffset)
    {
        _data = data;
        _source = source;
        _base = baseOffset;
    }

    public int Length => _data.Length;
    public ReadOnlyMemory<byte> Memory => _data;
    public string? Source => _source;
    public long BaseOffset => _base;

    public CodeSignatureFormatException Fail(long relativeOffset, string rule) =>
        new(_source, checked(_base + relativeOffset), rule);

    public void Require(long offset, long count, string what)
    {
        if (offset < 0 || count < 0 || offset > _data.Length || count > _data.Length - offset)
        {
            throw Fail(Math.Max(0, offset), $"{what}: {count} byte(s) at offset {offset} exceed the {_data.Length}-byte blob");
        }
    }

    public uint U32(long offset, string what)
    {
        Require(offset, 4, what);
        return BinaryPrimitives.ReadUInt32BigEndian(_data.Span.Slice((int)offset, 4));
    }

    public int I32(long offset, string what) => unchecked((int)U32(offset, what));

    public ulong U64(long offset, string what)
    {
        Require(offset, 8, what);
        return BinaryPrimitives.ReadUInt64BigEndian(_data.Span.Slice((int)offset, 8));
    }

    public byte U8(long offset, string what)
    {
        Require(offset, 1, what);
        return _data.Span[(int)offset];
    }

    public ReadOnlyMemory<byte> Slice(long offset, long count, string what)
    {
        Require(offset, count, what);
        return _data.Slice((int)offset, (int)count);
    }

    public BlobCursor Sub(long offset, long count, string what) =>
        new(Slice(offset, count, what), _source, checked(_base + offset));

    /// <summary>A NUL-terminated UTF-8 string starting at <paramref name="offset"/>, which must end inside the blob.</summary>
    public string CString(long offset, string what)
    {
        Require(offset, 0, what);
        var span = _data.Span[(int)offset..];
        var nul = span.IndexOf((byte)0);
        if (nul < 0)
        {
            throw Fail(offset, $"{what}: string is not NUL-terminated inside the blob");
        }
        try
        {
            return new System.Text.UTF8Encoding(false, true).GetString(span[..nul]);
        }
        catch (System.Text.DecoderFallbackException e)
        {
            throw new CodeSignatureFormatException(_source, checked(_base + offset), $"{what}: not valid UTF-8", e);
        }
    }
}

using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Text;

namespace KextTrust.Formats.PropertyLists;

/// <summary>
/// Reads <c>bplist00</c>. The trailer is validated against the file length with overflow-safe
/// arithmetic before anything is allocated; every object offset must fall inside the object area
/// (after the header, before the offset table), every reference below the object count, and every
/// count must fit the bytes that remain. Objects are decoded once and shared, so reference cycles
/// are detected and a file cannot expand into an exponentially large tree.
/// </summary>
internal ref struct BinaryPropertyListReader
{
    internal const int HeaderSize = 8;
    internal const int TrailerSize = 32;
    internal const int MaxDepth = 512;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly ReadOnlySpan<byte> _s;
    private readonly string? _source;
    private readonly PlistNode?[] _cache;
    private readonly PlistNode _inProgress;
    private readonly int _offsetIntSize;
    private readonly int _refSize;
    private readonly long _numObjects;
    private readonly long _offsetTable;
    private readonly PlistOffsets? _offsets;

    private BinaryPropertyListReader(ReadOnlySpan<byte> s, string? source, int offsetIntSize, int refSize, long numObjects, long offsetTable, PlistOffsets? offsets)
    {
        _offsets = offsets;
        _s = s;
        _source = source;
        _offsetIntSize = offsetIntSize;
        _refSize = refSize;
        _numObjects = numObjects;
        _offsetTable = offsetTable;
        _cache = new PlistNode?[numObjects];
        _inProgress = new PlistString("\0in progress");
    }

    private static PropertyListFormatException Fail(string? source, long offset, string rule) => new(source, offset, rule);

    private readonly PropertyListFormatException Fail(long offset, string rule) => new(_source, offset, rule);

    public static PlistNode Parse(ReadOnlySpan<byte> s, string? source) => Parse(s, source, null);

    /// <summary>
    /// Parses, and when <paramref name="offsets"/> is given records where each dictionary and array object starts and
    /// where each of its values' objects starts (an object referenced from several places has its one offset).
    /// </summary>
    public static PlistNode Parse(ReadOnlySpan<byte> s, string? source, PlistOffsets? offsets)
    {
        if (!s.StartsWith("bplist"u8))
        {
            throw Fail(source, 0, "missing 'bplist' magic");
        }
        if (s.Length < HeaderSize || !s[6..8].SequenceEqual("00"u8))
        {
            throw Fail(source, 6, "unsupported binary property list version (only bplist00 is read)");
        }
        if (s.Length < HeaderSize + TrailerSize)
        {
            throw Fail(source, s.Length, $"file of {s.Length} bytes is too short for a header and a 32-byte trailer");
        }
        var t = s.Length - TrailerSize;
        int offsetIntSize = s[t + 6], refSize = s[t + 7];
        var numObjects = BinaryPrimitives.ReadUInt64BigEndian(s[(t + 8)..]);
        var topObject = BinaryPrimitives.ReadUInt64BigEndian(s[(t + 16)..]);
        var offsetTable = BinaryPrimitives.ReadUInt64BigEndian(s[(t + 24)..]);
        if (offsetIntSize is not (1 or 2 or 4 or 8))
        {
            throw Fail(source, t + 6, $"offset integer size {offsetIntSize} is not 1, 2, 4 or 8");
        }
        if (refSize is not (1 or 2 or 4 or 8))
        {
            throw Fail(source, t + 7, $"object reference size {refSize} is not 1, 2, 4 or 8");
        }
        if (offsetTable < HeaderSize || offsetTable > (ulong)t)
        {
            throw Fail(source, t + 24, $"offset table offset {offsetTable} is outside the file (object area ends at {t})");
        }
        var room = ((ulong)t - offsetTable) / (ulong)offsetIntSize;
        if (numObjects == 0 || numObjects > room)
        {
            throw Fail(source, t + 8, $"object count {numObjects} does not fit the offset table (room for {room} entries of {offsetIntSize} bytes)");
        }
        if (topObject >= numObjects)
        {
            throw Fail(source, t + 16, $"top object {topObject} is not below the object count {numObjects}");
        }
        var reader = new BinaryPropertyListReader(s, source, offsetIntSize, refSize, (long)numObjects, (long)offsetTable, offsets);
        var root = reader.ParseObject((long)topObject, 1, t + 16);
        if (offsets is not null)
        {
            offsets.Root = reader.ObjectOffset((long)topObject);
        }
        return root;
    }

    private readonly ulong ReadUnsigned(long offset, int size) => size switch
    {
        1 => _s[(int)offset],
        2 => BinaryPrimitives.ReadUInt16BigEndian(_s[(int)offset..]),
        4 => BinaryPrimitives.ReadUInt32BigEndian(_s[(int)offset..]),
        _ => BinaryPrimitives.ReadUInt64BigEndian(_s[(int)offset..]),
    };

    private readonly long ObjectOffset(long index)
    {
        var entry = _offsetTable + (index * _offsetIntSize);
        var offset = ReadUnsigned(entry, _offsetIntSize);
        if (offset < HeaderSize || offset >= (ulong)_offsetTable)
        {
            throw Fail(entry, $"object {index} has offset {offset}, outside the object area [{HeaderSize}, {_offsetTable})");
        }
        return (long)offset;
    }

    /// <summary>Bytes available from <paramref name="start"/> to the end of the object area.</summary>
    private readonly long Remaining(long start) => _offsetTable - start;

    private readonly void Need(long objectOffset, long start, long bytes, string what)
    {
        if (bytes > Remaining(start))
        {
            throw Fail(objectOffset, $"{what} needs {bytes} bytes but only {Math.Max(0, Remaining(start))} remain before the offset table");
        }
    }

    /// <summary>Reads the count in the low nibble or, for 0xF, the integer object that follows.</summary>
    private readonly long ReadCount(long offset, int nibble, out long start)
    {
        if (nibble != 0xF)
        {
            start = offset + 1;
            return nibble;
        }
        Need(offset, offset + 1, 1, "extended count");
        var marker = _s[(int)offset + 1];
        if (marker >> 4 != 0x1 || (marker & 0xF) > 3)
        {
            throw Fail(offset + 1, $"extended count marker 0x{marker:x2} is not an integer of 1, 2, 4 or 8 bytes");
        }
        var size = 1 << (marker & 0xF);
        Need(offset, offset + 2, size, "extended count");
        var count = ReadUnsigned(offset + 2, size);
        if (count > long.MaxValue)
        {
            throw Fail(offset + 1, $"count {count} is too large");
        }
        start = offset + 2 + size;
        return (long)count;
    }

    private readonly void CheckCount(long objectOffset, long start, long count, int unit, string what)
    {
        if (count > Remaining(start) / unit)
        {
            throw Fail(objectOffset, $"{what} count {count} exceeds the {Math.Max(0, Remaining(start))} bytes remaining before the offset table");
        }
    }

    private readonly long ReadRef(long at)
    {
        var r = ReadUnsigned(at, _refSize);
        if (r >= (ulong)_numObjects)
        {
            throw Fail(at, $"object reference {r} is not below the object count {_numObjects}");
        }
        return (long)r;
    }

    private PlistNode ParseObject(long index, int depth, long referencedAt)
    {
        var cached = _cache[index];
        if (ReferenceEquals(cached, _inProgress))
        {
            throw Fail(referencedAt, $"object {index} contains itself (reference cycle)");
        }
        if (cached is not null)
        {
            return cached;
        }
        var offset = ObjectOffset(index);
        if (depth > MaxDepth)
        {
            throw Fail(offset, $"nesting deeper than {MaxDepth} levels");
        }
        _cache[index] = _inProgress;
        var node = ParseAt(offset, depth);
        _cache[index] = node;
        return node;
    }

    private PlistNode ParseAt(long offset, int depth)
    {
        var marker = _s[(int)offset];
        var high = marker >> 4;
        var low = marker & 0xF;
        switch (high)
        {
            case 0x0:
                return low switch
                {
                    0x8 => PlistBoolean.False,
                    0x9 => PlistBoolean.True,
                    0x0 => throw Fail(offset, "null objects have no property-list value"),
                    0xF => throw Fail(offset, "a fill byte is not an object"),
                    _ => throw Fail(offset, $"unknown object marker 0x{marker:x2}"),
                };
            case 0x1:
                return ReadInteger(offset, low);
            case 0x2:
                if (low == 2)
                {
                    Need(offset, offset + 1, 4, "real");
                    return new PlistReal(BinaryPrimitives.ReadSingleBigEndian(_s[((int)offset + 1)..]));
                }
                if (low == 3)
                {
                    Need(offset, offset + 1, 8, "real");
                    return new PlistReal(BinaryPrimitives.ReadDoubleBigEndian(_s[((int)offset + 1)..]));
                }
                throw Fail(offset, $"real of {1 << low} bytes (only 4 and 8 are defined)");
            case 0x3:
                if (low != 3)
                {
                    throw Fail(offset, $"unknown object marker 0x{marker:x2}");
                }
                Need(offset, offset + 1, 8, "date");
                return ReadDate(offset, BinaryPrimitives.ReadDoubleBigEndian(_s[((int)offset + 1)..]));
            case 0x4:
            {
                var count = ReadCount(offset, low, out var start);
                CheckCount(offset, start, count, 1, "data");
                return new PlistData(_s.Slice((int)start, (int)count));
            }
            case 0x5:
            {
                var count = ReadCount(offset, low, out var start);
                CheckCount(offset, start, count, 1, "ASCII string");
                var bytes = _s.Slice((int)start, (int)count);
                var bad = bytes.IndexOfAnyInRange((byte)0x80, (byte)0xFF);
                if (bad >= 0)
                {
                    throw Fail(start + bad, "non-ASCII byte in an ASCII string");
                }
                return new PlistString(Encoding.ASCII.GetString(bytes));
            }
            case 0x6:
            {
                var count = ReadCount(offset, low, out var start);
                CheckCount(offset, start, count, 2, "UTF-16 string");
                var bytes = _s.Slice((int)start, (int)count * 2);
                var chars = new char[count];
                for (var i = 0; i < chars.Length; i++)
                {
                    chars[i] = (char)BinaryPrimitives.ReadUInt16BigEndian(bytes[(2 * i)..]);
                }
                return new PlistString(new string(chars));
            }
            case 0x7:
            {
                var count = ReadCount(offset, low, out var start);
                CheckCount(offset, start, count, 1, "UTF-8 string");
                try
                {
                    return new PlistString(StrictUtf8.GetString(_s.Slice((int)start, (int)count)));
                }
                catch (DecoderFallbackException)
                {
                    throw Fail(start, "invalid UTF-8 in a UTF-8 string");
                }
            }
            case 0x8:
            {
                var size = low + 1;
                if (size is not (1 or 2 or 4 or 8))
                {
                    throw Fail(offset, $"UID of {size} bytes (1, 2, 4 or 8 expected)");
                }
                Need(offset, offset + 1, size, "UID");
                var uid = ReadUnsigned(offset + 1, size);
                if (uid > uint.MaxValue)
                {
                    throw Fail(offset, $"UID {uid} is wider than 32 bits");
                }
                return new PlistUid((uint)uid);
            }
            case 0xA:
            case 0xC:
            {
                var count = ReadCount(offset, low, out var start);
                CheckCount(offset, start, count, _refSize, high == 0xA ? "array" : "set");
                var items = ImmutableArray.CreateBuilder<PlistNode>((int)count);
                var starts = _offsets is null ? null : new long[count];
                for (long i = 0; i < count; i++)
                {
                    var at = start + (i * _refSize);
                    var child = ReadRef(at);
                    items.Add(ParseObject(child, depth + 1, at));
                    starts?[i] = ObjectOffset(child);
                }
                var array = PlistArray.Wrap(items.MoveToImmutable());
                _offsets?.Record(array, offset, starts!);
                return array;
            }
            case 0xD:
            {
                var count = ReadCount(offset, low, out var start);
                CheckCount(offset, start, count, 2 * _refSize, "dictionary");
                var entries = ImmutableArray.CreateBuilder<KeyValuePair<string, PlistNode>>((int)count);
                var index = new Dictionary<string, int>((int)count, StringComparer.Ordinal);
                var starts = _offsets is null ? null : new long[count];
                for (long i = 0; i < count; i++)
                {
                    var keyAt = start + (i * _refSize);
                    var valueAt = start + ((count + i) * _refSize);
                    var key = ParseObject(ReadRef(keyAt), depth + 1, keyAt);
                    if (key is not PlistString k)
                    {
                        throw Fail(keyAt, $"dictionary key is a {PlistNode.KindName(key.Kind)}, not a string");
                    }
                    if (!index.TryAdd(k.Value, (int)i))
                    {
                        throw Fail(keyAt, $"duplicate key '{k.Value}'");
                    }
                    var value = ReadRef(valueAt);
                    entries.Add(KeyValuePair.Create(k.Value, ParseObject(value, depth + 1, valueAt)));
                    starts?[i] = ObjectOffset(value);
                }
                var dictionary = PlistDictionary.Wrap(entries.MoveToImmutable(), index);
                _offsets?.Record(dictionary, offset, starts!);
                return dictionary;
            }
            default:
                throw Fail(offset, $"unknown object marker 0x{marker:x2}");
        }
    }

    private readonly PlistInteger ReadInteger(long offset, int low)
    {
        if (low > 4)
        {
            throw Fail(offset, $"integer of {1L << low} bytes (1, 2, 4, 8 or 16 expected)");
        }
        var size = 1 << low;
        Need(offset, offset + 1, size, "integer");
        var at = (int)offset + 1;
        switch (size)
        {
            case 1:
            case 2:
            case 4:
                return new PlistInteger(ReadUnsigned(at, size));
            case 8:
                return new PlistInteger(BinaryPrimitives.ReadInt64BigEndian(_s[at..]));
            default:
                var value = BinaryPrimitives.ReadInt128BigEndian(_s[at..]);
                if (value < PlistInteger.MinValue || value > PlistInteger.MaxValue)
                {
                    throw Fail(offset, "16-byte integer outside the signed and unsigned 64-bit ranges");
                }
                return new PlistInteger(value);
        }
    }

    private readonly PlistDate ReadDate(long offset, double seconds)
    {
        var ticks = seconds * TimeSpan.TicksPerSecond;
        var minTicks = (DateTime.MinValue - PlistDate.Epoch).Ticks;
        var maxTicks = (DateTime.MaxValue - PlistDate.Epoch).Ticks;
        if (!(ticks >= minTicks && ticks <= maxTicks))
        {
            throw Fail(offset, $"date {seconds} seconds from 2001-01-01 is outside years 1 to 9999");
        }
        var wholeSeconds = Math.Floor(seconds);
        var fraction = (long)Math.Round((seconds - wholeSeconds) * TimeSpan.TicksPerSecond);
        var total = Math.Clamp(((long)wholeSeconds * TimeSpan.TicksPerSecond) + fraction, minTicks, maxTicks);
        return new PlistDate(PlistDate.Epoch.AddTicks(total));
    }
}

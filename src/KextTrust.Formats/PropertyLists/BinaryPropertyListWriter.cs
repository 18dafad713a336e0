using System.Buffers.Binary;

namespace KextTrust.Formats.PropertyLists;

/// <summary>
/// Writes <c>bplist00</c>: objects in depth-first order (a container, then for a dictionary its
/// keys, then its values), equal strings and scalars stored once, minimal reference and offset
/// sizes. The output depends only on the tree, so it is deterministic.
/// </summary>
internal sealed class BinaryPropertyListWriter
{
    private readonly List<PlistNode> _objects = [];
    private readonly List<int[]?> _refs = [];
    private readonly Dictionary<string, int> _strings = new(StringComparer.Ordinal);
    private readonly Dictionary<(PlistKind Kind, Int128 Bits), int> _scalars = [];

    private BinaryPropertyListWriter()
    {
    }

    public static byte[] Write(PlistNode root)
    {
        ArgumentNullException.ThrowIfNull(root);
        var writer = new BinaryPropertyListWriter();
        writer.Add(root);
        return writer.Emit();
    }

    private int Reserve(PlistNode node)
    {
        _objects.Add(node);
        _refs.Add(null);
        return _objects.Count - 1;
    }

    private int AddString(string value)
    {
        if (!_strings.TryGetValue(value, out var index))
        {
            index = Reserve(new PlistString(value));
            _strings.Add(value, index);
        }
        return index;
    }

    private int AddScalar(PlistNode node, PlistKind kind, Int128 bits)
    {
        if (!_scalars.TryGetValue((kind, bits), out var index))
        {
            index = Reserve(node);
            _scalars.Add((kind, bits), index);
        }
        return index;
    }

    private int Add(PlistNode node)
    {
        switch (node)
        {
            case PlistString s:
                return AddString(s.Value);
            case PlistInteger i:
                return AddScalar(node, PlistKind.Integer, i.Value);
            case PlistReal r:
                return AddScalar(node, PlistKind.Real, BitConverter.DoubleToInt64Bits(r.Value));
            case PlistDate d:
                return AddScalar(node, PlistKind.Date, BitConverter.DoubleToInt64Bits(d.SecondsSinceEpoch));
            case PlistBoolean b:
                return AddScalar(node, PlistKind.Boolean, b.Value ? 1 : 0);
            case PlistUid u:
                return AddScalar(node, PlistKind.Uid, u.Value);
            case PlistData:
                return Reserve(node);
            case PlistArray a:
            {
                var index = Reserve(node);
                var refs = new int[a.Count];
                for (var k = 0; k < refs.Length; k++)
                {
                    refs[k] = Add(a.Items[k]);
                }
                _refs[index] = refs;
                return index;
            }
            case PlistDictionary d:
            {
                var index = Reserve(node);
                var refs = new int[2 * d.Count];
                for (var k = 0; k < d.Count; k++)
                {
                    refs[k] = AddString(d.Entries[k].Key);
                }
                for (var k = 0; k < d.Count; k++)
                {
                    refs[d.Count + k] = Add(d.Entries[k].Value);
                }
                _refs[index] = refs;
                return index;
            }
            default:
                throw new ArgumentException($"unknown node type {node.GetType()}", nameof(node));
        }
    }

    private static int SizeFor(ulong max) => max <= byte.MaxValue ? 1 : max <= ushort.MaxValue ? 2 : max <= uint.MaxValue ? 4 : 8;

    private byte[] Emit()
    {
        var refSize = SizeFor((ulong)(_objects.Count - 1));
        var output = new MemoryStream();
        output.Write("bplist00"u8);
        var offsets = new long[_objects.Count];
        for (var i = 0; i < _objects.Count; i++)
        {
            offsets[i] = output.Position;
            WriteObject(output, _objects[i], _refs[i], refSize);
        }
        var offsetTable = output.Position;
        var offsetIntSize = SizeFor((ulong)offsets[^1]);
        foreach (var offset in offsets)
        {
            WriteBigEndian(output, (ulong)offset, offsetIntSize);
        }
        output.Write(stackalloc byte[6]);
        output.WriteByte((byte)offsetIntSize);
        output.WriteByte((byte)refSize);
        WriteBigEndian(output, (ulong)_objects.Count, 8);
        WriteBigEndian(output, 0, 8);
        WriteBigEndian(output, (ulong)offsetTable, 8);
        return output.ToArray();
    }

    private static void WriteBigEndian(Stream output, ulong value, int size)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(b, value);
        output.Write(b[(8 - size)..]);
    }

    private static void WriteMarker(Stream output, int high, int count)
    {
        if (count < 15)
        {
            output.WriteByte((byte)((high << 4) | count));
            return;
        }
        output.WriteByte((byte)((high << 4) | 0xF));
        var size = SizeFor((ulong)count);
        output.WriteByte((byte)(0x10 | System.Numerics.BitOperations.Log2((uint)size)));
        WriteBigEndian(output, (ulong)count, size);
    }

    private static void WriteObject(Stream output, PlistNode node, int[]? refs, int refSize)
    {
        Span<byte> b = stackalloc byte[16];
        switch (node)
        {
            case PlistBoolean boolean:
                output.WriteByte(boolean.Value ? (byte)0x09 : (byte)0x08);
                break;
            case PlistInteger integer:
            {
                var v = integer.Value;
                if (v < 0 || (v > uint.MaxValue && v <= long.MaxValue))
                {
                    output.WriteByte(0x13);
                    WriteBigEndian(output, (ulong)(long)v, 8);
                }
                else if (v > long.MaxValue)
                {
                    output.WriteByte(0x14);
                    BinaryPrimitives.WriteInt128BigEndian(b, v);
                    output.Write(b);
                }
                else
                {
                    var size = SizeFor((ulong)v);
                    output.WriteByte((byte)(0x10 | System.Numerics.BitOperations.Log2((uint)size)));
                    WriteBigEndian(output, (ulong)v, size);
                }
                break;
            }
            case PlistReal real:
                output.WriteByte(0x23);
                BinaryPrimitives.WriteDoubleBigEndian(b, real.Value);
                output.Write(b[..8]);
                break;
            case PlistDate date:
                output.WriteByte(0x33);
                BinaryPrimitives.WriteDoubleBigEndian(b, date.SecondsSinceEpoch);
                output.Write(b[..8]);
                break;
            case PlistData data:
                WriteMarker(output, 0x4, data.Length);
                output.Write(data.Span);
                break;
            case PlistString s:
                if (!s.Value.AsSpan().ContainsAnyExceptInRange('\0', '\u007F'))
                {
                    WriteMarker(output, 0x5, s.Value.Length);
                    foreach (var c in s.Value)
                    {
                        output.WriteByte((byte)c);
                    }
                }
                else
                {
                    WriteMarker(output, 0x6, s.Value.Length);
                    foreach (var c in s.Value)
                    {
                        BinaryPrimitives.WriteUInt16BigEndian(b, c);
                        output.Write(b[..2]);
                    }
                }
                break;
            case PlistUid uid:
            {
                var size = SizeFor(uid.Value);
                output.WriteByte((byte)(0x80 | (size - 1)));
                WriteBigEndian(output, uid.Value, size);
                break;
            }
            case PlistArray:
                WriteMarker(output, 0xA, refs!.Length);
                WriteRefs(output, refs, refSize);
                break;
            case PlistDictionary:
                WriteMarker(output, 0xD, refs!.Length / 2);
                WriteRefs(output, refs, refSize);
                break;
        }
    }

    private static void WriteRefs(Stream output, int[] refs, int refSize)
    {
        foreach (var r in refs)
        {
            WriteBigEndian(output, (ulong)r, refSize);
        }
    }
}

using System.Buffers.Binary;
using System.Text;
using KextTrust.Formats.PropertyLists;

namespace KextTrust.Formats.Tests.PropertyLists;

public class BinaryPropertyListTests
{
    /// <summary>Lays out "bplist00", the objects in order, a 1-byte offset table and a trailer whose fields can be overridden.</summary>
    private static byte[] Build(byte[][] objects, int refSize = 1, int offsetIntSize = 1, ulong? numObjects = null, ulong top = 0, ulong? offsetTable = null, ulong[]? offsets = null)
    {
        var bytes = new List<byte>(Encoding.ASCII.GetBytes("bplist00"));
        var actualOffsets = new List<ulong>();
        foreach (var o in objects)
        {
            actualOffsets.Add((ulong)bytes.Count);
            bytes.AddRange(o);
        }
        var table = (ulong)bytes.Count;
        var b = new byte[8];
        foreach (var off in offsets ?? [.. actualOffsets])
        {
            BinaryPrimitives.WriteUInt64BigEndian(b, off);
            bytes.AddRange(b[(8 - offsetIntSize)..]);
        }
        bytes.AddRange(new byte[6]);
        bytes.Add((byte)offsetIntSize);
        bytes.Add((byte)refSize);
        foreach (var v in new[] { numObjects ?? (ulong)objects.Length, top, offsetTable ?? table })
        {
            BinaryPrimitives.WriteUInt64BigEndian(b, v);
            bytes.AddRange(b);
        }
        return [.. bytes];
    }

    private static PropertyListFormatException Reject(byte[] bytes)
    {
        var e = Assert.Throws<PropertyListFormatException>(() => PropertyList.Parse(bytes, "bad.bplist"));
        Assert.Equal("bad.bplist", e.SourceName);
        return e;
    }

    [Fact]
    public void Every_type_round_trips_through_binary_including_uids()
    {
        var tree = Samples.EveryType();
        var bin = PropertyList.ToBinary(tree);
        Assert.True(bin.AsSpan().StartsWith("bplist00"u8));
        var back = PropertyList.Parse(bin);
        Samples.AssertIdentical(tree, back);
        Assert.Equal(bin, PropertyList.ToBinary(back));
        Assert.Equal(ulong.MaxValue, ((PlistDictionary)back).Require<PlistInteger>("uint64 max").AsUInt64);
    }

    [Fact]
    public void Dates_keep_sub_second_precision_in_binary()
    {
        var date = new PlistDate(new DateTime(2020, 5, 17, 10, 11, 12, 345, DateTimeKind.Utc));
        Assert.Equal(date, PropertyList.Parse(PropertyList.ToBinary(date)));
        Assert.Equal(0.0, ((PlistDate)PropertyList.Parse(Build([[0x33, 0, 0, 0, 0, 0, 0, 0, 0]]))).SecondsSinceEpoch);
    }

    [Fact]
    public void Writer_is_deterministic_minimal_and_shares_equal_strings()
    {
        var tree = new PlistArray(new PlistDictionary(("a", new PlistString("a"))), new PlistDictionary(("a", new PlistString("b"))));
        var bin = PropertyList.ToBinary(tree);
        Assert.Equal(bin, PropertyList.ToBinary(tree));
        var t = bin.Length - 32;
        Assert.Equal(1, bin[t + 6]);
        Assert.Equal(1, bin[t + 7]);
        Assert.Equal(5UL, BinaryPrimitives.ReadUInt64BigEndian(bin.AsSpan(t + 8)));
        var big = PropertyList.ToBinary(new PlistArray(new PlistData(new byte[300]), PlistBoolean.True));
        Assert.Equal(2, big[big.Length - 32 + 6]);
        Samples.AssertIdentical(tree, PropertyList.Parse(bin));
    }

    [Fact]
    public void Reads_every_integer_width_reals_sets_utf8_strings_and_uids()
    {
        var objects = new byte[][]
        {
            [0xCA, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
            [0x10, 0xFF],
            [0x11, 0xFF, 0xFF],
            [0x12, 0xFF, 0xFF, 0xFF, 0xFF],
            [0x13, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE],
            [0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
            [0x22, 0x3F, 0xC0, 0, 0],
            [0x72, 0xC3, 0xBC],
            [0x62, 0xD8, 0x3D, 0xDE, 0x00],
            [0x81, 0x01, 0x02],
            [0x0F, 0x08],
        };
        objects[^1] = [0x08];
        var a = Assert.IsType<PlistArray>(PropertyList.Parse(Build(objects)));
        PlistNode[] expected =
        [
            new PlistInteger(255), new PlistInteger(65535), new PlistInteger(uint.MaxValue), new PlistInteger(-2L),
            new PlistInteger(ulong.MaxValue), new PlistReal(1.5), new PlistString("ü"), new PlistString("\U0001F600"),
            new PlistUid(0x102), PlistBoolean.False,
        ];
        Samples.AssertIdentical(new PlistArray(expected), a);
    }

    [Fact]
    public void Shared_subtrees_are_decoded_once_so_a_doubling_dag_stays_small()
    {
        const int levels = 60;
        var objects = new byte[levels + 1][];
        for (var i = 0; i < levels; i++)
        {
            objects[i] = [0xA2, (byte)(i + 1), (byte)(i + 1)];
        }
        objects[levels] = [0x09];
        var root = Assert.IsType<PlistArray>(PropertyList.Parse(Build(objects)));
        Assert.Same(root[0], root[1]);
    }

    public static TheoryData<string, byte[], long> Hostile()
    {
        var data = new TheoryData<string, byte[], long>
        {
            { "array contains itself", Build([[0xA1, 0x00]]), 9 },
            { "indirect cycle", Build([[0xA1, 0x01], [0xA1, 0x00]]), 11 },
            { "dictionary value is its own parent", Build([[0xD1, 0x01, 0x00], [0x51, (byte)'k']]), 10 },
            { "object count 2^31 in a 40-byte file", Build([], numObjects: 1UL << 31, offsetTable: 8), 16 },
            { "offset table outside the file", Build([[0x09]], offsetTable: 1000), 10 + 24 },
            { "offset table before the header ends", Build([[0x09]], offsetTable: 3), 10 + 24 },
            { "object offset outside the object area", Build([[0x09]], offsets: [200]), 9 },
            { "object offset inside the header", Build([[0x09]], offsets: [2]), 9 },
            { "object count larger than the offset table", Build([[0x09]], numObjects: 2), 10 + 8 },
            { "zero objects", Build([[0x09]], numObjects: 0), 10 + 8 },
            { "top object not below the count", Build([[0x09]], top: 1), 10 + 16 },
            { "offset int size 3", Build([[0x09]], offsetIntSize: 3), 12 + 6 },
            { "object ref size 0", Build([[0x09]], refSize: 0), 10 + 7 },
            { "reference beyond the object count", Build([[0xA1, 0x05]]), 9 },
            { "array count beyond the file", Build([[0xAF, 0x12, 0x7F, 0xFF, 0xFF, 0xFF]]), 8 },
            { "dictionary count beyond the file", Build([[0xDF, 0x13, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]]), 8 },
            { "string count beyond the file", Build([[0x5F, 0x10, 0x20, 0x41]]), 8 },
            { "UTF-16 count beyond the file", Build([[0x63, 0x00, 0x41]]), 8 },
            { "data count beyond the file", Build([[0x45, 1, 2]]), 8 },
            { "count of 2^64-1", Build([[0x4F, 0x13, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]]), 9 },
            { "extended count is not an integer", Build([[0x4F, 0x50]]), 9 },
            { "extended count truncated", Build([[0x4F, 0x13, 0x00]]), 8 },
            { "truncated integer", Build([[0x13, 0x00, 0x01]]), 8 },
            { "32-byte integer", Build([[0x15, 0x00]]), 8 },
            { "16-byte integer above 2^64", Build([[0x14, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]]), 8 },
            { "16-byte integer below -2^63", Build([[0x14, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]]), 8 },
            { "2-byte real", Build([[0x21, 0x00, 0x00]]), 8 },
            { "date out of range", Build([[0x33, 0x7E, 0x37, 0xE4, 0x3C, 0x88, 0x00, 0x75, 0x9C]]), 8 },
            { "date is NaN", Build([[0x33, 0x7F, 0xF8, 0, 0, 0, 0, 0, 0]]), 8 },
            { "unknown marker 0x90", Build([[0x90]]), 8 },
            { "unknown marker 0xE0", Build([[0xE0]]), 8 },
            { "unknown marker 0x30", Build([[0x30, 0, 0, 0, 0, 0, 0, 0, 0]]), 8 },
            { "null object", Build([[0x00]]), 8 },
            { "fill byte", Build([[0x0F]]), 8 },
            { "UID of 3 bytes", Build([[0x82, 1, 2, 3]]), 8 },
            { "UID wider than 32 bits", Build([[0x87, 0, 0, 0, 1, 0, 0, 0, 0]]), 8 },
            { "dictionary key is an integer", Build([[0xD1, 0x01, 0x01], [0x10, 0x05]]), 9 },
            { "duplicate dictionary key", Build([[0xD2, 0x01, 0x01, 0x02, 0x02], [0x51, (byte)'a'], [0x09]]), 10 },
            { "non-ASCII byte in ASCII string", Build([[0x52, (byte)'a', 0xC3]]), 10 },
            { "invalid UTF-8 in UTF-8 string", Build([[0x71, 0xFF]]), 9 },
            { "bplist01", [.. Encoding.ASCII.GetBytes("bplist01"), .. new byte[40]], 6 },
            { "too short", [.. Encoding.ASCII.GetBytes("bplist00"), .. new byte[10]], 18 },
            { "just the magic", Encoding.ASCII.GetBytes("bplist"), 6 },
        };
        var chain = new byte[600][];
        for (var i = 0; i < 599; i++)
        {
            chain[i] = [0xA1, (byte)((i + 1) >> 8), (byte)(i + 1)];
        }
        chain[599] = [0xA0];
        data.Add("nesting deeper than 512", Build(chain, refSize: 2, offsetIntSize: 2), 8 + (512 * 3));
        return data;
    }

    [Theory]
    [MemberData(nameof(Hostile))]
    public void Hostile_binary_is_rejected_at_the_right_offset(string name, byte[] bytes, long offset)
    {
        var e = Reject(bytes);
        Assert.True(offset == e.Offset, $"{name}: expected offset {offset}, got {e.Offset}: {e.Message}");
    }

    [Fact]
    public void Cycle_error_names_the_cycle()
    {
        Assert.Contains("cycle", Reject(Build([[0xA1, 0x00]])).Rule);
        Assert.Contains("2147483648", Reject(Build([], numObjects: 1UL << 31, offsetTable: 8)).Rule);
    }
}

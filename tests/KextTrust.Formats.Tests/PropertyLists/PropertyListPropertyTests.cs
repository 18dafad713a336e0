using CsCheck;
using KextTrust.Formats.PropertyLists;

namespace KextTrust.Formats.Tests.PropertyLists;

public class PropertyListPropertyTests
{
    private static readonly Gen<string> Text =
        Gen.Frequency(
            (6, Gen.String[Gen.Char['\u0000', '\uD7FF'], 0, 12]),
            (2, Gen.String[Gen.Char['a', 'z'], 0, 8]),
            (1, Gen.Int[0x10000, 0x10FFFF].Select(c => char.ConvertFromUtf32(c) + "x")));

    private static readonly long MinSeconds = (long)(new DateTime(1, 1, 1, 0, 0, 0, DateTimeKind.Utc) - PlistDate.Epoch).TotalSeconds;
    private static readonly long MaxSeconds = (long)(new DateTime(9999, 12, 31, 23, 59, 59, DateTimeKind.Utc) - PlistDate.Epoch).TotalSeconds;

    private static readonly Gen<PlistNode> Leaf = Gen.OneOf<PlistNode>(
        Text.Select(s => (PlistNode)new PlistString(s)),
        Gen.Long.Select(v => (PlistNode)new PlistInteger(v)),
        Gen.ULong.Select(v => (PlistNode)new PlistInteger(v)),
        Gen.OneOf(long.MinValue, long.MaxValue, -1L, 0L, 255L, 256L, 65535L, 65536L, 4294967295L, 4294967296L).Select(v => (PlistNode)new PlistInteger(v)),
        Gen.Double.Select(v => (PlistNode)new PlistReal(v)),
        Gen.OneOf(double.NaN, double.PositiveInfinity, double.NegativeInfinity, -0.0, double.Epsilon, double.MaxValue).Select(v => (PlistNode)new PlistReal(v)),
        Gen.Bool.Select(b => (PlistNode)PlistBoolean.Of(b)),
        Gen.Long[MinSeconds, MaxSeconds].Select(s => (PlistNode)new PlistDate(PlistDate.Epoch.AddSeconds(s))),
        Gen.Byte.Array[0, 80].Select(b => (PlistNode)new PlistData(b)),
        Gen.UInt.Select(u => (PlistNode)new PlistUid(u)));

    private static Gen<PlistNode> Node(int depth) =>
        depth == 0
            ? Leaf
            : Gen.Frequency(
                (4, Leaf),
                (1, Node(depth - 1).Array[0, 5].Select(items => (PlistNode)new PlistArray(items))),
                (1, Gen.Select(Text.Array[0, 5], Node(depth - 1).Array[5], (keys, values) =>
                    (PlistNode)new PlistDictionary(keys.Distinct(StringComparer.Ordinal).Zip(values, KeyValuePair.Create)))));

    private static readonly Gen<PlistNode> Tree = Node(4);

    [Fact]
    public void Random_trees_round_trip_through_xml_and_binary_exactly()
    {
        Tree.Sample(tree =>
        {
            var xml = PropertyList.ToXml(tree);
            Samples.AssertIdentical(tree, PropertyList.Parse(xml));
            var bin = PropertyList.ToBinary(tree);
            Samples.AssertIdentical(tree, PropertyList.Parse(bin));
            Assert.Equal(bin, PropertyList.ToBinary(PropertyList.Parse(bin)));
        }, iter: 400, threads: 1);
    }

    private static readonly byte[][] Seeds = BuildSeeds();

    private static byte[][] BuildSeeds()
    {
        var seeds = new List<byte[]>();
        var every = Samples.EveryType();
        seeds.Add(PropertyList.ToXml(every));
        seeds.Add(PropertyList.ToBinary(every));
        foreach (var path in Samples.AppleInfoPlists().Take(4))
        {
            var bytes = File.ReadAllBytes(path);
            seeds.Add(bytes);
            seeds.Add(PropertyList.ToBinary(PropertyList.Parse(bytes)));
        }
        seeds.Add(Samples.Utf8(Samples.Xml("<dict><key>a&amp;</key><string><![CDATA[x]]></string><key>n</key><integer>0x10</integer><key>d</key><data>AAEC</data><key>t</key><date>2020-01-01T00:00:00Z</date></dict>")));
        return [.. seeds];
    }

    private enum Mutation
    {
        Flip,
        Truncate,
        Insert,
        Delete,
        SetByte,
    }

    private static byte[] Mutate(byte[] input, (Mutation Kind, int Position, byte Value)[] edits)
    {
        var bytes = new List<byte>(input);
        foreach (var (kind, position, value) in edits)
        {
            if (bytes.Count == 0)
            {
                break;
            }
            var at = position % bytes.Count;
            switch (kind)
            {
                case Mutation.Flip:
                    bytes[at] ^= (byte)(1 << (value % 8));
                    break;
                case Mutation.Truncate:
                    bytes.RemoveRange(at, bytes.Count - at);
                    break;
                case Mutation.Insert:
                    bytes.Insert(at, value);
                    break;
                case Mutation.Delete:
                    bytes.RemoveAt(at);
                    break;
                case Mutation.SetByte:
                    bytes[at] = value;
                    break;
            }
        }
        return [.. bytes];
    }

    private static readonly Gen<(Mutation, int, byte)> Edit =
        Gen.Select(Gen.Enum<Mutation>(), Gen.Int[0, int.MaxValue], Gen.Byte);

    [Fact]
    public void Mutated_plists_parse_or_throw_format_errors_with_bounded_allocation()
    {
        Gen.Select(Gen.Int[0, Seeds.Length - 1], Edit.Array[1, 4]).Sample((seed, edits) =>
        {
            var input = Mutate(Seeds[seed], edits);
            var before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                PropertyList.Parse(input, "mutant");
            }
            catch (PropertyListFormatException e)
            {
                Assert.InRange(e.Offset, -1, input.Length);
            }
            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated < (16L * input.Length) + (1 << 20), $"allocated {allocated} bytes for {input.Length} input bytes");
        }, iter: 6000, threads: 1);
    }

    [Fact]
    public void Mutations_do_reach_both_readers_and_both_outcomes()
    {
        var parsed = 0;
        var rejected = 0;
        Gen.Select(Gen.Int[0, Seeds.Length - 1], Edit.Array[1, 2]).Sample((seed, edits) =>
        {
            try
            {
                PropertyList.Parse(Mutate(Seeds[seed], edits));
                parsed++;
            }
            catch (PropertyListFormatException)
            {
                rejected++;
            }
        }, iter: 1000, threads: 1);
        Assert.True(parsed > 50, $"only {parsed} mutants parsed");
        Assert.True(rejected > 50, $"only {rejected} mutants rejected");
    }
}

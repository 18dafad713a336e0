using System.Text;
using KextTrust.Formats.PropertyLists;
using KextTrust.TestSupport;

namespace KextTrust.Formats.Tests.PropertyLists;

/// <summary>Where each value of an XML plist starts, for checks of the contents that must name an offset.</summary>
public sealed class PlistOffsetsTests
{
    private const string Text = """
        <?xml version="1.0" encoding="UTF-8"?>
        <plist version="1.0">
        <dict>
        	<key>a</key>
        	<array>
        		<dict/>
        		<dict/>
        		<string>é</string>
        		<integer>7</integer>
        	</array>
        	<key>b</key>
        	<dict><key>c</key><true/></dict>
        </dict>
        </plist>
        """;

    private static int At(string needle, int from = 0) => Encoding.UTF8.GetByteCount(Text[..Text.IndexOf(needle, from, StringComparison.Ordinal)]);

    [Fact]
    public void EveryValueIsFoundAtTheByteOffsetOfItsStartTagAndEmptyContainersAreToldApart()
    {
        var root = (PlistDictionary)PropertyList.ParseXml(Encoding.UTF8.GetBytes(Text), "t.plist", out var at);
        Assert.Equal(At("<dict>"), at.Root);
        Assert.Equal(at.Root, at.Of(root));
        var a = root.RequireArray("a");
        Assert.Equal(At("<array>"), at.Of(root, "a"));
        var firstEmpty = At("<dict/>");
        var secondEmpty = At("<dict/>", Text.IndexOf("<dict/>", StringComparison.Ordinal) + 1);
        Assert.Equal(firstEmpty, at.Of(a, 0));
        Assert.Equal(secondEmpty, at.Of(a, 1));
        // Two empty dictionaries are equal values but distinct nodes, each with its own place.
        Assert.Equal(a[0], a[1]);
        Assert.Equal(firstEmpty, at.Of(a[0]));
        Assert.Equal(secondEmpty, at.Of(a[1]));
        Assert.Equal(At("<integer>"), at.Of(a, 3)); // after a two-byte character: a byte offset
        var b = root.RequireDictionary("b");
        Assert.Equal(At("<true/>"), at.Of(b, "c"));
        Assert.Equal(at.Of(b), at.Of(b, "missing"));  // an absent key: the dictionary that lacks it
        Assert.Equal(-1, at.Of(PropertyList.ParseXml(Encoding.UTF8.GetBytes(Text))));  // a node of another parse
    }

    [Fact]
    public void InABinaryPlistWrittenByPlistutilEveryValueIsFoundAtItsObject()
    {
        // libplist writes the binary form; the object table is read here from its trailer, independently of our reader.
        using var tmp = new TempDir();
        File.WriteAllText(tmp.Combine("in.plist"), Text);
        var r = ExternalTool.Run(ExternalTool.PlistUtil, "-i", tmp.Combine("in.plist"), "-o", tmp.Combine("out.bplist"), "-f", "bin");
        Assert.True(r.ExitCode == 0, r.StdErr);
        var bytes = File.ReadAllBytes(tmp.Combine("out.bplist"));
        var t = bytes.Length - 32;
        int intSize = bytes[t + 6];
        var count = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(t + 8));
        var top = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(t + 16));
        var table = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(t + 24));
        var objects = Enumerable.Range(0, count).Select(i => bytes.AsSpan(table + i * intSize, intSize).ToArray().Aggregate(0L, (v, b) => (v << 8) | b)).ToArray();

        var root = (PlistDictionary)PropertyList.ParseBinary(bytes, "t.bplist", out var at);
        Assert.Equal(objects[top], at.Root);
        Assert.Equal(at.Root, at.Of(root));
        var a = root.RequireArray("a");
        long[] values = [at.Of(root, "a"), at.Of(a, 0), at.Of(a, 1), at.Of(a, 2), at.Of(a, 3), at.Of(root, "b"), at.Of(root.RequireDictionary("b"), "c")];
        Assert.All(values, v => Assert.Contains(v, objects));
        // Each offset holds the marker of its kind: array, dictionary, dictionary, UTF-16 string, integer, dictionary, true.
        Assert.Equal([0xA, 0xD, 0xD, 0x6, 0x1, 0xD, 0x0], values.Select(v => bytes[v] >> 4));
        Assert.Equal(0x09, bytes[values[^1]]);
        Assert.Equal(at.Of(a), at.Of(root, "a"));
    }

    [Fact]
    public void WithoutOffsetsEmptyContainersAreStillTheSharedInstances()
    {
        var root = (PlistDictionary)PropertyList.ParseXml(Encoding.UTF8.GetBytes(Text));
        Assert.Same(PlistDictionary.Empty, root.RequireArray("a")[0]);
    }
}

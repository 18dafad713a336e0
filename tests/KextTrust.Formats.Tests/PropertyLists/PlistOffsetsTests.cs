using System.Text;
using KextTrust.Formats.PropertyLists;

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
    public void WithoutOffsetsEmptyContainersAreStillTheSharedInstances()
    {
        var root = (PlistDictionary)PropertyList.ParseXml(Encoding.UTF8.GetBytes(Text));
        Assert.Same(PlistDictionary.Empty, root.RequireArray("a")[0]);
    }
}

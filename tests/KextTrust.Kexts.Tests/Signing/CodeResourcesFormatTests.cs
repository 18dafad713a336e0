using System.Text;
using KextTrust.Formats;
using KextTrust.Formats.PropertyLists;
using KextTrust.Kexts.Signing;

namespace KextTrust.Kexts.Tests.Signing;

/// <summary>A malformed CodeResources fails with <see cref="CodeResourcesFormatException"/> naming the file, offset and rule.</summary>
public sealed class CodeResourcesFormatTests
{
    private const string Path = "/Library/Extensions/x.kext/Contents/_CodeSignature/CodeResources";

    private static string Seal() => Encoding.UTF8.GetString(new CodeResources(
        CodeResources.DefaultRules, CodeResources.DefaultRules2,
        new Dictionary<string, CodeResourceEntry>(StringComparer.Ordinal),
        new Dictionary<string, CodeResourceEntry>(StringComparer.Ordinal)
        {
            ["Resources/a.plist"] = new("Resources/a.plist", new byte[20], new byte[32], false, null, null, null),
        }).ToXml());

    private static CodeResourcesFormatException Refused(string text)
    {
        var e = Assert.Throws<CodeResourcesFormatException>(() => CodeResources.Parse(Encoding.UTF8.GetBytes(text), Path));
        Assert.IsAssignableFrom<KextTrustFormatException>(e);
        Assert.Equal(Path, e.SourceName);
        return e;
    }

    [Fact]
    public void AFileEntryOfTheWrongTypeIsRefusedAtItsValue()
    {
        var text = Seal();
        var entry = text.IndexOf("<key>Resources/a.plist</key>", StringComparison.Ordinal);
        var dict = text.IndexOf("<dict>", entry, StringComparison.Ordinal);
        var close = text.IndexOf("</dict>", dict, StringComparison.Ordinal);
        var bad = text[..dict] + "<string>oops</string>" + text[(close + "</dict>".Length)..];
        var e = Refused(bad);
        Assert.Equal(Encoding.UTF8.GetByteCount(bad[..dict]), e.Offset);
        Assert.Equal("entry 'Resources/a.plist' in 'files2' is neither data nor a dictionary", e.Rule);
    }

    [Fact]
    public void ATruncatedSealIsRefusedAtTheOffsetTheXmlReaderFound()
    {
        var text = Seal();
        var e = Refused(text[..(text.Length / 2)]);
        var xml = Assert.IsType<PropertyListFormatException>(e.InnerException);
        Assert.Equal(xml.Offset, e.Offset);
        Assert.InRange(e.Offset, 0, text.Length / 2);
    }

    [Fact]
    public void ARulesValueThatIsNotADictionaryIsRefusedAtThatValue()
    {
        var text = Seal();
        var key = text.IndexOf("<key>rules2</key>", StringComparison.Ordinal);
        var value = text.IndexOf("<dict>", key, StringComparison.Ordinal);
        // rules2 is the last key: its dictionary runs up to the root's closing tag.
        var bad = text[..value] + "<array/>" + text[text.LastIndexOf("\n</dict>", StringComparison.Ordinal)..];
        var e = Refused(bad);
        Assert.Equal(value, e.Offset);
        Assert.Equal("'rules2' is not a dictionary", e.Rule);
    }

    private static CodeResourcesFormatException RefusedBinary(byte[] bplist)
    {
        Assert.True(PropertyList.IsBinary(bplist));
        var e = Assert.Throws<CodeResourcesFormatException>(() => CodeResources.Parse(bplist, Path));
        Assert.Equal(Path, e.SourceName);
        return e;
    }

    [Fact]
    public void ABinarySealsEntryOfTheWrongTypeIsRefusedAtItsObject()
    {
        // A binary CodeResources whose files2 entry is a string: the error names the string object's offset (its
        // marker byte: 0x5F, then the length as an integer object 0x10 0x14, then the 20 ASCII bytes).
        var seal = PropertyList.Parse(Encoding.UTF8.GetBytes(Seal()));
        var root = Assert.IsType<PlistDictionary>(seal);
        var files2 = new PlistDictionary(("Resources/a.plist", new PlistString("NOT-A-HASH-VALUE-XYZ")));
        var bplist = PropertyList.ToBinary(new PlistDictionary(root.Select(kv => kv.Key == "files2" ? KeyValuePair.Create(kv.Key, (PlistNode)files2) : kv)));
        var e = RefusedBinary(bplist);
        Assert.Equal("entry 'Resources/a.plist' in 'files2' is neither data nor a dictionary", e.Rule);
        Assert.Equal(bplist.AsSpan().IndexOf("NOT-A-HASH-VALUE-XYZ"u8) - 3, e.Offset);
        Assert.Equal(0x5F, bplist[e.Offset]);
    }

    [Fact]
    public void ABinarySealWhoseRootIsNotADictionaryIsRefusedAtTheRootObject()
    {
        var bplist = PropertyList.ToBinary(new PlistArray([new PlistString("x")]));
        var e = RefusedBinary(bplist);
        Assert.Equal("the root is not a dictionary", e.Rule);
        Assert.Equal(0xA1, bplist[e.Offset]); // an array of one element
    }
}

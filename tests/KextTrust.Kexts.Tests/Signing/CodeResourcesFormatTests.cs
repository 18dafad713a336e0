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
}

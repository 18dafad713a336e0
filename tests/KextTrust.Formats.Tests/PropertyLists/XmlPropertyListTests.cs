using System.Text;
using KextTrust.Formats.PropertyLists;

namespace KextTrust.Formats.Tests.PropertyLists;

public class XmlPropertyListTests
{
    [Fact]
    public void Every_type_round_trips_through_xml_twice()
    {
        var tree = Samples.EveryType();
        var xml = PropertyList.ToXml(tree);
        var back = PropertyList.Parse(xml, "every.plist");
        Samples.AssertIdentical(tree, back);
        var again = PropertyList.ToXml(back);
        Assert.Equal(xml, again);
        Samples.AssertIdentical(tree, PropertyList.Parse(again));
    }

    [Fact]
    public void Writer_uses_apples_layout()
    {
        var tree = new PlistDictionary(
            ("CFBundleIdentifier", new PlistString("a&b<c>")),
            ("OSKernelResource", PlistBoolean.True),
            ("Off", PlistBoolean.False),
            ("List", new PlistArray(new PlistInteger(-5), new PlistReal(0.5), PlistArray.Empty)),
            ("Blob", new PlistData(new byte[60])),
            ("When", new PlistDate(new DateTime(2001, 1, 1, 0, 0, 0, DateTimeKind.Utc))),
            ("Ref", new PlistUid(3)),
            ("None", PlistDictionary.Empty));
        var expected =
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            + "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
            + "<plist version=\"1.0\">\n"
            + "<dict>\n"
            + "\t<key>CFBundleIdentifier</key>\n\t<string>a&amp;b&lt;c&gt;</string>\n"
            + "\t<key>OSKernelResource</key>\n\t<true/>\n"
            + "\t<key>Off</key>\n\t<false/>\n"
            + "\t<key>List</key>\n\t<array>\n\t\t<integer>-5</integer>\n\t\t<real>0.5</real>\n\t\t<array/>\n\t</array>\n"
            + "\t<key>Blob</key>\n\t<data>\n\t" + new string('A', 68) + "\n\tAAAAAAAAAAAA\n\t</data>\n"
            + "\t<key>When</key>\n\t<date>2001-01-01T00:00:00Z</date>\n"
            + "\t<key>Ref</key>\n\t<dict>\n\t\t<key>CF$UID</key>\n\t\t<integer>3</integer>\n\t</dict>\n"
            + "\t<key>None</key>\n\t<dict/>\n"
            + "</dict>\n"
            + "</plist>\n";
        Assert.Equal(expected, Encoding.UTF8.GetString(PropertyList.ToXml(tree)));
    }

    [Fact]
    public void Info_plist_quirks_are_accepted()
    {
        var text = "\uFEFF\n\n  \r\n<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- generated -->\n"
            + "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
            + "<plist version=\"1.0\">\n<!-- a comment before the value -->\n<dict>\n"
            + "\t<key>CFBundleName</key><!-- between key and value -->\n\t<string><![CDATA[a <raw> & ]] text]]></string>\n"
            + "\t<key>Entities</key>\t<string>&lt;&gt;&amp;&quot;&apos;&#65;&#x1F600;x<!-- inside -->y</string>\n"
            + "\t<key>Hex</key><integer>0x1F</integer>\n"
            + "\t<key>NegHex</key><integer>-0x10</integer>\n"
            + "\t<key>Neg</key><integer> -42 </integer>\n"
            + "\t<key>Max</key><integer>18446744073709551615</integer>\n"
            + "\t<key>Min</key><integer>-9223372036854775808</integer>\n"
            + "\t<key>NaN</key><real>nan</real><key>Inf</key><real>inf</real><key>NegInf</key><real>-inf</real><key>Exp</key><real>-1.5e3</real>\n"
            + "\t<key>Empty</key><string/><key>EmptyDict</key><dict/><key>EmptyArray</key><array/><key>EmptyPair</key><string></string>\n"
            + "\t<key>Data</key><data>\n\t\tAAEC\n\t\tAw==\n\t</data>\n"
            + "\t<key>True</key><true></true>\n"
            + "</dict>\n</plist>\n<!-- trailing comment -->\n\n";
        var d = Assert.IsType<PlistDictionary>(PropertyList.Parse(Encoding.UTF8.GetBytes(text)));
        Assert.Equal("a <raw> & ]] text", d.GetString("CFBundleName"));
        Assert.Equal("<>&\"'A\U0001F600xy", d.GetString("Entities"));
        Assert.Equal(31, d.GetInt64("Hex"));
        Assert.Equal(-16, d.GetInt64("NegHex"));
        Assert.Equal(-42, d.GetInt64("Neg"));
        Assert.Equal(ulong.MaxValue, d.Require<PlistInteger>("Max").AsUInt64);
        Assert.Equal(long.MinValue, d.GetInt64("Min"));
        Assert.True(double.IsNaN(d.Require<PlistReal>("NaN").Value));
        Assert.Equal(double.PositiveInfinity, d.Require<PlistReal>("Inf").Value);
        Assert.Equal(double.NegativeInfinity, d.Require<PlistReal>("NegInf").Value);
        Assert.Equal(-1500.0, d.Require<PlistReal>("Exp").Value);
        Assert.Equal("", d.GetString("Empty"));
        Assert.Equal("", d.GetString("EmptyPair"));
        Assert.Empty(d.GetDictionary("EmptyDict")!);
        Assert.Empty(d.GetArray("EmptyArray")!);
        Assert.Equal([0, 1, 2, 3], d.GetData("Data")!.ToArray());
        Assert.True(d.GetBoolean("True"));
    }

    [Fact]
    public void Apple_info_plists_parse_with_their_keys()
    {
        foreach (var path in Samples.AppleInfoPlists())
        {
            var d = Assert.IsType<PlistDictionary>(PropertyList.ReadFile(path));
            Assert.False(string.IsNullOrEmpty(d.GetString("CFBundleIdentifier")), path);
            Assert.Equal("6.0", d.GetString("CFBundleInfoDictionaryVersion"));
            Samples.AssertIdentical(d, PropertyList.Parse(PropertyList.ToXml(d)));
        }
    }

    public static TheoryData<string> MalformedCases() =>
    [
        "<plist version=\"1.0\">§<dict><key>a</key><string>x</string>",
        "<plist><array>§</dict></plist>",
        "<plist><array><string>x§</array></string></plist>",
        "<plist>§<foo/></plist>",
        "<plist><dict>§<key>a</key></dict></plist>",
        "<plist><dict>§<key>a</key><key>b</key><true/></dict></plist>",
        "<plist><dict>§<string>a</string><true/></dict></plist>",
        "<plist><array>§<key>a</key></array></plist>",
        "<plist><true/>§<false/></plist>",
        "<plist>§</plist>",
        "<plist>§<data>@@@@</data></plist>",
        "<plist>§<data>AAE</data></plist>",
        "<plist>§<integer>18446744073709551616</integer></plist>",
        "<plist>§<integer>-9223372036854775809</integer></plist>",
        "<plist>§<integer>0x1FFFFFFFFFFFFFFFF</integer></plist>",
        "<plist>§<integer>12a</integer></plist>",
        "<plist>§<integer></integer></plist>",
        "<plist>§<integer>0xG</integer></plist>",
        "<plist>§<real>abc</real></plist>",
        "<plist>§<date>2024-02-30T00:00:00Z</date></plist>",
        "<plist>§<date>2024-01-01 00:00:00</date></plist>",
        "<plist>§<date>2024-01-01T24:00:00Z</date></plist>",
        "<plist><true/></plist>§x",
        "<plist><true/></plist>\n§<plist><true/></plist>",
        "<plist><dict><key>a</key><true/>§<key>a</key><false/></dict></plist>",
        "<plist><string>§&foo;</string></plist>",
        "<plist><string>§&#xD800;</string></plist>",
        "<plist><string>§&amp</string></plist>",
        "<!DOCTYPE plist [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><plist><string>§&xxe;</string></plist>",
        "<plist>§<!-- x </plist>",
        "<plist><string>a§<b/></string></plist>",
        "<plist><true>§x</true></plist>",
        "§<dict/>",
        "§",
        "  §",
        "§<plist/>",
        "<plist>§<string>abc",
        "<plist>§<string",
        "<plist><string x§>a</string></plist>",
        "<plist><string x=§y>a</string></plist>",
        "<plist>§<![CDATA[x]]></plist>",
        "<plist><string>§<![CDATA[x</string></plist>",
    ];

    [Theory]
    [MemberData(nameof(MalformedCases))]
    public void Malformed_xml_is_rejected_at_the_right_offset(string marked)
    {
        var at = marked.IndexOf('§');
        var text = marked.Remove(at, 1);
        var expectedOffset = Encoding.UTF8.GetByteCount(text.AsSpan(0, at));
        var e = Assert.Throws<PropertyListFormatException>(() => PropertyList.Parse(Encoding.UTF8.GetBytes(text), "bad.plist"));
        Assert.Equal(expectedOffset, e.Offset);
        Assert.Equal("bad.plist", e.SourceName);
        Assert.Equal("property list", e.Format);
        Assert.False(string.IsNullOrWhiteSpace(e.Rule));
    }

    [Fact]
    public void Invalid_utf8_is_rejected_at_the_bad_byte()
    {
        var bytes = Encoding.UTF8.GetBytes("<plist><string>ab\u0001</string></plist>");
        bytes[Array.IndexOf(bytes, (byte)1)] = 0xFF;
        var e = Assert.Throws<PropertyListFormatException>(() => PropertyList.Parse(bytes));
        Assert.Equal(17, e.Offset);
    }

    [Fact]
    public void Utf16_input_is_rejected()
    {
        var bytes = Encoding.Unicode.GetPreamble().Concat(Encoding.Unicode.GetBytes("<plist><true/></plist>")).ToArray();
        Assert.Equal(0, Assert.Throws<PropertyListFormatException>(() => PropertyList.Parse(bytes)).Offset);
    }

    [Fact]
    public void Nesting_beyond_the_depth_limit_is_rejected_not_a_stack_overflow()
    {
        var text = "<plist>" + string.Concat(Enumerable.Repeat("<array>", 600)) + string.Concat(Enumerable.Repeat("</array>", 600)) + "</plist>";
        var e = Assert.Throws<PropertyListFormatException>(() => PropertyList.Parse(Encoding.UTF8.GetBytes(text)));
        Assert.Equal(7 + (512 * 7), e.Offset);
        Assert.Contains("nesting", e.Rule);
        var ok = "<plist>" + string.Concat(Enumerable.Repeat("<array>", 512)) + string.Concat(Enumerable.Repeat("</array>", 512)) + "</plist>";
        Assert.IsType<PlistArray>(PropertyList.Parse(Encoding.UTF8.GetBytes(ok)));
    }

    [Fact]
    public void Control_characters_survive_via_character_references()
    {
        var tree = new PlistString("a\u0001b\rc\td\ne\u007F");
        var xml = PropertyList.ToXml(tree);
        Assert.Contains("&#1;", Encoding.UTF8.GetString(xml));
        Samples.AssertIdentical(tree, PropertyList.Parse(xml));
    }

    [Fact]
    public void Unpaired_surrogates_cannot_be_written_as_xml()
    {
        Assert.Throws<ArgumentException>(() => PropertyList.ToXml(new PlistString("\uD800")));
    }
}

using KextTrust.Formats.PropertyLists;
using KextTrust.TestSupport;

namespace KextTrust.Formats.Tests.PropertyLists;

/// <summary>Checks our reader and writers against Debian's plistutil (libplist), which we did not write.</summary>
public class PlistUtilCrossCheckTests
{
    private static byte[] Convert(TempDir dir, byte[] input, string format)
    {
        var inPath = dir.Combine($"in-{Guid.NewGuid():N}");
        var outPath = dir.Combine($"out-{Guid.NewGuid():N}");
        File.WriteAllBytes(inPath, input);
        var result = ExternalTool.Run(ExternalTool.PlistUtil, "-i", inPath, "-o", outPath, "-f", format);
        Assert.True(result.ExitCode == 0, $"plistutil exited {result.ExitCode}: {result.StdErr}");
        return File.ReadAllBytes(outPath);
    }

    [Fact]
    public void Our_binary_converted_to_xml_by_plistutil_parses_back_equal()
    {
        using var dir = new TempDir();
        var tree = Samples.EveryType();
        var xml = Convert(dir, PropertyList.ToBinary(tree), "xml");
        Assert.False(PropertyList.IsBinary(xml));
        Samples.AssertIdentical(tree, PropertyList.Parse(xml, "plistutil.xml"));
    }

    [Fact]
    public void Our_xml_converted_to_binary_by_plistutil_parses_back_equal()
    {
        // libplist 2.2 keeps an XML CF$UID dictionary as a dictionary (CoreFoundation and we read it
        // as a UID), so this direction is checked without UIDs; the binary direction above has them.
        using var dir = new TempDir();
        var tree = Samples.EveryType(withUid: false);
        var bin = Convert(dir, PropertyList.ToXml(tree), "bin");
        Assert.True(PropertyList.IsBinary(bin));
        Samples.AssertIdentical(tree, PropertyList.Parse(bin, "plistutil.bplist"));
    }

    [Fact]
    public void Every_apple_info_plist_equals_plistutils_binary_rendering_of_it()
    {
        using var dir = new TempDir();
        var count = 0;
        foreach (var path in Samples.AppleInfoPlists())
        {
            var ours = PropertyList.ReadFile(path);
            var bin = Convert(dir, File.ReadAllBytes(path), "bin");
            Samples.AssertIdentical(ours, PropertyList.Parse(bin, path + " (plistutil bin)"));
            count++;
        }
        Assert.True(count >= 90, $"only {count} Info.plist files found");
    }
}

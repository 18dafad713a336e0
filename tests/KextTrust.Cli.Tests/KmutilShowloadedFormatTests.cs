using System.Globalization;
using System.Text.RegularExpressions;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Bundles;
using static KextTrust.Cli.Tests.BootMacFixture;

namespace KextTrust.Cli.Tests;

/// <summary>
/// <c>kmutil showloaded</c> prints kmutil's columns. The expected layout is that of public captures of the real tools:
/// HackTricks' macOS IOKit page ("Index Refs Address            Size       Wired      Name (Version) UUID &lt;Linked
/// Against&gt;", macOS 11.4) and a kextstat row quoted in a public blog ("   74    0 0xffffff7f808ee000 0xb000     0xb000
///      nl.bjaelectronics.driver.PL2303 (1.0.0d1) &lt;73 34 5 4 3&gt;"): index right-aligned in 5, refs in 4, then address,
/// size and wired left-aligned in 18, 10 and 10 columns.
/// </summary>
[Collection(BootMacCollection.Name)]
public sealed partial class KmutilShowloadedFormatTests(BootMacFixture fx)
{
    [GeneratedRegex(@"^(?<index>[ \d]{5}) (?<refs>[ \d]{4}) (?<address>.{18}) (?<size>.{10}) (?<wired>.{10}) (?<name>\S+) \((?<version>[^)]+)\)(?: (?<uuid>[0-9A-F-]{36}))? <(?<linked>[\d ]*)>$")]
    private static partial Regex Row();

    [Fact]
    public void Showloaded_text_has_kmutil_s_header_and_columns_with_the_AuxKC_s_address_size_and_uuid()
    {
        using var mac = fx.Clone();
        var boot = mac.Ok("startup");
        var r = CliRunner.Run("kmutil", "showloaded", "--machine", mac.Dir);
        Assert.Equal(0, r.ExitCode);
        var lines = r.StdOut.ReplaceLineEndings("\n").TrimEnd('\n').Split('\n');
        Assert.Equal("Index Refs Address            Size       Wired      Name (Version) UUID <Linked Against>", lines[0]);
        var row = Assert.Single(lines.Skip(1));
        var m = Row().Match(row);
        Assert.True(m.Success, row);
        Assert.Equal(boot.Json.GetProperty("loaded")[0].GetProperty("loadTag").GetInt32(), int.Parse(m.Groups["index"].Value, CultureInfo.InvariantCulture));
        Assert.Equal(Driver, m.Groups["name"].Value);
        Assert.Equal("1.0.0", m.Groups["version"].Value);
        Assert.Equal(0, int.Parse(m.Groups["refs"].Value, CultureInfo.InvariantCulture));
        Assert.StartsWith("0x", m.Groups["address"].Value, StringComparison.Ordinal);
        Assert.Equal(m.Groups["size"].Value, m.Groups["wired"].Value);
        // The size and the UUID are the AuxKC's own: _PrelinkExecutableSize, and the kext's LC_UUID as llvm reads the bundle.
        var size = Convert.ToUInt64(m.Groups["size"].Value.Trim(), 16);
        Assert.True(size > 0);
        var bundle = Directory.EnumerateDirectories(Path.Combine(mac.Dir, "Library", "Extensions"), "*.kext").Select(KextBundle.Open).Single(b => b.BundleId == Driver);
        using var kext = MachOFile.Open(bundle.ExecutablePath!);
        Assert.Equal(kext.Slices.Single(s => s.Architecture == "arm64e").UuidString, m.Groups["uuid"].Value);
    }
}

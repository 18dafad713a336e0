using System.Globalization;
using System.Text;
using KextTrust.Boot.SecureBoot;

namespace KextTrust.Cli;

/// <summary>
/// <c>kmutil showloaded</c> in Apple's columns, so scripts written against the real tool parse ours: the header
/// "Index Refs Address            Size       Wired      Name (Version) UUID &lt;Linked Against&gt;" and one row per kext,
/// index right-aligned in 5, refs in 4, address, size and wired left-aligned in 18, 10 and 10 (as kextstat and kmutil
/// print them: e.g. "   74    0 0xffffff7f808ee000 0xb000     0xb000     nl.bjaelectronics.driver.PL2303 (1.0.0d1) &lt;73 34 5 4 3&gt;"),
/// then "bundle-id (version) UUID &lt;tags it links against, highest first&gt;". Only the third-party kexts the kernel
/// loaded from the AuxKC are listed (the simulated kernel's own KPI pseudo-kexts have no load tags); a codeless kext
/// has address 0 and no UUID.
/// </summary>
internal static class KmutilShowloadedText
{
    /// <summary>The header line.</summary>
    public const string Header = "Index Refs Address            Size       Wired      Name (Version) UUID <Linked Against>";

    /// <summary>Header and rows (lines end with "\n").</summary>
    public static string Format(IReadOnlyList<LoadedKextInfo> loaded)
    {
        ArgumentNullException.ThrowIfNull(loaded);
        var sb = new StringBuilder(Header).Append('\n');
        foreach (var k in loaded)
        {
            var refs = loaded.Count(o => o.LinkedAgainst.Contains(k.LoadTag));
            var address = k.Address is { } a ? "0x" + a.ToString("x", CultureInfo.InvariantCulture) : "0";
            var size = k.Size == 0 ? "0" : "0x" + k.Size.ToString("x", CultureInfo.InvariantCulture);
            sb.Append(CultureInfo.InvariantCulture, $"{k.LoadTag,5} {refs,4} {address,-18} {size,-10} {size,-10} {k.BundleId} ({k.Version})");
            if (k.Uuid is { } uuid)
            {
                sb.Append(' ').Append(uuid);
            }
            sb.Append(" <").AppendJoin(' ', k.LinkedAgainst).Append(">\n");
        }
        return sb.ToString();
    }
}

namespace KextTrust.Kexts.Kpi;

/// <summary>
/// A tiny, bounded extractor of the length-prefixed identifiers (<c>&lt;len&gt;&lt;name&gt;</c>) of an
/// Itanium-mangled C++ symbol, as it appears in a Mach-O symbol table (<c>__ZN11IOUSBDevice4openEP9IOService</c>
/// → IOUSBDevice, open, IOService; <c>__ZTV11IOUSBDevice</c> → IOUSBDevice).
/// </summary>
/// <remarks>
/// Not a demangler: it walks the name once, left to right, skipping the productions whose digits are not
/// identifier lengths (substitutions <c>S…_</c>, template parameters <c>T…_</c>, ctor/dtor <c>C1</c>/<c>D0</c>,
/// thunk offsets <c>Th…_</c>/<c>Tv…_…_</c>, literals <c>L…E</c>, discriminators <c>_…</c>), and reads every other
/// decimal run as an identifier length. Class names therefore match as whole identifiers, never substrings
/// (<c>IOUSBHostDevice</c> is not <c>IOUSBDevice</c>). Linear in the symbol length; at most
/// <see cref="MaxIdentifiers"/> identifiers; a length running past the end stops the walk.
/// </remarks>
internal static class ItaniumIdentifiers
{
    /// <summary>Upper bound on identifiers returned for one symbol.</summary>
    public const int MaxIdentifiers = 64;

    /// <summary>True for a C++ symbol: <c>__Z…</c> (Mach-O adds one underscore to <c>_Z…</c>).</summary>
    public static bool IsMangled(string symbol) => symbol.StartsWith("__Z", StringComparison.Ordinal);

    /// <summary>The length-prefixed identifiers of a mangled symbol, in order; empty for a C symbol.</summary>
    public static IReadOnlyList<string> Extract(string symbol)
    {
        ArgumentNullException.ThrowIfNull(symbol);
        if (!IsMangled(symbol))
        {
            return [];
        }
        var s = symbol.AsSpan(3);
        var result = new List<string>();
        var i = 0;
        while (i < s.Length && result.Count < MaxIdentifiers)
        {
            var c = s[i];
            if (char.IsAsciiDigit(c))
            {
                var len = 0;
                while (i < s.Length && char.IsAsciiDigit(s[i]))
                {
                    len = len * 10 + (s[i] - '0');
                    i++;
                    if (len > s.Length)
                    {
                        return result; // malformed: length past the end
                    }
                }
                if (len == 0)
                {
                    continue;
                }
                if (i + len > s.Length)
                {
                    return result;
                }
                result.Add(s.Slice(i, len).ToString());
                i += len;
                continue;
            }
            switch (c)
            {
                case 'S':
                    // St, Sa, Sb, Ss, Si, So, Sd: two letters; S_ / S<seq-id>_: skip through '_'.
                    i = i + 1 < s.Length && char.IsAsciiLetterLower(s[i + 1]) ? i + 2 : SkipThrough(s, i + 1, '_');
                    break;
                case 'T':
                    if (i + 1 < s.Length && s[i + 1] == 'h')
                    {
                        i = SkipThrough(s, i + 2, '_'); // Th <nv-offset> _
                    }
                    else if (i + 1 < s.Length && s[i + 1] == 'v')
                    {
                        i = SkipThrough(s, SkipThrough(s, i + 2, '_'), '_'); // Tv <offset> _ <offset> _
                    }
                    else if (i + 1 < s.Length && (s[i + 1] == '_' || char.IsAsciiDigit(s[i + 1])))
                    {
                        i = SkipThrough(s, i + 1, '_'); // template parameter
                    }
                    else
                    {
                        i += 2; // TV, TI, TS, TT, …
                    }
                    break;
                case 'C' or 'D' when i + 1 < s.Length && char.IsAsciiDigit(s[i + 1]):
                    i += 2; // C1 C2 C3 D0 D1 D2
                    break;
                case 'L' when i + 1 < s.Length && s[i + 1] != '_':
                    i = SkipThrough(s, i + 1, 'E'); // literal
                    break;
                case '_':
                    i++;
                    while (i < s.Length && char.IsAsciiDigit(s[i]))
                    {
                        i++; // discriminator _<n> or _<n>_
                    }
                    break;
                default:
                    i++;
                    break;
            }
        }
        return result;
    }

    private static int SkipThrough(ReadOnlySpan<char> s, int from, char end)
    {
        var j = from;
        while (j < s.Length && s[j] != end)
        {
            j++;
        }
        return Math.Min(j + 1, s.Length);
    }
}

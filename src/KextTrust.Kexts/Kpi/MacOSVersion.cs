using System.Globalization;

namespace KextTrust.Kexts.Kpi;

/// <summary>A macOS product version (<c>10.15.7</c>, <c>11.2</c>, <c>15.4</c>), ordered numerically.</summary>
public readonly record struct MacOSVersion(int Major, int Minor, int Patch = 0) : IComparable<MacOSVersion>
{
    /// <inheritdoc/>
    public int CompareTo(MacOSVersion other)
    {
        var c = Major.CompareTo(other.Major);
        if (c != 0)
        {
            return c;
        }
        c = Minor.CompareTo(other.Minor);
        return c != 0 ? c : Patch.CompareTo(other.Patch);
    }

    /// <summary>Ordering operators.</summary>
    public static bool operator <(MacOSVersion a, MacOSVersion b) => a.CompareTo(b) < 0;

    /// <summary>Ordering operators.</summary>
    public static bool operator >(MacOSVersion a, MacOSVersion b) => a.CompareTo(b) > 0;

    /// <summary>Ordering operators.</summary>
    public static bool operator <=(MacOSVersion a, MacOSVersion b) => a.CompareTo(b) <= 0;

    /// <summary>Ordering operators.</summary>
    public static bool operator >=(MacOSVersion a, MacOSVersion b) => a.CompareTo(b) >= 0;

    /// <summary>Parses <c>MAJOR[.MINOR[.PATCH]]</c> (1–3 decimal components, each 0–9999).</summary>
    public static bool TryParse(string? text, out MacOSVersion version)
    {
        version = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }
        var parts = text.Trim().Split('.');
        if (parts.Length is < 1 or > 3)
        {
            return false;
        }
        Span<int> n = stackalloc int[3];
        for (var i = 0; i < parts.Length; i++)
        {
            var p = parts[i];
            if (p.Length is 0 or > 4 || !p.All(char.IsAsciiDigit))
            {
                return false;
            }
            n[i] = int.Parse(p, NumberStyles.None, CultureInfo.InvariantCulture);
        }
        version = new MacOSVersion(n[0], n[1], n[2]);
        return true;
    }

    /// <summary>Parses or throws <see cref="FormatException"/>.</summary>
    public static MacOSVersion Parse(string text) =>
        TryParse(text, out var v) ? v : throw new FormatException($"not a macOS version: '{text}'");

    /// <summary><c>10.15</c>, <c>11.0</c>, <c>10.15.7</c>: the patch only when non-zero.</summary>
    public override string ToString() =>
        Patch == 0
            ? string.Create(CultureInfo.InvariantCulture, $"{Major}.{Minor}")
            : string.Create(CultureInfo.InvariantCulture, $"{Major}.{Minor}.{Patch}");
}

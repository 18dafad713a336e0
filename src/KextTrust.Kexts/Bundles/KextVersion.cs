using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace KextTrust.Kexts.Bundles;

/// <summary>The build stage of a kext version (xnu <c>OSKextVersion.c</c>).</summary>
public enum KextVersionStage
{
    Development = 1, // 'd'
    Alpha = 3,       // 'a'
    Beta = 5,        // 'b'
    Candidate = 7,   // 'f' or 'fc'
    Release = 9,     // no stage letter
}

/// <summary>
/// A kext version as the kernel parses <c>CFBundleVersion</c> and <c>OSBundleCompatibleVersion</c>:
/// <c>MAJOR[.MINOR[.REVISION]][STAGE[LEVEL]]</c> with up to 4 digits for major, minor and revision,
/// stage <c>d</c>, <c>a</c>, <c>b</c>, <c>f</c>/<c>fc</c> or none (release), and a stage level of at
/// most 3 digits and at most 255 (<c>f</c> with level 0 is invalid). The encoded value
/// <c>major·10¹² + minor·10⁸ + revision·10⁴ + stage·10³ + level</c> orders versions by plain integer
/// comparison, exactly as <c>OSKextParseVersionString</c> does; a string it would reject (returning −1)
/// fails <see cref="TryParse"/>.
/// </summary>
public readonly record struct KextVersion : IComparable<KextVersion>
{
    private const int MaxNumberDigits = 4;
    private const int MaxLevelDigits = 3;
    private const int MaxLevel = 255;

    private KextVersion(long encoded, string text)
    {
        Encoded = encoded;
        Text = text;
    }

    /// <summary>The kernel's integer encoding; larger is newer.</summary>
    public long Encoded { get; }

    /// <summary>The string the version was parsed from.</summary>
    public string Text { get; }

    public int Major => (int)(Encoded / 1_000_000_000_000L);
    public int Minor => (int)(Encoded / 100_000_000L % 10_000);
    public int Revision => (int)(Encoded / 10_000L % 10_000);
    public KextVersionStage Stage => (KextVersionStage)(int)(Encoded / 1_000L % 10);
    public int StageLevel => (int)(Encoded % 1_000);

    public static KextVersion Parse(string text) =>
        TryParse(text, out var v) ? v : throw new FormatException($"'{text}' is not a valid kext version (MAJOR[.MINOR[.REVISION]][d|a|b|f|fc LEVEL])");

    public static bool TryParse([NotNullWhen(true)] string? text, out KextVersion version)
    {
        version = default;
        if (string.IsNullOrEmpty(text))
        {
            return false;
        }
        var s = text.AsSpan();
        var i = 0;
        if (!ReadNumber(s, ref i, MaxNumberDigits, out var major))
        {
            return false;
        }
        long minor = 0, revision = 0;
        if (i < s.Length && s[i] == '.')
        {
            i++;
            if (!ReadNumber(s, ref i, MaxNumberDigits, out minor))
            {
                return false;
            }
            if (i < s.Length && s[i] == '.')
            {
                i++;
                if (!ReadNumber(s, ref i, MaxNumberDigits, out revision))
                {
                    return false;
                }
            }
        }
        var stage = KextVersionStage.Release;
        long level = 0;
        if (i < s.Length)
        {
            switch (s[i])
            {
                case 'd': stage = KextVersionStage.Development; i++; break;
                case 'a': stage = KextVersionStage.Alpha; i++; break;
                case 'b': stage = KextVersionStage.Beta; i++; break;
                case 'f':
                    stage = KextVersionStage.Candidate;
                    i++;
                    if (i < s.Length && s[i] == 'c')
                    {
                        i++;
                    }
                    break;
                default: return false;
            }
            if (i < s.Length && !ReadNumber(s, ref i, MaxLevelDigits, out level))
            {
                return false;
            }
            if (level > MaxLevel || (stage == KextVersionStage.Candidate && level == 0))
            {
                return false;
            }
        }
        if (i != s.Length)
        {
            return false;
        }
        var encoded = major * 1_000_000_000_000L + minor * 100_000_000L + revision * 10_000L
                      + (long)stage * 1_000L + level;
        version = new KextVersion(encoded, text);
        return true;
    }

    private static bool ReadNumber(ReadOnlySpan<char> s, ref int i, int maxDigits, out long value)
    {
        value = 0;
        var start = i;
        while (i < s.Length && s[i] is >= '0' and <= '9')
        {
            if (i - start == maxDigits)
            {
                return false;
            }
            value = value * 10 + (s[i] - '0');
            i++;
        }
        return i > start;
    }

    public int CompareTo(KextVersion other) => Encoded.CompareTo(other.Encoded);

    public static bool operator <(KextVersion a, KextVersion b) => a.Encoded < b.Encoded;
    public static bool operator >(KextVersion a, KextVersion b) => a.Encoded > b.Encoded;
    public static bool operator <=(KextVersion a, KextVersion b) => a.Encoded <= b.Encoded;
    public static bool operator >=(KextVersion a, KextVersion b) => a.Encoded >= b.Encoded;

    /// <summary>Equality is by encoded value: "1.0" equals "1.0.0".</summary>
    public bool Equals(KextVersion other) => Encoded == other.Encoded;

    public override int GetHashCode() => Encoded.GetHashCode();

    public override string ToString() => Text ?? Encoded.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// Whether a library with this version and <paramref name="compatibleVersion"/> satisfies a
    /// dependency that requests <paramref name="requested"/>. KextTrust uses the documented rule
    /// <c>OSBundleCompatibleVersion ≤ requested ≤ CFBundleVersion</c>; xnu's
    /// <c>OSKext::isCompatibleWithVersion</c> omits the lower bound, which
    /// <see cref="IsCompatibleAsKernelChecks"/> models for comparison.
    /// </summary>
    public bool Satisfies(KextVersion requested, KextVersion compatibleVersion) =>
        compatibleVersion <= this && compatibleVersion <= requested && requested <= this;

    /// <summary>xnu's check: compatibleVersion ≤ version and requested ≤ version.</summary>
    public bool IsCompatibleAsKernelChecks(KextVersion requested, KextVersion compatibleVersion) =>
        compatibleVersion <= this && requested <= this;
}

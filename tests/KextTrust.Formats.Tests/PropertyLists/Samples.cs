using System.Text;
using KextTrust.Formats.PropertyLists;

namespace KextTrust.Formats.Tests.PropertyLists;

internal static class Samples
{
    public static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    public static string Xml(string body) =>
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist version=\"1.0\">\n"
        + body + "\n</plist>\n";

    /// <summary>A tree holding every node type that XML can carry, with edge values.</summary>
    public static PlistDictionary EveryType(bool withUid = true)
    {
        var large = new byte[5000];
        for (var i = 0; i < large.Length; i++)
        {
            large[i] = (byte)(i * 31);
        }
        var entries = new List<(string, PlistNode)>
        {
            ("string", new PlistString("com.apple.kernel")),
            ("unicode", new PlistString("ümlaut ✓ 日本 \U0001F600 <&> \"'")),
            ("empty string", new PlistString("")),
            ("uint64 max", new PlistInteger(ulong.MaxValue)),
            ("int64 min", new PlistInteger(long.MinValue)),
            ("int64 max", new PlistInteger(long.MaxValue)),
            ("negative", new PlistInteger(-1)),
            ("zero", new PlistInteger(0)),
            ("byte", new PlistInteger(200)),
            ("short", new PlistInteger(40000)),
            ("int", new PlistInteger(3_000_000_000L)),
            ("pi", new PlistReal(Math.PI)),
            ("nan", new PlistReal(double.NaN)),
            ("inf", new PlistReal(double.PositiveInfinity)),
            ("-inf", new PlistReal(double.NegativeInfinity)),
            ("tiny", new PlistReal(double.Epsilon)),
            ("true", PlistBoolean.True),
            ("false", PlistBoolean.False),
            ("date", new PlistDate(new DateTime(2024, 2, 29, 23, 59, 58, DateTimeKind.Utc))),
            ("old date", new PlistDate(new DateTime(1904, 1, 1, 0, 0, 0, DateTimeKind.Utc))),
            ("empty data", new PlistData([])),
            ("large data", new PlistData(large)),
            ("empty dict", PlistDictionary.Empty),
            ("empty array", PlistArray.Empty),
            ("nested", new PlistArray(new PlistArray(PlistArray.Empty, PlistDictionary.Empty), new PlistDictionary(("inner", new PlistArray(new PlistString("x"), new PlistInteger(1)))))),
        };
        if (withUid)
        {
            entries.Add(("uid", new PlistUid(0)));
            entries.Add(("big uid", new PlistUid(uint.MaxValue)));
        }
        return new PlistDictionary([.. entries]);
    }

    public static IEnumerable<string> AppleInfoPlists()
    {
        var root = TestSupport.Corpus.XnuKpiData;
        var files = Directory.EnumerateFiles(root, "Info.plist", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        Assert.NotEmpty(files);
        return files;
    }

    /// <summary>Asserts equality and also that dictionary key order is the same everywhere.</summary>
    public static void AssertIdentical(PlistNode expected, PlistNode actual)
    {
        Assert.True(expected.Equals(actual), $"trees differ at {Diff(expected, actual, "/")}");
        AssertSameOrder(expected, actual);
    }

    private static string Diff(PlistNode expected, PlistNode actual, string path)
    {
        if (expected is PlistDictionary d && actual is PlistDictionary o)
        {
            foreach (var (key, value) in d.Entries)
            {
                if (o[key] is not { } theirs)
                {
                    return $"{path}{key} (missing)";
                }
                if (!value.Equals(theirs))
                {
                    return Diff(value, theirs, $"{path}{key}/");
                }
            }
            return $"{path} (extra keys: {string.Join(", ", o.Keys.Except(d.Keys))})";
        }
        if (expected is PlistArray a && actual is PlistArray b && a.Count == b.Count)
        {
            for (var i = 0; i < a.Count; i++)
            {
                if (!a[i].Equals(b[i]))
                {
                    return Diff(a[i], b[i], $"{path}{i}/");
                }
            }
        }
        return $"{path}: expected {expected.Kind} {Short(expected)}, actual {actual.Kind} {Short(actual)}";
    }

    private static string Short(PlistNode n)
    {
        var s = n.ToString() ?? "";
        return s.Length > 80 ? s[..80] + "…" : s;
    }

    private static void AssertSameOrder(PlistNode expected, PlistNode actual)
    {
        switch (expected)
        {
            case PlistDictionary d:
                var other = (PlistDictionary)actual;
                Assert.Equal(d.Keys, other.Keys);
                foreach (var (key, value) in d.Entries)
                {
                    AssertSameOrder(value, other[key]!);
                }
                break;
            case PlistArray a:
                for (var i = 0; i < a.Count; i++)
                {
                    AssertSameOrder(a[i], ((PlistArray)actual)[i]);
                }
                break;
        }
    }
}

using KextTrust.Formats;
using KextTrust.Formats.PropertyLists;
using KextTrust.Kexts.Bundles;

namespace KextTrust.Consent.Policy;

/// <summary>The result of matching a kext against the exclude list.</summary>
public sealed record ExcludeListMatch(string BundleId, string VersionSpec, string Rule);

/// <summary>
/// <c>AppleKextExcludeList.kext</c>'s <c>OSKextExcludeList</c>: bundle id → version spec, with xnu's grammar
/// (<c>OSKext::isInExcludeList</c>): comma/whitespace separated versions; <c>LT</c> (&lt;) or <c>LE</c> (≤) only on
/// the first token; other tokens match exactly; a spec longer than 31 characters is ignored.
/// </summary>
public sealed record ExcludeList(string Version, IReadOnlyDictionary<string, string> Entries)
{
    /// <summary>The exclude list's bundle id.</summary>
    public const string BundleId = "com.apple.driver.KextExcludeList";

    /// <summary>xnu ignores version specs longer than this.</summary>
    internal const int MaxSpecLength = 31;

    /// <summary>The default list shipped on a new simulated Mac: a few realistic bans plus test/demo ids.</summary>
    public static ExcludeList Default { get; } = new("21.0.0", new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["com.example.banned"] = "LE 99.0.0",
        ["com.example.banned.old"] = "LT 2.0.0",
        ["com.example.banned.exact"] = "1.0.0, 1.0.1",
        ["com.parallels.kext.vnic"] = "LT 7.0.0",
        ["com.vmware.kext.vmx86"] = "LT 1.2.3",
        ["com.Logitech.Unifying.HID Driver"] = "LE 1.3.1",
        ["com.avatron.AVExFramebuffer"] = "LE 1.7",
    });

    /// <summary>Returns the matching rule, or null when <paramref name="version"/> of <paramref name="bundleId"/> is not excluded.</summary>
    public ExcludeListMatch? Match(string bundleId, KextVersion version)
    {
        if (!Entries.TryGetValue(bundleId, out var spec))
        {
            return null;
        }
        if (spec.Length > MaxSpecLength)
        {
            return null;
        }
        var tokens = spec.Split([',', ' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries);
        for (var i = 0; i < tokens.Length; i++)
        {
            var token = tokens[i];
            var op = "==";
            if (i == 0 && (token.StartsWith("LT", StringComparison.Ordinal) || token.StartsWith("LE", StringComparison.Ordinal)))
            {
                op = token[..2] == "LT" ? "<" : "<=";
                token = token[2..];
                if (token.Length == 0)
                {
                    if (tokens.Length < 2)
                    {
                        return null;
                    }
                    token = tokens[++i];
                }
            }
            if (!KextVersion.TryParse(token, out var v))
            {
                continue;
            }
            var hit = op switch { "<" => version < v, "<=" => version <= v, _ => version == v };
            if (hit)
            {
                return new ExcludeListMatch(bundleId, spec, $"{bundleId} {op} {v}");
            }
        }
        return null;
    }

    /// <summary>The exclude-list kext's Info.plist.</summary>
    internal byte[] ToInfoPlist() => PropertyList.ToXml(new PlistDictionary(
        ("CFBundleIdentifier", new PlistString(BundleId)),
        ("CFBundleInfoDictionaryVersion", new PlistString("6.0")),
        ("CFBundleName", new PlistString("AppleKextExcludeList")),
        ("CFBundlePackageType", new PlistString("KEXT")),
        ("CFBundleShortVersionString", new PlistString(Version)),
        ("CFBundleVersion", new PlistString(Version)),
        ("OSBundleRequired", new PlistString("Root")),
        ("OSKextExcludeList", new PlistDictionary(Entries.OrderBy(e => e.Key, StringComparer.Ordinal)
            .Select(e => new KeyValuePair<string, PlistNode>(e.Key, new PlistString(e.Value)))))));

    /// <summary>Parses an exclude-list Info.plist; malformed content is a <see cref="ConsentException"/> naming the file.</summary>
    public static ExcludeList Parse(ReadOnlySpan<byte> bytes, string path)
    {
        try
        {
            if (PropertyList.Parse(bytes, path) is not PlistDictionary root)
            {
                throw new ConsentException(ConsentCode.ExcludeListInvalid, path, "the root is not a dictionary");
            }
            if (root.GetString("CFBundleIdentifier") != BundleId)
            {
                throw new ConsentException(ConsentCode.ExcludeListInvalid, path, $"CFBundleIdentifier is not {BundleId}");
            }
            var version = root.GetString("CFBundleVersion");
            if (version is null || !KextVersion.TryParse(version, out _))
            {
                throw new ConsentException(ConsentCode.ExcludeListInvalid, path, "CFBundleVersion is missing or not a kext version");
            }
            var dict = root.GetDictionary("OSKextExcludeList")
                ?? throw new ConsentException(ConsentCode.ExcludeListInvalid, path, "OSKextExcludeList dictionary is missing");
            var entries = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (key, value) in dict)
            {
                entries[key] = value is PlistString s ? s.Value
                    : throw new ConsentException(ConsentCode.ExcludeListInvalid, path, $"OSKextExcludeList[{key}] is {PlistNode.KindName(value.Kind)}, expected string");
            }
            return new ExcludeList(version, entries);
        }
        catch (KextTrustFormatException e)
        {
            throw new ConsentException(ConsentCode.ExcludeListInvalid, path, e.Message, e);
        }
    }
}

using System.Security.Cryptography;
using System.Text.RegularExpressions;
using KextTrust.Formats;
using KextTrust.Formats.MachO;
using KextTrust.Formats.PropertyLists;

namespace KextTrust.Kexts.Signing;

/// <summary>
/// One CodeResources rule: a regular expression over the bundle-relative path and what it means —
/// <c>omit</c> (not sealed), <c>optional</c> (may be missing), <c>nested</c> (nested code) — with a weight;
/// when several rules match, the highest weight wins (the first listed among equals).
/// </summary>
public sealed record CodeResourceRule(string Pattern, bool Omit, bool Optional, bool Nested, double Weight)
{
    private Regex? _regex;

    /// <summary>
    /// The compiled expression (POSIX ERE patterns of Apple's rules are valid .NET patterns): compiled on first use,
    /// or handed in already compiled (a <see cref="Regex"/> is immutable, so rules with one pattern may share it).
    /// </summary>
    public Regex Regex
    {
        get => _regex ??= Compile(Pattern);
        init => _regex = value;
    }

    /// <summary>Compiles a rule pattern.</summary>
    /// <exception cref="ArgumentException">The pattern is not a valid regular expression.</exception>
    internal static Regex Compile(string pattern) => new(pattern, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));

    /// <summary>Rules are equal when their pattern and meaning are (the compiled form follows from the pattern).</summary>
    public bool Equals(CodeResourceRule? other) =>
        other is not null && Pattern == other.Pattern && Omit == other.Omit && Optional == other.Optional && Nested == other.Nested && Weight.Equals(other.Weight);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Pattern, Omit, Optional, Nested, Weight);

    /// <summary>The plist value for this rule: <c>true</c> for a plain rule, else a dictionary.</summary>
    public PlistNode ToPlist()
    {
        if (!Omit && !Optional && !Nested && Weight == 1)
        {
            return PlistBoolean.True;
        }
        var e = new List<KeyValuePair<string, PlistNode>>();
        if (Nested)
        {
            e.Add(new("nested", PlistBoolean.True));
        }
        if (Omit)
        {
            e.Add(new("omit", PlistBoolean.True));
        }
        if (Optional)
        {
            e.Add(new("optional", PlistBoolean.True));
        }
        e.Add(new("weight", new PlistReal(Weight)));
        return new PlistDictionary(e);
    }
}

/// <summary>A sealed file of CodeResources: SHA-1 <c>hash</c>, SHA-256 <c>hash2</c>, or a <c>symlink</c> target, or nested code's <c>cdhash</c>/<c>requirement</c>.</summary>
public sealed record CodeResourceEntry(string Path, byte[]? Hash, byte[]? Hash2, bool Optional, string? Symlink, byte[]? CdHash, string? Requirement)
{
    /// <summary>The plist value (a dictionary in <c>files2</c>).</summary>
    internal PlistNode ToFiles2Plist()
    {
        var e = new List<KeyValuePair<string, PlistNode>>();
        if (CdHash is not null)
        {
            e.Add(new("cdhash", new PlistData(CdHash)));
        }
        if (Hash is not null)
        {
            e.Add(new("hash", new PlistData(Hash)));
        }
        if (Hash2 is not null)
        {
            e.Add(new("hash2", new PlistData(Hash2)));
        }
        if (Optional)
        {
            e.Add(new("optional", PlistBoolean.True));
        }
        if (Requirement is not null)
        {
            e.Add(new("requirement", new PlistString(Requirement)));
        }
        if (Symlink is not null)
        {
            e.Add(new("symlink", new PlistString(Symlink)));
        }
        return new PlistDictionary(e);
    }
}

/// <summary>A CodeResources was malformed: names the file, the byte offset of the value that broke the rule, and the rule.</summary>
public sealed class CodeResourcesFormatException : KextTrustFormatException
{
    /// <summary>Creates the exception for <paramref name="path"/> at byte <paramref name="offset"/> (−1 when not applicable).</summary>
    public CodeResourcesFormatException(string path, long offset, string rule, Exception? inner = null)
        : base("CodeResources", path, offset, rule, inner)
    {
    }
}

/// <summary>
/// <c>_CodeSignature/CodeResources</c>: the resource seal of a bundle (<c>files</c>, <c>files2</c>, <c>rules</c>,
/// <c>rules2</c>). Parses, generates with Apple's default rules, and writes XML.
/// </summary>
public sealed record CodeResources(
    IReadOnlyList<CodeResourceRule> Rules,
    IReadOnlyList<CodeResourceRule> Rules2,
    IReadOnlyDictionary<string, CodeResourceEntry> Files,
    IReadOnlyDictionary<string, CodeResourceEntry> Files2)
{
    /// <summary>Apple's default <c>rules</c> (v1) for bundles, as codesign writes them.</summary>
    public static IReadOnlyList<CodeResourceRule> DefaultRules { get; } =
    [
        new("^Resources/", false, false, false, 1),
        new("^Resources/.*\\.lproj/", false, true, false, 1000),
        new("^Resources/.*\\.lproj/locversion.plist$", true, false, false, 1100),
        new("^Resources/Base\\.lproj/", false, false, false, 1010),
        new("^version.plist$", false, false, false, 1),
    ];

    /// <summary>Apple's default <c>rules2</c> for bundles, as codesign writes them.</summary>
    public static IReadOnlyList<CodeResourceRule> DefaultRules2 { get; } =
    [
        new(".*\\.dSYM($|/)", false, false, false, 11),
        new("^(.*/)?\\.DS_Store$", true, false, false, 2000),
        new("^(Frameworks|SharedFrameworks|PlugIns|Plug-ins|XPCServices|Helpers|MacOS|Library/(Automator|Spotlight|LoginItems))/", false, false, true, 10),
        new("^.*", false, false, false, 1),
        new("^.*\\.lproj/", false, true, false, 1000),
        new("^.*\\.lproj/locversion.plist$", true, false, false, 1100),
        new("^Base\\.lproj/", false, false, false, 1010),
        new("^Info\\.plist$", true, false, false, 20),
        new("^PkgInfo$", true, false, false, 20),
        new("^Resources/", false, false, false, 20),
        new("^Resources/.*\\.lproj/", false, true, false, 1000),
        new("^Resources/.*\\.lproj/locversion.plist$", true, false, false, 1100),
        new("^Resources/Base\\.lproj/", false, false, false, 1010),
        new("^[^/]+$", false, false, true, 10),
        new("^embedded\\.provisionprofile$", false, false, false, 20),
        new("^version\\.plist$", false, false, false, 20),
    ];

    /// <summary>
    /// The compiled patterns of the default rules: nearly every seal carries exactly these, so parsing one reuses
    /// them instead of compiling the same expressions again for every bundle (immutable, shared read-only).
    /// </summary>
    private static readonly Dictionary<string, Regex> DefaultPatterns = DefaultRules.Concat(DefaultRules2)
        .DistinctBy(r => r.Pattern, StringComparer.Ordinal)
        .ToDictionary(r => r.Pattern, r => r.Regex, StringComparer.Ordinal);

    /// <summary>The rule that applies to <paramref name="relativePath"/>: the highest weight among the matching ones.</summary>
    public static CodeResourceRule? Match(IReadOnlyList<CodeResourceRule> rules, string relativePath)
    {
        CodeResourceRule? best = null;
        foreach (var r in rules)
        {
            if (r.Regex.IsMatch(relativePath) && (best is null || r.Weight > best.Weight))
            {
                best = r;
            }
        }
        return best;
    }

    /// <summary>Parses CodeResources bytes (XML or binary plist).</summary>
    /// <exception cref="CodeResourcesFormatException">
    /// Not a plist dictionary, or an entry of the wrong shape; with the offset of the offending value (its start tag in
    /// XML, its object in a binary plist).
    /// </exception>
    public static CodeResources Parse(ReadOnlySpan<byte> bytes, string path)
    {
        PlistNode root;
        PlistOffsets at;
        try
        {
            root = PropertyList.Parse(bytes, path, out at);
        }
        catch (KextTrustFormatException e)
        {
            throw new CodeResourcesFormatException(path, e.Offset, e.Rule, e);
        }
        if (root is not PlistDictionary d)
        {
            throw new CodeResourcesFormatException(path, at.Root, "the root is not a dictionary");
        }
        return new CodeResources(
            ParseRules(d, "rules", path, at), ParseRules(d, "rules2", path, at),
            ParseFiles(d, "files", path, at), ParseFiles(d, "files2", path, at));
    }

    private static List<CodeResourceRule> ParseRules(PlistDictionary d, string key, string path, PlistOffsets at)
    {
        var list = new List<CodeResourceRule>();
        if (d[key] is null)
        {
            return list;
        }
        if (d[key] is not PlistDictionary rules)
        {
            throw new CodeResourcesFormatException(path, at.Of(d, key), $"'{key}' is not a dictionary");
        }
        foreach (var (pattern, value) in rules)
        {
            Regex regex;
            try
            {
                regex = DefaultPatterns.GetValueOrDefault(pattern) ?? CodeResourceRule.Compile(pattern);
            }
            catch (ArgumentException e)
            {
                throw new CodeResourcesFormatException(path, at.Of(rules, pattern), $"rule '{pattern}' in '{key}' is not a valid regular expression: {e.Message}", e);
            }
            list.Add(value switch
            {
                PlistBoolean b => new CodeResourceRule(pattern, !b.Value, false, false, 1) { Regex = regex },
                PlistDictionary r => new CodeResourceRule(pattern,
                    r.GetBoolean("omit") ?? false, r.GetBoolean("optional") ?? false, r.GetBoolean("nested") ?? false,
                    r["weight"] switch { PlistReal w => w.Value, PlistInteger i => (double)i.Value, _ => 1 }) { Regex = regex },
                _ => throw new CodeResourcesFormatException(path, at.Of(rules, pattern), $"rule '{pattern}' in '{key}' is neither a boolean nor a dictionary"),
            });
        }
        return list;
    }

    private static Dictionary<string, CodeResourceEntry> ParseFiles(PlistDictionary d, string key, string path, PlistOffsets at)
    {
        var map = new Dictionary<string, CodeResourceEntry>(StringComparer.Ordinal);
        if (d[key] is null)
        {
            return map;
        }
        if (d[key] is not PlistDictionary files)
        {
            throw new CodeResourcesFormatException(path, at.Of(d, key), $"'{key}' is not a dictionary");
        }
        foreach (var (file, value) in files)
        {
            map[file] = value switch
            {
                PlistData data => new CodeResourceEntry(file, data.ToArray(), null, false, null, null, null),
                PlistDictionary e => new CodeResourceEntry(file, e.GetData("hash")?.ToArray(), e.GetData("hash2")?.ToArray(),
                    e.GetBoolean("optional") ?? false, e.GetString("symlink"), e.GetData("cdhash")?.ToArray(), e.GetString("requirement")),
                _ => throw new CodeResourcesFormatException(path, at.Of(files, file), $"entry '{file}' in '{key}' is neither data nor a dictionary"),
            };
        }
        return map;
    }

    /// <summary>The XML plist bytes, keys in ordinal order as codesign writes them.</summary>
    public byte[] ToXml()
    {
        static PlistDictionary RulesDict(IReadOnlyList<CodeResourceRule> rules) =>
            new(rules.OrderBy(r => r.Pattern, StringComparer.Ordinal).Select(r => new KeyValuePair<string, PlistNode>(r.Pattern, r.ToPlist())));
        var files = new PlistDictionary(Files.Values.OrderBy(f => f.Path, StringComparer.Ordinal)
            .Select(f => new KeyValuePair<string, PlistNode>(f.Path, f.Optional
                ? new PlistDictionary(("hash", new PlistData(f.Hash!)), ("optional", PlistBoolean.True))
                : new PlistData(f.Hash!))));
        var files2 = new PlistDictionary(Files2.Values.OrderBy(f => f.Path, StringComparer.Ordinal)
            .Select(f => new KeyValuePair<string, PlistNode>(f.Path, f.ToFiles2Plist())));
        return PropertyList.ToXml(new PlistDictionary(
            ("files", files), ("files2", files2), ("rules", RulesDict(Rules)), ("rules2", RulesDict(Rules2))));
    }
}

/// <summary>What a bundle path is, for sealing.</summary>
public enum BundleItemKind
{
    /// <summary>A regular file, sealed by its hashes.</summary>
    File,
    /// <summary>A symbolic link, sealed by its target text (never followed).</summary>
    Symlink,
    /// <summary>A nested bundle (e.g. <c>PlugIns/X.kext</c>), sealed by its cdhash and designated requirement.</summary>
    NestedBundle,
}

/// <summary>One path found by <see cref="BundleResourceScanner"/>.</summary>
public sealed record BundleItem(string RelativePath, string FullPath, BundleItemKind Kind, CodeResourceRule Rule);

/// <summary>
/// Walks a bundle's contents folder the way codesign does: skips the main executable and
/// <c>_CodeSignature/</c>, applies <c>rules2</c> (omitted paths dropped; nested bundles not descended into),
/// and never follows symbolic links.
/// </summary>
public static class BundleResourceScanner
{
    private static readonly string[] BundleExtensions = [".kext", ".bundle", ".framework", ".app", ".plugin", ".xpc", ".dext", ".appex"];

    /// <summary>Every sealable path under <paramref name="contentsRoot"/> (relative with '/'), sorted ordinally.</summary>
    internal static IReadOnlyList<BundleItem> Scan(string contentsRoot, string? mainExecutable, IReadOnlyList<CodeResourceRule> rules2)
    {
        var items = new List<BundleItem>();
        var exe = mainExecutable is null ? null : Path.GetFullPath(mainExecutable);
        var pending = new Stack<string>();
        pending.Push(contentsRoot);
        while (pending.Count > 0)
        {
            var dir = pending.Pop();
            foreach (var entry in new DirectoryInfo(dir).EnumerateFileSystemInfos())
            {
                var rel = Path.GetRelativePath(contentsRoot, entry.FullName).Replace(Path.DirectorySeparatorChar, '/');
                if (rel == "_CodeSignature" || rel.StartsWith("_CodeSignature/", StringComparison.Ordinal)
                    || (exe is not null && string.Equals(Path.GetFullPath(entry.FullName), exe, StringComparison.Ordinal)))
                {
                    continue;
                }
                var isDir = entry is DirectoryInfo;
                var rule = CodeResources.Match(rules2, isDir ? rel + "/" : rel);
                if (entry.LinkTarget is { } target)
                {
                    if (rule is { Omit: false })
                    {
                        items.Add(new BundleItem(rel, entry.FullName, BundleItemKind.Symlink, rule));
                    }
                    continue;
                }
                if (isDir)
                {
                    var fileRule = CodeResources.Match(rules2, rel);
                    if (fileRule is { Nested: true, Omit: false } && LooksLikeBundle(entry.FullName))
                    {
                        items.Add(new BundleItem(rel, entry.FullName, BundleItemKind.NestedBundle, fileRule));
                    }
                    else if (rule is not { Omit: true })
                    {
                        pending.Push(entry.FullName);
                    }
                    continue;
                }
                if (rule is null || rule.Omit)
                {
                    continue;
                }
                items.Add(new BundleItem(rel, entry.FullName, BundleItemKind.File, rule));
            }
        }
        items.Sort((a, b) => string.CompareOrdinal(a.RelativePath, b.RelativePath));
        return items;
    }

    /// <summary>True for a folder that is a bundle: a known bundle extension or an Info.plist inside.</summary>
    public static bool LooksLikeBundle(string dir) =>
        BundleExtensions.Any(e => dir.EndsWith(e, StringComparison.OrdinalIgnoreCase))
        || File.Exists(Path.Combine(dir, "Contents", "Info.plist"));

    /// <summary>SHA-1 and SHA-256 of a file, streamed.</summary>
    internal static (byte[] Sha1, byte[] Sha256) HashFile(string path)
    {
        using var s = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        using var h1 = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
        using var h2 = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 16];
        int n;
        while ((n = s.Read(buffer)) > 0)
        {
            h1.AppendData(buffer, 0, n);
            h2.AppendData(buffer, 0, n);
        }
        return (h1.GetHashAndReset(), h2.GetHashAndReset());
    }

    /// <summary>True when the file starts with a Mach-O magic.</summary>
    public static bool IsMachOFile(string path)
    {
        Span<byte> header = stackalloc byte[8];
        using var s = File.OpenRead(path);
        var n = s.ReadAtLeast(header, header.Length, throwOnEndOfStream: false);
        return MachOFile.IsMachO(header[..n]);
    }
}

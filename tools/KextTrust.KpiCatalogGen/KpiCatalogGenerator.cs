using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Xml;

namespace KextTrust.KpiCatalogGen;

/// <summary>
/// Builds the KPI catalog that <c>KextTrust.Kexts.Kpi.KpiCatalog</c> embeds, from the xnu <c>config/</c>
/// data in <c>tools/KextTrust.KpiCatalogGen/data/xnu-kpi</c> (one <c>macos-&lt;release&gt;</c> folder per macOS release).
/// </summary>
/// <remarks>
/// <para><b>Which files make a symbol set</b> (xnu <c>config/Makefile</c>, <c>EXPORTS_FILES</c> and
/// <c>symbol_set_template</c>): for each set of <c>SYMBOL_COMPONENT_LIST</c> (BSDKernel IOKit Libkern Mach
/// MACFramework Unsupported Private) and architecture (x86_64, arm64): <c>&lt;Set&gt;.exports</c> +
/// <c>&lt;Set&gt;.&lt;arch&gt;.exports</c> + <c>&lt;Set&gt;.&lt;arch&gt;.MacOSX.exports</c> where present.
/// The Private set also takes the Tightbeam exports where the release has them (xnu-11215:
/// <c>EXPORTS_FILES += Private.Tightbeam.exports</c>, matched by <c>filter Private%</c>; xnu-11417:
/// <c>Private_OTHER_EXPORTS += $(TIGHTBEAM_EXPORTS)</c> = <c>libTightbeam.exports</c>, whose platform condition
/// lives in makedefs, not in our data: we assume it applies to both macOS architectures; only Apple kexts may
/// link com.apple.kpi.private). The Kasan and Kcov sets are those of a release kernel:
/// <c>Kasan_disabled.exports</c>, <c>Kcov_disabled.exports</c> (both empty).
/// <c>IOKit.arm64.hibernation.MacOSX.exports</c> is not in <c>EXPORTS_FILES</c> and is left out.</para>
/// <para><b>Unused.exports</b> is appended to <c>EXPORTS_FILES</c> (the kernel's linker export list,
/// <c>all-kpi.exp</c>) but is in no symbol set: its header says "unused as KPI, but must be globally
/// exported". No pseudo-kext exports those symbols, so a kext cannot link them; the catalog records them
/// with bundle <c>-</c> (kernel-global, no KPI bundle).</para>
/// <para><b>10.15 on arm64</b>: the 10.15 folder has arm64 files (iOS builds of xnu-6153), but no macOS
/// 10.15 ran on Apple silicon, so the (10.15, arm64) slot is empty.</para>
/// <para><b>Set → bundle id</b> comes from the pseudo-kext whose <c>CFBundleExecutable</c> is the set name in
/// <c>System.kext/PlugIns/*/Info.plist</c>. <c>###KERNEL_VERSION_LONG###</c>/<c>_SHORT###</c> placeholders are
/// replaced by the Darwin version of the release's <c>SOURCE-TAG</c> (table <see cref="KernelVersionByTag"/>).</para>
/// <para><b>Apple family exports</b> (<c>data/apple-families</c>): the IOKit family kexts that publish an export list
/// (<c>config/&lt;Family&gt;.exports</c> in <c>apple-oss-distributions/&lt;Family&gt;</c>; the family's build turns it into
/// the symbol set its kext exports). <c>RELEASES.tsv</c> names, per release of the catalog and family, the family tag
/// that shipped in that macOS release (from <c>apple-oss-distributions/distribution-macOS</c>, whose release tags pin
/// each project's commit), its commit, the path and sha256 of the list, and the committed copy (<c>-</c>: that tag
/// publishes no list, the family's exports are unknown there). The generator refuses a copy whose sha256 differs. A
/// family's list covers both macOS architectures (the lists are not per architecture).</para>
/// <para><b>Output format</b> (UTF-8, LF, gzip-compressed; lines sorted, so output is deterministic):</para>
/// <code>
/// # comment lines
/// R &lt;release&gt; &lt;folder&gt; &lt;xnu-tag&gt; &lt;kernel-version&gt;        releases in slot order (index 0..6)
/// B &lt;index&gt; &lt;bundle-id&gt;                                   bundle table
/// K &lt;release&gt; &lt;bundle-id&gt; &lt;set|-&gt; &lt;compatible|-&gt; &lt;version&gt;   pseudo-kexts (System.kext tree)
/// S &lt;symbol&gt; &lt;bundle-index|-&gt; &lt;mask&gt;                       exact symbol
/// A &lt;symbol&gt; &lt;bundle-index|-&gt; &lt;mask&gt; &lt;target&gt;              alias (the alias is exported)
/// P &lt;prefix&gt; &lt;bundle-index|-&gt; &lt;mask&gt;                       prefix rule (line ended in '*')
/// G &lt;index&gt; &lt;bundle-id&gt;                                   Apple family table
/// V &lt;release&gt; &lt;family-index&gt; &lt;repository&gt; &lt;tag&gt; &lt;commit&gt; &lt;path|-&gt; &lt;sha256|-&gt;   a family's source on a release
/// F &lt;symbol&gt; &lt;family-index&gt; &lt;mask&gt;                        a family exports the symbol
/// </code>
/// <para><c>mask</c> is lowercase hex; bit <c>2*releaseIndex + archIndex</c> (arch 0 = x86_64, 1 = arm64) is set
/// when the bundle exports the symbol for that release and architecture. Bundle <c>-</c> = Unused.exports. A family's
/// <c>V</c> line with path <c>-</c> means its exports are not known on that release (no <c>F</c> bit there).</para>
/// </remarks>
public static class KpiCatalogGenerator
{
    /// <summary>Format tag written in the first line.</summary>
    public const string FormatHeader = "# KextTrust KPI catalog, format 2";

    /// <summary>Architectures in slot order.</summary>
    public static readonly IReadOnlyList<string> Architectures = ["x86_64", "arm64"];

    /// <summary>Releases in slot order: (release key, folder).</summary>
    public static readonly IReadOnlyList<(string Key, string Folder)> Releases =
    [
        ("10.15", "macos-10.15"), ("11", "macos-11"), ("12", "macos-12"), ("13", "macos-13"),
        ("14", "macos-14"), ("15", "macos-15"), ("15.4", "macos-15.4"),
    ];

    /// <summary>
    /// Darwin kernel version of each xnu tag in the data (Apple's open-source release pages: the tag's macOS
    /// build): 10.15.6 = 19.6.0, 11.5 = 20.6.0, 12.3 = 21.4.0, 13.2 = 22.3.0, 14.3 = 23.3.0, 15.3 = 24.3.0,
    /// 15.4 = 24.4.0. An unknown tag stops the generator rather than guess.
    /// </summary>
    public static readonly IReadOnlyDictionary<string, string> KernelVersionByTag = new Dictionary<string, string>
    {
        ["xnu-6153.141.1"] = "19.6.0",
        ["xnu-7195.141.2"] = "20.6.0",
        ["xnu-8019.80.24"] = "21.4.0",
        ["xnu-8792.81.2"] = "22.3.0",
        ["xnu-10002.81.5"] = "23.3.0",
        ["xnu-11215.81.4"] = "24.3.0",
        ["xnu-11417.101.15"] = "24.4.0",
    };

    private static readonly string[] SymbolComponents =
        ["BSDKernel", "IOKit", "Libkern", "Mach", "MACFramework", "Unsupported", "Private"];

    private enum Kind { Symbol = 'S', Alias = 'A', Prefix = 'P' }

    private readonly record struct Export(Kind Kind, string Name, string? Target);

    private sealed record PseudoKext(string BundleId, string? Set, string? Compatible, string Version);

    /// <summary>
    /// Generates the catalog text from <paramref name="dataRoot"/> (the xnu-kpi folder) and, when given,
    /// <paramref name="familiesRoot"/> (the apple-families folder).
    /// </summary>
    public static string GenerateText(string dataRoot, string? familiesRoot = null)
    {
        if (!Directory.Exists(dataRoot))
        {
            throw new DirectoryNotFoundException($"xnu-kpi data folder not found: {dataRoot}");
        }

        var releaseLines = new List<string>();
        var kextLines = new List<string>();
        var bundleIds = new SortedSet<string>(StringComparer.Ordinal);
        // (kind, name, bundle or null, target or "") → mask
        var masks = new Dictionary<(Kind, string, string?, string), int>();

        for (var r = 0; r < Releases.Count; r++)
        {
            var (key, folder) = Releases[r];
            var dir = Path.Combine(dataRoot, folder);
            var tag = File.ReadAllText(Path.Combine(dir, "SOURCE-TAG")).Trim();
            if (!KernelVersionByTag.TryGetValue(tag, out var kernelVersion))
            {
                throw new InvalidDataException($"{folder}: unknown SOURCE-TAG '{tag}', add its Darwin version to KernelVersionByTag");
            }
            releaseLines.Add($"R {key} {folder} {tag} {kernelVersion}");

            var kexts = ReadPseudoKexts(dir, kernelVersion);
            foreach (var k in kexts.OrderBy(k => k.BundleId, StringComparer.Ordinal))
            {
                kextLines.Add($"K {key} {k.BundleId} {k.Set ?? "-"} {k.Compatible ?? "-"} {k.Version}");
            }
            var bundleBySet = kexts.Where(k => k.Set is not null).ToDictionary(k => k.Set!, k => k.BundleId, StringComparer.Ordinal);

            for (var a = 0; a < Architectures.Count; a++)
            {
                var arch = Architectures[a];
                if (key == "10.15" && arch == "arm64")
                {
                    continue; // no macOS 10.15 on Apple silicon
                }
                var bit = 1 << (2 * r + a);
                foreach (var (set, files) in SetFiles(dir, arch))
                {
                    string? bundle = null;
                    if (set != "Unused")
                    {
                        if (!bundleBySet.TryGetValue(set, out bundle))
                        {
                            throw new InvalidDataException($"{folder}: no pseudo-kext Info.plist has CFBundleExecutable '{set}'");
                        }
                        bundleIds.Add(bundle);
                    }
                    foreach (var file in files)
                    {
                        foreach (var e in ReadExports(file))
                        {
                            var k = (e.Kind, e.Name, bundle, e.Target ?? "");
                            masks[k] = masks.GetValueOrDefault(k) | bit;
                        }
                    }
                }
            }
        }

        var bundleIndex = bundleIds.Select((b, i) => (b, i)).ToDictionary(x => x.b, x => x.i, StringComparer.Ordinal);
        var sb = new StringBuilder();
        sb.Append(FormatHeader).Append('\n');
        sb.Append("# Generated by tools/KextTrust.KpiCatalogGen from tools/KextTrust.KpiCatalogGen/data/xnu-kpi (Apple xnu config/*.exports and\n");
        sb.Append("# config/System.kext/PlugIns/*/Info.plist). Do not edit: regenerate. Format: see KpiCatalogGenerator.\n");
        sb.Append("# S/A/P <symbol> <bundle|-> <hex mask> [<alias target>]; mask bit 2*release+arch (arch 0 x86_64, 1 arm64).\n");
        sb.Append("# G/V/F: Apple IOKit families' export lists (apple-oss-distributions/<Family> config/<Family>.exports) per release.\n");
        foreach (var l in releaseLines)
        {
            sb.Append(l).Append('\n');
        }
        foreach (var (b, i) in bundleIndex.OrderBy(x => x.Value))
        {
            sb.Append(CultureInfo.InvariantCulture, $"B {i} {b}\n");
        }
        foreach (var l in kextLines)
        {
            sb.Append(l).Append('\n');
        }
        var entries = masks
            .Select(kv => (Kind: kv.Key.Item1, Name: kv.Key.Item2, Bundle: kv.Key.Item3 is null ? "-" : bundleIndex[kv.Key.Item3].ToString(CultureInfo.InvariantCulture), Target: kv.Key.Item4, Mask: kv.Value))
            .OrderBy(e => e.Name, StringComparer.Ordinal)
            .ThenBy(e => (char)e.Kind)
            .ThenBy(e => e.Bundle, StringComparer.Ordinal)
            .ThenBy(e => e.Target, StringComparer.Ordinal);
        foreach (var e in entries)
        {
            sb.Append((char)e.Kind).Append(' ').Append(e.Name).Append(' ').Append(e.Bundle).Append(' ')
              .Append(e.Mask.ToString("x", CultureInfo.InvariantCulture));
            if (e.Kind == Kind.Alias)
            {
                sb.Append(' ').Append(e.Target);
            }
            sb.Append('\n');
        }
        if (familiesRoot is not null)
        {
            AppendFamilies(sb, familiesRoot);
        }
        return sb.ToString();
    }

    /// <summary>One row of <c>apple-families/RELEASES.tsv</c>.</summary>
    private sealed record FamilySource(string Release, string Family, string BundleId, string Repository, string Tag, string Commit, string Path, string Sha256, string File);

    /// <summary>Appends the G/V/F records of the Apple families (see the class remarks).</summary>
    private static void AppendFamilies(StringBuilder sb, string familiesRoot)
    {
        var table = Path.Combine(familiesRoot, "RELEASES.tsv");
        if (!File.Exists(table))
        {
            throw new FileNotFoundException($"Apple family table missing: {table}");
        }
        var rows = new List<FamilySource>();
        var lineNo = 0;
        foreach (var raw in File.ReadLines(table))
        {
            lineNo++;
            if (raw.Length == 0 || raw[0] == '#')
            {
                continue;
            }
            var c = raw.Split('\t');
            if (c.Length != 9 || c.Any(v => v.Length == 0 || v.Contains(' ', StringComparison.Ordinal)))
            {
                throw new InvalidDataException($"{table}:{lineNo}: expected 9 tab-separated fields without spaces");
            }
            if (!Releases.Any(r => r.Key == c[0]))
            {
                throw new InvalidDataException($"{table}:{lineNo}: unknown release '{c[0]}'");
            }
            rows.Add(new FamilySource(c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8]));
        }
        var families = rows.Select(r => r.BundleId).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var index = families.Select((b, i) => (b, i)).ToDictionary(x => x.b, x => x.i, StringComparer.Ordinal);
        var masks = new SortedDictionary<(string Symbol, int Family), int>(Comparer<(string, int)>.Create((x, y) =>
            string.CompareOrdinal(x.Item1, y.Item1) is var n and not 0 ? n : x.Item2.CompareTo(y.Item2)));
        var seen = new HashSet<(string, string)>();
        foreach (var r in rows)
        {
            if (!seen.Add((r.Release, r.BundleId)))
            {
                throw new InvalidDataException($"{table}: {r.BundleId} listed twice for {r.Release}");
            }
            if (r.File == "-")
            {
                continue;
            }
            var file = Path.Combine(familiesRoot, r.File);
            var actual = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(file)));
            if (actual != r.Sha256)
            {
                throw new InvalidDataException($"{file}: sha256 {actual}, but RELEASES.tsv records {r.Sha256} for {r.Repository} {r.Tag} {r.Path}");
            }
            var releaseIndex = Releases.Select((x, i) => (x.Key, i)).First(x => x.Key == r.Release).i;
            var bits = 0;
            for (var a = 0; a < Architectures.Count; a++)
            {
                if (!(r.Release == "10.15" && Architectures[a] == "arm64"))
                {
                    bits |= 1 << (2 * releaseIndex + a);
                }
            }
            foreach (var e in ReadExports(file))
            {
                if (e.Kind != Kind.Symbol)
                {
                    throw new InvalidDataException($"{file}: only plain symbols are expected in a family export list, not '{e.Name}'");
                }
                var key = (e.Name, index[r.BundleId]);
                masks[key] = masks.GetValueOrDefault(key) | bits;
            }
        }
        foreach (var (b, i) in index.OrderBy(x => x.Value))
        {
            sb.Append(CultureInfo.InvariantCulture, $"G {i} {b}\n");
        }
        foreach (var r in rows.OrderBy(r => Releases.Select(x => x.Key).ToList().IndexOf(r.Release)).ThenBy(r => index[r.BundleId]))
        {
            sb.Append(CultureInfo.InvariantCulture, $"V {r.Release} {index[r.BundleId]} {r.Repository} {r.Tag} {r.Commit} {r.Path} {r.Sha256}\n");
        }
        foreach (var ((symbol, family), mask) in masks)
        {
            sb.Append(CultureInfo.InvariantCulture, $"F {symbol} {family} {mask:x}\n");
        }
    }

    /// <summary>Generates the catalog and gzip-compresses it (what is committed and embedded).</summary>
    public static byte[] Generate(string dataRoot, string? familiesRoot = null) => Compress(GenerateText(dataRoot, familiesRoot));

    /// <summary>Gzip of the UTF-8 text, at <see cref="CompressionLevel.SmallestSize"/>.</summary>
    public static byte[] Compress(string text)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            var bytes = new UTF8Encoding(false).GetBytes(text);
            gz.Write(bytes);
        }
        return ms.ToArray();
    }

    /// <summary>Inverse of <see cref="Compress"/>.</summary>
    public static string Decompress(byte[] gzip)
    {
        using var gz = new GZipStream(new MemoryStream(gzip), CompressionMode.Decompress);
        using var reader = new StreamReader(gz, new UTF8Encoding(false, true));
        return reader.ReadToEnd();
    }

    private static IEnumerable<(string Set, List<string> Files)> SetFiles(string dir, string arch)
    {
        foreach (var set in SymbolComponents)
        {
            var files = new List<string>();
            AddRequired(files, Path.Combine(dir, $"{set}.exports"));
            AddRequired(files, Path.Combine(dir, $"{set}.{arch}.exports"));
            AddIfExists(files, Path.Combine(dir, $"{set}.{arch}.MacOSX.exports"));
            if (set == "Private")
            {
                AddIfExists(files, Path.Combine(dir, "Private.Tightbeam.exports"));
                AddIfExists(files, Path.Combine(dir, "libTightbeam.exports"));
            }
            yield return (set, files);
        }
        var kasan = new List<string>();
        AddIfExists(kasan, Path.Combine(dir, "Kasan_disabled.exports"));
        yield return ("Kasan", kasan);
        var kcov = new List<string>();
        AddIfExists(kcov, Path.Combine(dir, "Kcov_disabled.exports"));
        if (kcov.Count > 0)
        {
            yield return ("Kcov", kcov);
        }
        var unused = new List<string>();
        AddRequired(unused, Path.Combine(dir, "Unused.exports"));
        yield return ("Unused", unused);
    }

    private static void AddRequired(List<string> files, string path)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"expected export file missing: {path}");
        }
        files.Add(path);
    }

    private static void AddIfExists(List<string> files, string path)
    {
        if (File.Exists(path))
        {
            files.Add(path);
        }
    }

    /// <summary>Parses one .exports file: '#' comments, blank lines, <c>_a:_b</c> aliases, trailing '*' prefixes.</summary>
    private static IEnumerable<Export> ReadExports(string path)
    {
        var lineNo = 0;
        foreach (var raw in File.ReadLines(path))
        {
            lineNo++;
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }
            var colon = line.IndexOf(':');
            if (colon >= 0)
            {
                var alias = line[..colon].Trim();
                var target = line[(colon + 1)..].Trim();
                Validate(alias, path, lineNo);
                Validate(target, path, lineNo);
                yield return new Export(Kind.Alias, alias, target);
            }
            else if (line.EndsWith('*'))
            {
                var prefix = line[..^1];
                Validate(prefix, path, lineNo);
                yield return new Export(Kind.Prefix, prefix, null);
            }
            else
            {
                Validate(line, path, lineNo);
                yield return new Export(Kind.Symbol, line, null);
            }
        }
    }

    private static void Validate(string symbol, string path, int lineNo)
    {
        if (symbol.Length == 0 || symbol.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '_' or '$' or '.')))
        {
            throw new InvalidDataException($"{path}:{lineNo}: not a symbol name: '{symbol}'");
        }
    }

    private static List<PseudoKext> ReadPseudoKexts(string dir, string kernelVersion)
    {
        var plists = new List<string> { Path.Combine(dir, "System.kext", "Info.plist") };
        plists.AddRange(Directory.GetDirectories(Path.Combine(dir, "System.kext", "PlugIns"))
            .OrderBy(p => p, StringComparer.Ordinal)
            .Select(p => Path.Combine(p, "Info.plist")));
        var list = new List<PseudoKext>();
        foreach (var plist in plists)
        {
            var dict = ReadTopLevelStrings(plist);
            string Expand(string v) => v
                .Replace("###KERNEL_VERSION_LONG###", kernelVersion, StringComparison.Ordinal)
                .Replace("###KERNEL_VERSION_SHORT###", kernelVersion, StringComparison.Ordinal);
            var id = dict.GetValueOrDefault("CFBundleIdentifier") ?? throw new InvalidDataException($"{plist}: no CFBundleIdentifier");
            var version = Expand(dict.GetValueOrDefault("CFBundleVersion") ?? throw new InvalidDataException($"{plist}: no CFBundleVersion"));
            var compat = dict.GetValueOrDefault("OSBundleCompatibleVersion") is { } c ? Expand(c) : null;
            var set = dict.GetValueOrDefault("CFBundleExecutable");
            foreach (var v in new[] { id, version, compat ?? "-", set ?? "-" })
            {
                if (v.Contains(' ', StringComparison.Ordinal) || v.Contains('#', StringComparison.Ordinal))
                {
                    throw new InvalidDataException($"{plist}: unexpected value '{v}'");
                }
            }
            list.Add(new PseudoKext(id, set, compat, version));
        }
        return list;
    }

    /// <summary>Minimal XML plist read: the string values of the top-level dict (trusted build input).</summary>
    private static Dictionary<string, string> ReadTopLevelStrings(string path)
    {
        var doc = new XmlDocument { XmlResolver = null };
        using (var reader = XmlReader.Create(path, new XmlReaderSettings { DtdProcessing = DtdProcessing.Ignore, XmlResolver = null }))
        {
            doc.Load(reader);
        }
        var dict = doc.DocumentElement?.SelectSingleNode("dict") ?? throw new InvalidDataException($"{path}: no top-level dict");
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        string? key = null;
        foreach (XmlNode node in dict.ChildNodes)
        {
            if (node.NodeType != XmlNodeType.Element)
            {
                continue;
            }
            if (node.Name == "key")
            {
                key = node.InnerText;
            }
            else if (key is not null)
            {
                if (node.Name == "string")
                {
                    result[key] = node.InnerText.Trim();
                }
                key = null;
            }
        }
        return result;
    }
}

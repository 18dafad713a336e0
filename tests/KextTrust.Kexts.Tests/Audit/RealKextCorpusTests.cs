using KextTrust.Kexts.Trust;
using System.Security.Cryptography;
using System.Text;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Audit;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;
using KextTrust.TestSupport;

namespace KextTrust.Kexts.Tests.Audit;

/// <summary>
/// The real third-party kexts of <c>tests/data/real-kexts</c> (built kexts committed in public Hackintosh EFI folders,
/// 2020–2025: acidanthera's, Mieze's, RehabMan's, HoRNDIS; thin x86_64, fat i386 MH_OBJECT + x86_64, fat x86_64 +
/// arm64e): each audited as its EFI folder is, against the verdicts written down in <c>EXPECTED.tsv</c> from public
/// knowledge, and every symbol's binding against <c>LINKS.txt</c>, with llvm-14 as the reference for slices and imports.
/// </summary>
public sealed class RealKextCorpusTests
{
    private static readonly KpiCatalog Catalog = KpiCatalog.Load();

    private static string Root => Corpus.RealKexts;

    private static string KextsRoot => Path.Combine(Root, "kexts");

    /// <summary>MANIFEST.tsv rows: kext path (relative to kexts/), bundle id, version, slices, …, sha256, bytes, project, licence, licence file.</summary>
    private static IReadOnlyList<string[]> Manifest => Tsv("MANIFEST.tsv");

    private static IReadOnlyList<string[]> Tsv(string name) =>
        [.. File.ReadLines(Path.Combine(Root, name)).Where(l => l.Length > 0 && l[0] != '#').Select(l => l.Split('\t'))];

    /// <summary>Every EFI folder of the corpus audited once, as a user would audit it (its kexts find their libraries beside them).</summary>
    private static readonly Lazy<IReadOnlyDictionary<string, KextAuditReport>> Reports = new(() =>
    {
        var auditor = new KextAuditor(Catalog, new KextAuditOptions { ExplainLinks = true });
        var byPath = new Dictionary<string, KextAuditReport>(StringComparer.Ordinal);
        foreach (var folder in Directory.GetDirectories(KextsRoot).Order(StringComparer.Ordinal))
        {
            var bundles = KextDiscovery.FindKexts(folder).Select(KextBundle.Open).ToList();
            foreach (var report in auditor.AuditMany(bundles))
            {
                Add(report);
            }
        }
        return byPath;

        void Add(KextAuditReport r)
        {
            byPath[Path.GetRelativePath(KextsRoot, r.Path).Replace('\\', '/')] = r;
            foreach (var p in r.PlugIns)
            {
                Add(p);
            }
        }
    });

    public static TheoryData<string> Kexts() => [.. Manifest.Select(r => r[0])];

    [Fact]
    public void The_corpus_is_at_least_thirty_real_kexts_of_several_versions_and_every_shape()
    {
        var rows = Manifest;
        Assert.True(rows.Count(r => !r[0].Contains("/PlugIns/", StringComparison.Ordinal)) >= 30, "at least 30 top-level kexts");
        Assert.True(rows.Where(r => r[1] == "as.vit9696.Lilu").Select(r => r[2]).Distinct().Count() >= 5, "Lilu in several versions");
        Assert.Contains(rows, r => r[3] == "x86_64:KEXTBUNDLE");
        Assert.Contains(rows, r => r[3].Contains("i386:OBJECT", StringComparison.Ordinal) && r[3].Contains("x86_64:KEXTBUNDLE", StringComparison.Ordinal));
        Assert.Contains(rows, r => r[3] == "x86_64:KEXTBUNDLE,arm64e:KEXTBUNDLE");
        // Every kext bundle on disk is in the manifest, and nothing else is.
        var onDisk = Directory.EnumerateDirectories(KextsRoot, "*.kext", SearchOption.AllDirectories)
            .Select(d => Path.GetRelativePath(KextsRoot, d).Replace('\\', '/')).Order(StringComparer.Ordinal);
        Assert.Equal(onDisk, rows.Select(r => r[0]).Order(StringComparer.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Kexts))]
    public void Manifest_records_the_executable_its_licence_and_its_source(string kext)
    {
        var row = Manifest.Single(r => r[0] == kext);
        var bundle = KextBundle.Open(Path.Combine(KextsRoot, kext));
        Assert.Equal(row[1], bundle.BundleId);
        Assert.Equal(row[2], bundle.VersionString);
        var bytes = File.ReadAllBytes(bundle.ExecutablePath!);
        Assert.Equal(row[7], Convert.ToHexStringLower(SHA256.HashData(bytes)));
        Assert.Equal(row[8], bytes.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.StartsWith("github:", row[4], StringComparison.Ordinal);
        Assert.Matches("^[0-9a-f]{40}$", row[5]);
        Assert.True(File.Exists(Path.Combine(Root, row[11])), $"licence text {row[11]} is committed");
        Assert.False(string.IsNullOrWhiteSpace(row[10]));
    }

    [Theory]
    [MemberData(nameof(Kexts))]
    public void Slices_and_imports_are_what_llvm_reads(string kext)
    {
        var row = Manifest.Single(r => r[0] == kext);
        var exe = KextBundle.Open(Path.Combine(KextsRoot, kext)).ExecutablePath!;
        using var file = MachOFile.Open(exe);
        // The manifest's slices were written from llvm-objdump-14 (--private-header --arch=all).
        Assert.Equal(row[3], string.Join(",", file.Slices.Select(s => $"{s.Architecture}:{FileTypeName(s.FileType)}")));
        foreach (var slice in file.Slices)
        {
            var nm = ExternalTool.RunChecked(ExternalTool.LlvmNm, "-u", "--arch=" + slice.Architecture, exe)
                .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(l => l.StartsWith("U ", StringComparison.Ordinal) ? l[2..] : l)
                .Where(l => !l.EndsWith(':') && l.Length > 0)
                .Order(StringComparer.Ordinal);
            Assert.Equal(nm, slice.UndefinedSymbols.Order(StringComparer.Ordinal));
        }
    }

    [Theory]
    [MemberData(nameof(Kexts))]
    public void Audit_verdicts_are_those_publicly_known(string kext)
    {
        var header = File.ReadLines(Path.Combine(Root, "EXPECTED.tsv")).First().Split('\t');
        var row = Tsv("EXPECTED.tsv").Single(r => r[0] == kext);
        var divergence = row[^1];
        var report = Reports.Value[kext];
        var wrong = new List<string>();
        for (var c = 3; c < header.Length - 2; c++)
        {
            var cell = header[c];
            var actual = report.Verdicts.Single(v => v.Key == cell);
            var expected = row[c];
            if (divergence.Length > 0 && divergence.StartsWith(cell.Split('/')[1] + ":", StringComparison.Ordinal))
            {
                continue; // a recorded divergence (EXPECTED.tsv says which and why); asserted below
            }
            if (actual.VerdictCode != expected)
            {
                wrong.Add($"{cell}: expected {expected}, audit says {actual.VerdictCode} ({string.Join("; ", actual.Reasons.Select(x => x.Key + ": " + x.Message))})");
            }
        }
        Assert.True(wrong.Count == 0, $"{kext} ({row[^2]}):\n{string.Join("\n", wrong)}");
    }

    [Fact]
    public void Recorded_divergences_are_still_what_the_audit_says()
    {
        // USBInjectAll's arm64e builds link IOACPIFamily, which Apple silicon lacks; the audit accepts Apple families
        // by name and cannot know that. If that changes, EXPECTED.tsv's divergence column must go.
        foreach (var row in Tsv("EXPECTED.tsv").Where(r => r[^1].Length > 0))
        {
            var platform = row[^1].Split(':')[0];
            Assert.All(Reports.Value[row[0]].Verdicts.Where(v => v.Key.EndsWith("/" + platform, StringComparison.Ordinal) && v.Verdict != KextLoadVerdict.NotApplicable),
                v => Assert.Equal(KextLoadVerdict.Loads, v.Verdict));
        }
    }

    [Fact]
    public void Every_symbol_is_bound_as_LINKS_txt_says()
    {
        var expected = ParseLinks(File.ReadAllLines(Path.Combine(Root, "LINKS.txt")));
        var actual = ParseLinks(LinkLines().ToArray());
        var differences = new List<string>();
        foreach (var key in expected.Keys.Union(actual.Keys).Order(StringComparer.Ordinal))
        {
            var e = expected.GetValueOrDefault(key);
            var a = actual.GetValueOrDefault(key);
            if (e != a)
            {
                differences.Add($"{key}\n    expected: {e ?? "(absent)"}\n    actual:   {a ?? "(absent)"}");
            }
        }
        Assert.True(differences.Count == 0,
            $"{differences.Count} symbol binding(s) changed (regenerate LINKS.txt with KEXTRUST_WRITE_LINKS=1 only if the change is right):\n"
            + string.Join("\n", differences.Take(40)));
    }

    [Fact]
    public void LINKS_txt_can_be_regenerated()
    {
        // KEXTRUST_WRITE_LINKS=1 dotnet test --filter LINKS_txt_can_be_regenerated writes the current bindings.
        if (Environment.GetEnvironmentVariable("KEXTRUST_WRITE_LINKS") == "1")
        {
            File.WriteAllLines(Path.Combine(Root, "LINKS.txt"), LinkLines());
        }
        Assert.NotEmpty(File.ReadAllLines(Path.Combine(Root, "LINKS.txt")));
    }

    [Fact]
    public void Ethernet_drivers_get_the_wake_on_LAN_group_from_IONetworkingFamily()
    {
        foreach (var kext in Manifest.Where(r => r[1] is "as.acidanthera.mieze.IntelMausi" or "com.insanelymac.RealtekRTL8111" or "com.insanelymac.LucyRTL8125Ethernet").Select(r => r[0]))
        {
            var link = Reports.Value[kext].Link!;
            foreach (var result in link.Results)
            {
                var b = result.Bindings.Single(x => x.Symbol == "_gIOEthernetWakeOnLANFilterGroup");
                if (result.Release == MacOSRelease.Catalina)
                {
                    // No export list published for 10.15's IONetworkingFamily: assumed, never refused.
                    Assert.Equal(KextSymbolSource.Assumed, b.Source);
                    Assert.Contains("com.apple.iokit.IONetworkingFamily", b.Libraries);
                }
                else
                {
                    Assert.Equal(KextSymbolSource.AppleFamilyExports, b.Source);
                    Assert.Equal<string>(["com.apple.iokit.IONetworkingFamily"], b.Libraries);
                }
                Assert.True(result.Resolves, $"{kext} {result.Release}: {string.Join(", ", result.Unresolved.Select(u => u.Symbol))}");
            }
        }
    }

    [Fact]
    public void Fat_kexts_with_an_i386_object_slice_are_judged_on_their_x86_64_slice()
    {
        foreach (var kext in Manifest.Where(r => r[3].Contains("i386:OBJECT", StringComparison.Ordinal)).Select(r => r[0]))
        {
            var report = Reports.Value[kext];
            Assert.Equal(KextAuditSubjectKind.Kext, report.Kind);
            foreach (var v in report.Verdicts.Where(v => v.Platform == MacPlatform.Intel))
            {
                Assert.DoesNotContain(v.Reasons, x => x.Code == TrustCode.NotAKext);
                Assert.Contains(v.Reasons, x => x.Code == TrustCode.IgnoredSlice && x.Message.StartsWith("i386 slice ignored", StringComparison.Ordinal));
            }
        }
    }

    [Fact]
    public void A_private_KPI_import_nothing_declared_provides_stays_unresolved_and_names_its_library()
    {
        var kext = Manifest.Single(r => r[1] == "as.vit9696.RestrictEvents")[0];
        var link = Reports.Value[kext].Link!;
        var u = link.Results.Where(r => r.Release == MacOSRelease.All[1]).SelectMany(r => r.Unresolved).Single();
        Assert.Equal("_cpuid_info", u.Symbol);
        Assert.Equal<string>(["com.apple.kpi.private"], u.AvailableFrom);
    }

    /// <summary>
    /// One line per kext, slice architecture and symbol: how it was bound on each release, releases with the same
    /// binding joined (<c>kext  arch  symbol  10.15:assumed(a,b) 11-15.4:apple-family-exports(c)</c>).
    /// </summary>
    private static IEnumerable<string> LinkLines()
    {
        foreach (var (path, report) in Reports.Value.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (report.Link is not { } link)
            {
                continue;
            }
            foreach (var arch in link.Results.Select(r => r.SliceArchitecture).Distinct())
            {
                var results = link.Results.Where(r => r.SliceArchitecture == arch).ToArray();
                foreach (var symbol in results[0].Bindings.Select(b => b.Symbol))
                {
                    var line = new StringBuilder().Append(path).Append('\t').Append(arch).Append('\t').Append(symbol).Append('\t');
                    var groups = new List<(List<string> Releases, string Binding)>();
                    foreach (var r in results)
                    {
                        var b = r.Bindings.First(x => x.Symbol == symbol);
                        var text = $"{Kebab(b.Source)}({string.Join(",", b.Libraries)})";
                        if (groups.Count > 0 && groups[^1].Binding == text)
                        {
                            groups[^1].Releases.Add(r.Release.Key);
                        }
                        else
                        {
                            groups.Add(([r.Release.Key], text));
                        }
                    }
                    line.AppendJoin(' ', groups.Select(g => $"{(g.Releases.Count == 1 ? g.Releases[0] : g.Releases[0] + "-" + g.Releases[^1])}:{g.Binding}"));
                    yield return line.ToString();
                }
            }
        }
    }

    private static Dictionary<string, string> ParseLinks(IEnumerable<string> lines) =>
        lines.Where(l => l.Length > 0).Select(l => l.Split('\t')).ToDictionary(f => $"{f[0]} {f[1]} {f[2]}", f => f[3], StringComparer.Ordinal);

    private static string Kebab(KextSymbolSource source) => source switch
    {
        KextSymbolSource.KpiBundle => "kpi",
        KextSymbolSource.Kernel => "kernel",
        KextSymbolSource.AppleFamilyExports => "apple-family-exports",
        KextSymbolSource.VtablePatch => "vtable-patch",
        KextSymbolSource.BundledLibrary => "library-kext",
        KextSymbolSource.AppleFamilyClass => "apple-family-class",
        KextSymbolSource.Assumed => "assumed",
        _ => "unresolved",
    };

    private static string FileTypeName(MachOFileType type) => type switch
    {
        MachOFileType.KextBundle => "KEXTBUNDLE",
        MachOFileType.Object => "OBJECT",
        _ => type.ToString().ToUpperInvariant(),
    };
}

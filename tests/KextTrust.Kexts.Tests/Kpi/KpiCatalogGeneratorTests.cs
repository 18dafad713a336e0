using KextTrust.KpiCatalogGen;
using KextTrust.Kexts.Kpi;
using KextTrust.TestSupport;

namespace KextTrust.Kexts.Tests.Kpi;

public sealed class KpiCatalogGeneratorTests
{
    private static string DataRoot
    {
        get
        {
            var dir = Corpus.XnuKpiData;
            Assert.True(Directory.Exists(dir), $"xnu KPI data not found at {dir}");
            return dir;
        }
    }

    private static string FamiliesRoot => Path.Combine(Corpus.CatalogDataRoot, "apple-families");

    private static string CommittedCatalog =>
        Path.Combine(Corpus.RepositoryRoot, "src", "KextTrust.Kexts", "Kpi", "kpi-catalog.txt.gz");

    [Fact]
    public void Generation_is_deterministic()
    {
        var a = KpiCatalogGenerator.Generate(DataRoot, FamiliesRoot);
        var b = KpiCatalogGenerator.Generate(DataRoot, FamiliesRoot);
        Assert.Equal(a, b);
    }

    [Fact]
    public void Committed_catalog_matches_a_fresh_generation()
    {
        var fresh = KpiCatalogGenerator.GenerateText(DataRoot, FamiliesRoot);
        var committed = KpiCatalogGenerator.Decompress(File.ReadAllBytes(CommittedCatalog));
        // Compare the text: gzip bytes may differ between zlib builds; the content may not.
        Assert.True(fresh == committed,
            "src/KextTrust.Kexts/Kpi/kpi-catalog.txt.gz is stale: run dotnet run --project tools/KextTrust.KpiCatalogGen -- tools/KextTrust.KpiCatalogGen/data/xnu-kpi tools/KextTrust.KpiCatalogGen/data/apple-families src/KextTrust.Kexts/Kpi/kpi-catalog.txt.gz");
    }

    [Fact]
    public void Embedded_resource_is_the_committed_file()
    {
        using var stream = typeof(KpiCatalog).Assembly.GetManifestResourceStream(KpiCatalog.ResourceName)!;
        using var ms = new MemoryStream();
        stream.CopyTo(ms);
        Assert.Equal(File.ReadAllBytes(CommittedCatalog), ms.ToArray());
    }

    [Theory]
    [InlineData("macos-10.15", "BSDKernel", "com.apple.kpi.bsd", "x86_64")]
    [InlineData("macos-11", "IOKit", "com.apple.kpi.iokit", "arm64")]
    [InlineData("macos-13", "Libkern", "com.apple.kpi.libkern", "x86_64")]
    [InlineData("macos-14", "Mach", "com.apple.kpi.mach", "arm64")]
    [InlineData("macos-15", "MACFramework", "com.apple.kpi.dsep", "x86_64")]
    [InlineData("macos-15.4", "Unsupported", "com.apple.kpi.unsupported", "arm64")]
    [InlineData("macos-12", "Private", "com.apple.kpi.private", "x86_64")]
    public void Every_line_of_a_set_file_is_exported_by_its_bundle(string folder, string set, string bundle, string arch)
    {
        // An independent, naive re-read of the data files (not the generator's parser).
        var release = MacOSRelease.Parse(folder);
        Assert.True(KextArchitectures.TryParse(arch, out var a));
        var catalog = KpiCatalog.Load();
        var files = new[] { $"{set}.exports", $"{set}.{arch}.exports", $"{set}.{arch}.MacOSX.exports" }
            .Select(f => Path.Combine(DataRoot, folder, f)).Where(File.Exists).ToList();
        var checkedCount = 0;
        foreach (var raw in files.SelectMany(File.ReadLines))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }
            var symbol = line.Split(':')[0].Trim().TrimEnd('*');
            Assert.True(catalog.ExportingBundles(release, a, line.EndsWith('*') ? symbol + "x" : symbol).Contains(bundle), $"{folder} {arch} {line}");
            checkedCount++;
        }
        Assert.True(checkedCount > 0);
    }

    [Fact]
    public void Unknown_source_tags_stop_the_generator()
    {
        using var dir = new TempDir();
        foreach (var (_, folder) in KpiCatalogGenerator.Releases)
        {
            Directory.CreateDirectory(Path.Combine(dir.Path, folder));
            File.WriteAllText(Path.Combine(dir.Path, folder, "SOURCE-TAG"), "xnu-0.0.0\n");
        }
        var e = Assert.Throws<InvalidDataException>(() => KpiCatalogGenerator.GenerateText(dir.Path));
        Assert.Contains("xnu-0.0.0", e.Message, StringComparison.Ordinal);
    }
}

public sealed class AppleFamilyExportCatalogTests
{
    private static string FamiliesRoot => Path.Combine(Corpus.CatalogDataRoot, "apple-families");

    private static readonly KpiCatalog Catalog = KpiCatalog.Load();

    [Fact]
    public void Every_published_list_line_is_exported_by_its_family_on_exactly_its_releases()
    {
        // An independent re-read of RELEASES.tsv and the committed lists (not the generator's parser).
        var rows = File.ReadLines(Path.Combine(FamiliesRoot, "RELEASES.tsv")).Where(l => !l.StartsWith('#')).Select(l => l.Split('\t')).ToList();
        Assert.Equal(4 * MacOSRelease.All.Count, rows.Count);
        foreach (var r in rows)
        {
            var release = MacOSRelease.All.Single(x => x.Key == r[0]);
            var bundle = r[2];
            Assert.Equal(r[8] != "-", Catalog.FamilyExportsKnown(release, bundle));
            if (r[8] == "-")
            {
                Assert.Empty(Catalog.FamilyExportedSymbols(release, bundle));
                continue;
            }
            var listed = File.ReadLines(Path.Combine(FamiliesRoot, r[8])).Select(l => l.Trim()).Where(l => l.Length > 0 && l[0] != '#').ToHashSet(StringComparer.Ordinal);
            Assert.Equal(listed.Order(StringComparer.Ordinal), Catalog.FamilyExportedSymbols(release, bundle).Order(StringComparer.Ordinal));
            // Never a kernel or KPI export: a family's list is not the kernel's.
            var sample = listed.First();
            Assert.DoesNotContain(bundle, Catalog.ExportingBundles(release, KextArchitecture.X86_64, sample));
        }
    }

    [Fact]
    public void Provenance_of_each_list_is_recorded()
    {
        var source = Catalog.FamilyExportSources.Single(s => s.Release == MacOSRelease.All[1] && s.BundleId == "com.apple.iokit.IONetworkingFamily");
        Assert.Equal("apple-oss-distributions/IONetworkingFamily", source.Repository);
        Assert.Equal("IONetworkingFamily-151.40.1", source.Tag);
        Assert.Equal("config/IONetworkingFamily.exports", source.Path);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(Path.Combine(FamiliesRoot, "IONetworkingFamily", "IONetworkingFamily-151.40.1.exports")))), source.Sha256);
        Assert.False(Catalog.FamilyExportSources.Single(s => s.Release == MacOSRelease.Catalina && s.BundleId == "com.apple.iokit.IONetworkingFamily").IsKnown);
        var wol = Catalog.SymbolExports("_gIOEthernetWakeOnLANFilterGroup");
        Assert.Empty(wol.Bundles);
        Assert.Equal(["com.apple.iokit.IONetworkingFamily"], wol.FamiliesOn(KpiCatalog.Slot(MacOSRelease.All[1], KextArchitecture.Arm64)));
        Assert.Empty(wol.FamiliesOn(KpiCatalog.Slot(MacOSRelease.Catalina, KextArchitecture.X86_64)));
    }

    [Fact]
    public void A_list_whose_sha256_differs_from_its_provenance_stops_the_generator()
    {
        using var dir = new TempDir();
        foreach (var file in Directory.EnumerateFiles(FamiliesRoot, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(dir.Path, Path.GetRelativePath(FamiliesRoot, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        File.AppendAllText(Path.Combine(dir.Path, "IOPCIFamily", "IOPCIFamily-428.120.4.exports"), "_extra\n");
        var e = Assert.Throws<InvalidDataException>(() => KpiCatalogGenerator.GenerateText(Corpus.XnuKpiData, dir.Path));
        Assert.Contains("IOPCIFamily-428.120.4", e.Message, StringComparison.Ordinal);
        Assert.Contains("sha256", e.Message, StringComparison.Ordinal);
    }
}

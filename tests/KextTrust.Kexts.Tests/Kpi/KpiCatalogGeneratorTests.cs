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
            var dir = Path.Combine(Corpus.SharedRoot, "data", "xnu-kpi");
            Assert.True(Directory.Exists(dir), $"shared KPI data not found at {dir} (set KEXTRUST_SHARED)");
            return dir;
        }
    }

    private static string CommittedCatalog =>
        Path.Combine(Corpus.RepositoryRoot, "src", "KextTrust.Kexts", "Kpi", "kpi-catalog.txt.gz");

    [Fact]
    public void Generation_is_deterministic()
    {
        var a = KpiCatalogGenerator.Generate(DataRoot);
        var b = KpiCatalogGenerator.Generate(DataRoot);
        Assert.Equal(a, b);
    }

    [Fact]
    public void Committed_catalog_matches_a_fresh_generation()
    {
        var fresh = KpiCatalogGenerator.GenerateText(DataRoot);
        var committed = KpiCatalogGenerator.Decompress(File.ReadAllBytes(CommittedCatalog));
        // Compare the text: gzip bytes may differ between zlib builds; the content may not.
        Assert.True(fresh == committed,
            "src/KextTrust.Kexts/Kpi/kpi-catalog.txt.gz is stale: run dotnet run --project tools/KextTrust.KpiCatalogGen -- ../shared/data/xnu-kpi src/KextTrust.Kexts/Kpi/kpi-catalog.txt.gz");
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

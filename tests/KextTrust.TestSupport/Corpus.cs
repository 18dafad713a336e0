using System.Reflection;

namespace KextTrust.TestSupport;

/// <summary>
/// Files we did not write: Microsoft's Developer-ID-signed Mach-O binaries from the macOS runtime
/// packs (fetched by PackageDownload in this project), Apple's published data the KPI catalogs are generated from
/// (<c>tools/KextTrust.KpiCatalogGen/data</c>), and the real third-party kexts of <c>tests/data/real-kexts</c>.
/// </summary>
public static class Corpus
{
    private static string Metadata(string key) =>
        typeof(Corpus).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == key)?.Value
        ?? throw new InvalidOperationException($"assembly metadata '{key}' missing");

    /// <summary>The repository root (the folder holding KextTrust.slnx).</summary>
    public static string RepositoryRoot => Metadata("RepositoryRoot");

    /// <summary>
    /// Apple's data the catalog generator reads, committed with its provenance
    /// (<c>tools/KextTrust.KpiCatalogGen/data</c>: <c>xnu-kpi</c>, <c>apple-families</c>).
    /// </summary>
    public static string CatalogDataRoot => Path.Combine(RepositoryRoot, "tools", "KextTrust.KpiCatalogGen", "data");

    /// <summary>The xnu KPI symbol sets and System.kext Info.plists, one folder per macOS release.</summary>
    public static string XnuKpiData => Path.Combine(CatalogDataRoot, "xnu-kpi");

    /// <summary>The real third-party kexts of the regression corpus (<c>tests/data/real-kexts</c>, with its manifest).</summary>
    public static string RealKexts => Path.Combine(RepositoryRoot, "tests", "data", "real-kexts");

    /// <summary>A file of the committed third-party test data, <c>tests/data/RELATIVE</c> (provenance in <c>tests/data/MANIFEST.md</c>).</summary>
    public static string TestData(string relative) => Path.Combine(RepositoryRoot, "tests", "data", relative.Replace('/', Path.DirectorySeparatorChar));
    /// <summary>The real Image4 files committed with their provenance (<c>tests/data/image4/PROVENANCE.md</c>).</summary>
    public static string Image4File(string name) => Path.Combine(RepositoryRoot, "tests", "data", "image4", name);

    /// <summary>Folder of the runtime pack for "osx-arm64" or "osx-x64".</summary>
    public static string RuntimePack(string rid)
    {
        var root = Metadata("NuGetPackageRoot");
        var version = Metadata("OsxRuntimePackVersion");
        var dir = Path.Combine(root, $"microsoft.netcore.app.runtime.{rid}", version, "runtimes", rid);
        if (!Directory.Exists(dir))
        {
            throw new DirectoryNotFoundException($"runtime pack {rid} {version} not restored at {dir}: run dotnet restore");
        }
        return dir;
    }

    /// <summary>Every Mach-O file of both runtime packs: each *.dylib and createdump.</summary>
    public static IReadOnlyList<string> RuntimePackMachOFiles()
    {
        var list = new List<string>();
        foreach (var rid in new[] { "osx-arm64", "osx-x64" })
        {
            var native = Path.Combine(RuntimePack(rid), "native");
            list.AddRange(Directory.EnumerateFiles(native, "*.dylib"));
            var createdump = Path.Combine(native, "createdump");
            if (File.Exists(createdump))
            {
                list.Add(createdump);
            }
        }
        list.Sort(StringComparer.Ordinal);
        return list;
    }
}

using KextTrust.Formats.MachO;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;

namespace KextTrust.Benchmarks;

/// <summary>
/// Writes a benchmark corpus of kext bundles whose imports are drawn from the kernel's real KPI symbol
/// sets (the embedded catalog of macOS 14), with OSBundleLibraries derived from the exporting bundles, so
/// every kext links. Deterministic for a given seed. Half are fat (x86_64 + arm64e), half thin.
/// </summary>
public static class CorpusWriter
{
    public static (int Kexts, long ExecutableBytes) Write(string directory, int count, int seed = 1)
    {
        Directory.CreateDirectory(directory);
        var catalog = KpiCatalog.Load();
        var release = MacOSRelease.Sonoma;
        var x86 = catalog.ExportedSymbols(release, KextArchitecture.X86_64).Order(StringComparer.Ordinal).ToArray();
        var arm = catalog.ExportedSymbols(release, KextArchitecture.Arm64).ToHashSet(StringComparer.Ordinal);
        var common = x86.Where(arm.Contains).ToArray();
        var random = new Random(seed);
        long bytes = 0;
        for (var i = 0; i < count; i++)
        {
            var n = random.Next(20, 400);
            var symbols = new SortedSet<string>(StringComparer.Ordinal);
            while (symbols.Count < n)
            {
                symbols.Add(common[random.Next(common.Length)]);
            }
            var libraries = new SortedDictionary<string, string>(StringComparer.Ordinal);
            foreach (var s in symbols)
            {
                var bundle = catalog.ExportingBundles(release, KextArchitecture.X86_64, s).Order(StringComparer.Ordinal).FirstOrDefault();
                if (bundle is not null)
                {
                    libraries[bundle] = "8.0";
                }
            }
            var fat = i % 2 == 0;
            KextSliceSpec[] slices = fat
                ? [new(MachOTargetArchitecture.X86_64, symbols.ToArray()), new(MachOTargetArchitecture.Arm64e, symbols.ToArray())]
                : [new(MachOTargetArchitecture.X86_64, symbols.ToArray())];
            var spec = new KextBundleSpec($"com.kextrust.bench.Driver{i:D5}", $"1.{i % 100}.{i % 7}")
            {
                Libraries = libraries,
                Slices = slices,
            };
            var path = KextBundleWriter.Write(directory, spec);
            bytes += new FileInfo(Path.Combine(path, "Contents", "MacOS", spec.BundleId[(spec.BundleId.LastIndexOf('.') + 1)..])).Length;
        }
        return (count, bytes);
    }
}

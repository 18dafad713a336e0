using BenchmarkDotNet.Attributes;
using KextTrust.Kexts.Kpi;

namespace KextTrust.Benchmarks;

/// <summary>Loading the embedded KPI catalog, and symbol lookups against it.</summary>
[MemoryDiagnoser]
public class KpiCatalogBenchmarks
{
    private KpiCatalog _catalog = null!;
    private string[] _symbols = [];

    [GlobalSetup]
    public void Setup()
    {
        _catalog = KpiCatalog.Load();
        _symbols = _catalog.ExportedSymbols(MacOSRelease.Sonoma, KextArchitecture.X86_64).Take(1000)
            .Append("_no_such_symbol").Append("_kauth_listen_scope").ToArray();
    }

    [Benchmark(Description = "KpiCatalog.Load (embedded, gzip)")]
    public KpiCatalog Load() => KpiCatalog.Load();

    [Benchmark(Description = "1,002 ExportingBundles lookups", OperationsPerInvoke = 1002)]
    public int Lookups()
    {
        var n = 0;
        foreach (var s in _symbols)
        {
            n += _catalog.ExportingBundles(MacOSRelease.Sonoma, KextArchitecture.X86_64, s).Count;
        }
        return n;
    }
}

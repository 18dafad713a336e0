using BenchmarkDotNet.Attributes;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Audit;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;

namespace KextTrust.Benchmarks;

/// <summary>
/// Auditing one kext (open the bundle, parse the executable, KPI rules, link check against 7 releases × 2 platforms):
/// a universal (x86_64 + arm64e) kext importing 300 real KPI symbols plus a few of the seed's groups. Report
/// kexts/s as 1 / mean.
/// </summary>
[MemoryDiagnoser]
public class AuditBenchmarks
{
    private KpiCatalog _catalog = null!;
    private string _root = "";
    private string _kext = "";

    [GlobalSetup]
    public void Setup()
    {
        _catalog = KpiCatalog.Load();
        _root = Path.Combine(Path.GetTempPath(), $"kextrust-audit-bench-{Guid.NewGuid():N}");
        Directory.CreateDirectory(_root);
        var release = MacOSRelease.Sonoma;
        var x86 = _catalog.ExportedSymbols(release, KextArchitecture.X86_64).ToHashSet(StringComparer.Ordinal);
        var symbols = _catalog.ExportedSymbols(release, KextArchitecture.Arm64)
            .Where(x86.Contains).Order(StringComparer.Ordinal).Where((_, i) => i % 17 == 0).Take(300)
            .Concat(["_sock_socket", "_kauth_listen_scope", "__ZN15IOUSBHostDevice4openEP9IOServicejPv", "__ZTV12IOUserClient"])
            .ToArray();
        var libraries = new SortedDictionary<string, string>(StringComparer.Ordinal) { ["com.apple.iokit.IOUSBHostFamily"] = "1.0" };
        foreach (var s in symbols)
        {
            foreach (var b in _catalog.ExportingBundles(release, KextArchitecture.X86_64, s))
            {
                libraries[b] = "8.0";
            }
        }
        _kext = KextBundleWriter.Write(_root, new KextBundleSpec("com.kextrust.bench.Audited", "1.0")
        {
            Libraries = libraries,
            Slices = [new KextSliceSpec(MachOTargetArchitecture.X86_64, symbols), new KextSliceSpec(MachOTargetArchitecture.Arm64e, symbols)],
        });
    }

    [GlobalCleanup]
    public void Cleanup() => Directory.Delete(_root, recursive: true);

    [Benchmark(Description = "audit one universal kext (open, parse, KPI rules, link check, 14 verdicts)")]
    public KextAuditReport AuditOne() => new KextAuditor(_catalog).Audit(KextBundle.Open(_kext));
}

using KextTrust.Formats.MachO;
using KextTrust.Kexts.Bundles;

namespace KextTrust.Benchmarks;

/// <summary>
/// Kexts for the secure-boot benchmarks (in-process <see cref="BootBenchmarks"/> and bench/startup-bench.sh): each
/// fat arm64e + x86_64, linking against com.apple.kpi.iokit and libkern only (no unsupported KPI), so every one of
/// them goes into an Apple-silicon AuxKC.
/// </summary>
public static class BootCorpus
{
    /// <summary>Writes <paramref name="count"/> kexts <c>com.bench.kext0000…</c> into <paramref name="directory"/>; returns their bundle ids.</summary>
    public static IReadOnlyList<string> Write(string directory, int count)
    {
        Directory.CreateDirectory(directory);
        var ids = new List<string>(count);
        for (var i = 0; i < count; i++)
        {
            var id = $"com.bench.kext{i:D4}";
            KextBundleWriter.Write(directory, new KextBundleSpec(id, "1.0.0")
            {
                Libraries = new Dictionary<string, string> { ["com.apple.kpi.iokit"] = "20.0", ["com.apple.kpi.libkern"] = "20.0" },
                Slices = [new KextSliceSpec(MachOTargetArchitecture.Arm64e, ["_IOLog", "_OSIncrementAtomic"]), new KextSliceSpec(MachOTargetArchitecture.X86_64, ["_IOLog"])],
            });
            ids.Add(id);
        }
        return ids;
    }
}

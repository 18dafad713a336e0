using BenchmarkDotNet.Attributes;
using KextTrust.Formats.MachO;
using KextTrust.TestSupport;

namespace KextTrust.Benchmarks;

/// <summary>
/// Mach-O parse + undefined-symbol extraction over in-memory bytes. Throughput in MB/s is
/// FileBytes / Mean (FileBytes is printed as a column via <see cref="FileBytes"/>).
/// </summary>
[MemoryDiagnoser]
public class MachOBenchmarks
{
    private byte[] _bytes = [];

    /// <summary>(a) libcoreclr.dylib (~6 MB) and (b) a small file, both from the osx-arm64 runtime pack.</summary>
    [Params("libcoreclr.dylib", "libSystem.Native.dylib")]
    public string File { get; set; } = "";

    /// <summary>Size of the parsed file, for MB/s = FileBytes / Mean.</summary>
    public long FileBytes => _bytes.Length;

    [GlobalSetup]
    public void Setup()
    {
        var path = Corpus.RuntimePackMachOFiles().First(p => p.Contains("osx-arm64", StringComparison.Ordinal) && Path.GetFileName(p) == File);
        _bytes = System.IO.File.ReadAllBytes(path);
    }

    [Benchmark]
    public int ParseAndUndefinedSymbols()
    {
        var file = MachOFile.FromBytes(_bytes, File);
        return file.Slices[0].UndefinedSymbols.Count;
    }
}

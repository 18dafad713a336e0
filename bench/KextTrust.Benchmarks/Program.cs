using BenchmarkDotNet.Running;
using KextTrust.Benchmarks;

// Two jobs:
//   corpus DIR [COUNT]  writes COUNT kexts (default 1000) for the whole-process CLI benchmark (bench/cli-bench.sh)
//   corpus DIR COUNT --boot  writes COUNT fat arm64e kexts that all go into an AuxKC (bench/startup-bench.sh)
//   anything else       BenchmarkDotNet function benchmarks, e.g. -- --filter '*MachO*'
if (args.Length >= 2 && args[0] == "corpus")
{
    var count = args.Length >= 3 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 1000;
    if (args.Length >= 4 && args[3] == "--boot")
    {
        Console.WriteLine($"wrote {BootCorpus.Write(args[1], count).Count} AuxKC-ready kexts to {args[1]}");
        return 0;
    }
    var (kexts, bytes) = CorpusWriter.Write(args[1], count);
    Console.WriteLine($"wrote {kexts} kexts, {bytes / 1024.0 / 1024.0:F1} MiB of executables, to {args[1]}");
    return 0;
}
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;

using BenchmarkDotNet.Running;
using KextTrust.Benchmarks;

// Two jobs:
//   corpus DIR [COUNT]  writes COUNT kexts (default 1000) for the whole-process CLI benchmark (bench/cli-bench.sh)
//   corpus DIR COUNT --boot  writes COUNT fat arm64e kexts that all go into an AuxKC (bench/startup-bench.sh)
//   anything else       BenchmarkDotNet function benchmarks, e.g. -- --filter '*MachO*'; CI runs every one once:
//                       -- --filter '*' --job Dry --inProcess (exit 1 if any did not run)
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
// Exit 1 when a benchmark did not run (its set-up threw, a validation error, no measurement), so that a broken
// benchmark fails the bench smoke in .ci/run instead of printing NA.
var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args).ToArray();
var broken = summaries.Where(s => s.HasCriticalValidationErrors).Select(s => $"{s.Title}: validation errors")
    .Concat(summaries.SelectMany(s => s.Reports).Where(r => !r.Success || r.ResultStatistics is null)
        .Select(r => $"{r.BenchmarkCase.DisplayInfo}: did not run"))
    .ToArray();
foreach (var b in broken)
{
    Console.Error.WriteLine($"benchmark broken: {b}");
}
return broken.Length == 0 ? 0 : 1;

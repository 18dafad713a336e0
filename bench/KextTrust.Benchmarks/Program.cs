using BenchmarkDotNet.Running;

// Function benchmarks (BenchmarkDotNet). Run: dotnet run -c Release --project bench/KextTrust.Benchmarks -- --filter '*'
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);

using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using KextTrust.Kexts.Signing;
using KextTrust.TestSupport;

namespace KextTrust.Benchmarks;

/// <summary>
/// Whole-file signature verification of libcoreclr.dylib (osx-arm64 runtime pack, Microsoft Developer ID):
/// every page of both CodeDirectories (SHA-1 and SHA-256), the CMS and the chain to the pinned Apple Root CA.
/// MB/s = FileBytes / Mean. <see cref="Sha256Only"/> is the in-process hashing limit over the same bytes.
/// </summary>
[MemoryDiagnoser]
public class VerifyBenchmarks
{
    private string _path = "";
    private string[] _packFiles = [];
    private byte[] _bytes = [];

    /// <summary>Threads hashing pages: 1 (single-threaded) or 0 (all cores).</summary>
    [Params(1, 0)]
    public int Threads { get; set; }

    /// <summary>Size of the verified file, for MB/s = FileBytes / Mean.</summary>
    public long FileBytes => _bytes.Length;

    [GlobalSetup]
    public void Setup()
    {
        _path = Corpus.RuntimePackMachOFiles().First(p => p.Contains("osx-arm64", StringComparison.Ordinal) && Path.GetFileName(p) == "libcoreclr.dylib");
        _bytes = File.ReadAllBytes(_path);
        _packFiles = Corpus.RuntimePackMachOFiles().ToArray();
        if (VerifyRuntimePacks() != _packFiles.Length)
        {
            throw new InvalidOperationException("not every runtime-pack file verifies");
        }
        Console.WriteLine($"// runtime packs: {_packFiles.Length} files, {PackBytes} bytes");
        var check = KextSignatureVerifier.Verify(_path);
        if (check.Status != KextSignatureStatus.Valid)
        {
            throw new InvalidOperationException($"{_path} does not verify: {string.Join("; ", check.Problems)}");
        }
    }

    /// <summary>
    /// The 28 runtime-pack Mach-O files (osx-arm64 + osx-x64) verified in one <see cref="KextSignatureVerifier.VerifyMany"/>
    /// call, warm: the verification rate once process start and the one-time trust-store load are paid.
    /// MB/s = <see cref="PackBytes"/> / Mean; compare with <c>openssl dgst -sha256</c> over the same files.
    /// </summary>
    [Benchmark]
    public int VerifyRuntimePacks()
    {
        var items = KextSignatureVerifier.VerifyMany(_packFiles, new KextSignatureVerifierOptions { MaxDegreeOfParallelism = Threads == 0 ? null : Threads });
        return items.Count(i => i.Result?.Status == KextSignatureStatus.Valid);
    }

    /// <summary>Bytes of the runtime-pack files, for MB/s = PackBytes / Mean of <see cref="VerifyRuntimePacks"/>.</summary>
    public long PackBytes => _packFiles.Sum(f => new FileInfo(f).Length);

    [Benchmark]
    public KextSignatureStatus VerifyLibCoreClr() =>
        KextSignatureVerifier.Verify(_path, new KextSignatureVerifierOptions { MaxDegreeOfParallelism = Threads == 0 ? null : Threads }).Status;

    [Benchmark(Baseline = true)]
    public byte Sha256Only()
    {
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(_bytes, digest);
        return digest[0];
    }

    /// <summary>SHA-256 of every 4 KiB page (what one CodeDirectory costs), one call per page.</summary>
    [Benchmark]
    public byte Sha256Pages() => HashPages(HashAlgorithmName.SHA256);

    /// <summary>SHA-1 of every 4 KiB page (the alternate CodeDirectory of Microsoft's files).</summary>
    [Benchmark]
    public byte Sha1Pages() => HashPages(HashAlgorithmName.SHA1);

    private byte HashPages(HashAlgorithmName algorithm)
    {
        Span<byte> digest = stackalloc byte[32];
        byte acc = 0;
        for (var offset = 0; offset < _bytes.Length; offset += 4096)
        {
            var page = _bytes.AsSpan(offset, Math.Min(4096, _bytes.Length - offset));
            _ = algorithm == HashAlgorithmName.SHA1 ? SHA1.HashData(page, digest) : SHA256.HashData(page, digest);
            acc ^= digest[0];
        }
        return acc;
    }
}

using BenchmarkDotNet.Attributes;
using KextTrust.Formats.Image4;
using KextTrust.Kexts.Image4;
using KextTrust.TestSupport;

namespace KextTrust.Benchmarks;

/// <summary>
/// A real Apple IM4M (PyIMG4's T8015 ticket, tests/data/image4): the strict decode alone, and <c>img4 verify</c>'s work
/// on it (decode, RSA-4096 signature over MANB, chain to the pinned Apple Secure Boot Root CA - G2, constraints).
/// </summary>
[MemoryDiagnoser]
public class Image4Benchmarks
{
    private byte[] _manifest = [];

    [GlobalSetup]
    public void Setup() => _manifest = File.ReadAllBytes(Corpus.Image4File("pyimg4-IM4M"));

    [Benchmark]
    public int DecodeManifest() => Im4Manifest.FromBytes(_manifest).Body.Objects.Count;

    [Benchmark]
    public bool DecodeAndVerifyManifest() => Image4Verifier.Verify(Im4Manifest.FromBytes(_manifest)).Valid;
}

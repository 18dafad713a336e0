using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using KextTrust.Boot.Enclave;
using KextTrust.Boot.KernelManagement;
using KextTrust.Consent.Policy;
using KextTrust.Boot.Policy;
using KextTrust.Boot.Startup;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;

namespace KextTrust.Benchmarks;

/// <summary>
/// Startup verification (iBoot: LocalPolicy, AuxKC Image4, receipt) of AuxKCs of 10, 100 and 500 kexts against a bare
/// SHA-384 of the same bytes (the bound), and the kmd rebuild of the AuxKC. Throughput = AuxKC size (printed at setup) / mean.
/// </summary>
[MemoryDiagnoser]
public class BootBenchmarks
{
    private string _root = "";
    private SecureEnclave _sep = null!;
    private AuxKcBuildRequest _request = null!;
    private IbootInputs _inputs = null!;
    private byte[] _auxKc = [];

    /// <summary>Number of kexts in the AuxKC.</summary>
    [Params(10, 100, 500)]
    public int Kexts { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _root = Path.Combine(Path.GetTempPath(), $"kextrust-bootbench-{Guid.NewGuid():N}");
        var extensions = Path.Combine(_root, "Library", "Extensions");
        Directory.CreateDirectory(extensions);
        var uakl = BootCorpus.Write(extensions, Kexts).Select(id => new UaklEntry("BENCH00001", id, ConsentSource.User, null)).ToList();
        _sep = SecureEnclave.Create(Path.Combine(_root, "sep"), RandomNumberGenerator.GetBytes(32), 0x1234);
        _request = new AuxKcBuildRequest
        {
            Candidates = [.. KextDiscovery.FindKexts(extensions).Select(KextBundle.Open)],
            Uakl = UserApprovedKextList.Create(uakl),
            Architecture = KextArchitecture.Arm64,
            Release = MacOSRelease.Sequoia15_4,
            VerifySignature = b => KextTrust.TestSupport.SignatureVerdicts.Valid(b.Path, "BENCH00001", cdhash: "00"),
            Catalog = KpiCatalog.Load(),
            VolumeRoot = _root,
        };
        var build = Kmd.BuildAuxKc(_request);
        var signed = Kmd.SignAuxKc(build, _sep);
        var policy = LocalPolicy.CreateFullSecurity(_sep, Guid.NewGuid()) with { ReducedSecurity = true, ThirdPartyKextsEnabled = true };
        var update = Kmd.UpdateLocalPolicy(policy, _sep, signed);
        // The new policy's nonce takes effect once installed, as a Mac's transaction does when it commits the policy.
        File.WriteAllBytes(Path.Combine(_root, "sep", SecureEnclave.NonceFileName), update.Nonce.SealedBytes.ToArray());
        _sep.ReloadLocalPolicyNonce();
        _auxKc = build.AuxKc.Bytes.ToArray();
        var uaklInput = new UaklInput(_request.Uakl.ToBytes());
        _inputs = IbootInputs.For(_sep, update.ToBytes()) with { AuxKcImage4 = signed.Image4Bytes, AuxKc = _auxKc, Receipt = build.ReceiptBytes(), Uakl = () => uaklInput };
        var check = Iboot.Boot(_inputs);
        if (!check.ThirdPartyKextsLoaded)
        {
            throw new InvalidOperationException("benchmark setup: the AuxKC does not verify: "
                + string.Join("; ", check.Failures.Select(f => f.ToString())));
        }
        Console.WriteLine($"// AuxKC of {Kexts} kexts: {_auxKc.Length} bytes ({_auxKc.Length / 1048576.0:F2} MiB)");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _sep.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    [Benchmark(Baseline = true, Description = "SHA-384 of the AuxKC (bound)")]
    public byte[] Sha384() => SHA384.HashData(_auxKc);

    [Benchmark(Description = "iBoot verification (policy, Image4, AuxKC, receipt)")]
    public bool Verify() => Iboot.Boot(_inputs).ThirdPartyKextsLoaded;

    [Benchmark(Description = "kmd rebuild of the AuxKC and receipt")]
    public int Rebuild() => Kmd.BuildAuxKc(_request).Receipt.Included.Length;
}

// Phase profile of `verify` (single thread): bench/VerifyProfile FILE...  (Stopwatch per phase, 3 rounds; the last is reported)
using System.Diagnostics;
using System.Security.Cryptography.Pkcs;
using KextTrust.Formats.CodeSigning;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Signing;

var files = args;
// Per-operation costs on one signed file (µs): file reads, Mach-O parse, bundle open, certificate loads, SignedCms.
if (files[0] == "micro")
{
    using var mf = MachOFile.Open(files[1]);
    var sg = EmbeddedSignature.Parse(mf.Slices[0].CodeSignatureData, files[1]);
    var cms = new SignedCms(new ContentInfo(sg.CodeDirectory.Bytes.ToArray()), detached: true);
    cms.Decode(sg.Signature!.CmsBytes.Span);
    var ders = cms.Certificates.Select(c => c.RawData).ToArray();
    var fb = File.ReadAllBytes(files[1]);
    T0("ReadAllBytes", () => File.ReadAllBytes(files[1]));
    T0("MachOFile.FromBytes", () => MachOFile.FromBytes(fb, "x"));
    T0("MachOFile.Open", () => MachOFile.Open(files[1]).Dispose());
    var kext = Path.GetDirectoryName(Path.GetDirectoryName(Path.GetDirectoryName(files[1])))!;
    T0("KextBundle.Open", () => KextTrust.Kexts.Bundles.KextBundle.Open(kext));
    void T0(string what, Action a) { for (var w = 0; w < 50; w++) { a(); } var sw = Stopwatch.StartNew(); for (var k = 0; k < 500; k++) { a(); } Console.WriteLine($"{what,-40} {sw.Elapsed.TotalMicroseconds / 500,8:F1} us"); }
    Console.WriteLine($"certs: {ders.Length}");
    void T(string what, Action a) { for (var w = 0; w < 50; w++) { a(); } var sw = Stopwatch.StartNew(); for (var k = 0; k < 500; k++) { a(); } Console.WriteLine($"{what,-40} {sw.Elapsed.TotalMicroseconds / 500,8:F1} us"); }
    T("LoadCertificate leaf", () => System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificate(ders[0]).Dispose());
    T("LoadCertificate all", () => { foreach (var d in ders) System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificate(d).Dispose(); });
    T("SignedCms decode", () => { var c = new SignedCms(new ContentInfo(sg.CodeDirectory.Bytes.ToArray()), detached: true); c.Decode(sg.Signature!.CmsBytes.Span); });
    T("SignedCms decode+CheckSignature", () => { var c = new SignedCms(new ContentInfo(sg.CodeDirectory.Bytes.ToArray()), detached: true); c.Decode(sg.Signature!.CmsBytes.Span); c.SignerInfos[0].CheckSignature(true); });
    T("SignedCms decode+Certificates", () => { var c = new SignedCms(new ContentInfo(sg.CodeDirectory.Bytes.ToArray()), detached: true); c.Decode(sg.Signature!.CmsBytes.Span); foreach (var x in c.Certificates) x.Dispose(); });
    using var leaf = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificate(ders[0]);
    T("GetRSAPublicKey", () => System.Security.Cryptography.X509Certificates.RSACertificateExtensions.GetRSAPublicKey(leaf)?.Dispose());
    T("GetECDsaPublicKey", () => System.Security.Cryptography.X509Certificates.ECDsaCertificateExtensions.GetECDsaPublicKey(leaf)?.Dispose());
    T("PublicKey.GetRSAPublicKey", () => leaf.PublicKey.GetRSAPublicKey()?.Dispose());
    return;
}
if (files[0] == "warm")
{
    // Steady state for a profiler: VerifyMany (dop 1) over the given inputs, ROUNDS times (default 20).
    var rounds = int.Parse(Environment.GetEnvironmentVariable("ROUNDS") ?? "20", System.Globalization.CultureInfo.InvariantCulture);
    var inputs = files[1..];
    if (inputs.Length == 1 && inputs[0].EndsWith(".txt", StringComparison.Ordinal))
    {
        inputs = File.ReadAllLines(inputs[0]);
    }
    var root = Environment.GetEnvironmentVariable("TRUST_ROOT") is { } rp ? System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificateFromFile(rp) : null;
    for (var i = 0; i < rounds; i++)
    {
        var sw = Stopwatch.StartNew();
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        var res = KextSignatureVerifier.VerifyMany(inputs, new KextSignatureVerifierOptions { MaxDegreeOfParallelism = 1, TrustedTestRoot = root });
        var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpu0;
        Console.WriteLine($"round {i}: {sw.Elapsed.TotalMilliseconds:F1} ms wall, {cpu.TotalMilliseconds:F1} ms cpu, {string.Join(",", res.Select(x => x.Result?.Status.ToString() ?? "err").Distinct())}");
    }
    return;
}
if (files[0] == "phases")
{
    // Cold process, one step after another in the order `kextrust verify` meets them; publish with
    // -p:PublishReadyToRun=true to see what the CLI pays (time since process start first).
    var paths = files[1..];
    var sw = Stopwatch.StartNew();
    var self = Process.GetCurrentProcess();
    var cpu = self.TotalProcessorTime;
    Console.WriteLine($"phase {"process start -> Main",-36} {(DateTime.Now - self.StartTime).TotalMilliseconds,8:F1} ms wall {cpu.TotalMilliseconds,8:F1} ms cpu");
    void Lap(string what)
    {
        self.Refresh();
        var now = self.TotalProcessorTime;
        Console.WriteLine($"phase {what,-36} {sw.Elapsed.TotalMilliseconds,8:F1} ms wall {(now - cpu).TotalMilliseconds,8:F1} ms cpu");
        cpu = now;
        sw.Restart();
    }
    var opened = paths.Select(MachOFile.Open).ToArray();
    Lap($"MachOFile.Open x{paths.Length}");
    var sigs = opened.SelectMany(m => m.Slices.Where(x => x.CodeSignature is not null).Select(x => (x, EmbeddedSignature.Parse(x.CodeSignatureData, m.SourceName)))).ToArray();
    Lap("EmbeddedSignature.Parse");
    var digest = new byte[64];
    long hashed = 0;
    foreach (var (slice, sig) in sigs)
    {
        foreach (var cd in sig.AllCodeDirectories)
        {
            var limit = (long)cd.EffectiveCodeLimit;
            for (long p = 0; p < limit; p += cd.PageSize)
            {
                var len = (int)Math.Min(cd.PageSize, limit - p);
                _ = cd.HashType == CodeSigningHashType.Sha1 ? System.Security.Cryptography.SHA1.HashData(slice.Data.Span.Slice((int)p, len), digest)
                    : System.Security.Cryptography.SHA256.HashData(slice.Data.Span.Slice((int)p, len), digest);
                hashed += len;
            }
        }
    }
    Lap($"page hashing ({hashed / 1e6:F1} MB)");
    var first = sigs[0].Item2;
    var cms0 = new SignedCms(new ContentInfo(first.CodeDirectory.Bytes.ToArray()), detached: true);
    cms0.Decode(first.Signature!.CmsBytes.Span);
    Lap("first SignedCms decode");
    cms0.SignerInfos[0].CheckSignature(true);
    Lap("first CheckSignature");
    using (var root = AppleRootCertificate.Load())
    {
        BareChainBuild(cms0, root);
    }
    Lap("first X509Chain build");
    _ = CodeSignatureVerifier.Verify(first);
    Lap("first CodeSignatureVerifier.Verify");
    foreach (var (_, sig) in sigs.Skip(1)) { _ = CodeSignatureVerifier.Verify(sig); }
    Lap($"CodeSignatureVerifier.Verify x{sigs.Length - 1}");
    var r = KextSignatureVerifier.VerifyMany(paths, new KextSignatureVerifierOptions { MaxDegreeOfParallelism = 1 });
    Lap("VerifyMany (dop 1, all warm)");
    _ = KextSignatureVerifier.VerifyMany(paths, new KextSignatureVerifierOptions { MaxDegreeOfParallelism = 1 });
    Lap("VerifyMany again");
    var json = System.Text.Json.JsonSerializer.Serialize(r);
    Lap($"JSON, reflection ({json.Length} chars)");
    foreach (var m in opened) { m.Dispose(); }
    return;
}
if (files[0] == "cold")
{
    var f = files[1];
    var sw = Stopwatch.StartNew();
    void Lap(string what) { Console.WriteLine($"cold {what,-30} {sw.Elapsed.TotalMilliseconds,8:F1} ms"); sw.Restart(); }
    using var mf = MachOFile.Open(f);
    var sg = mf.Slices.Where(x => x.CodeSignature is not null).Select(x => EmbeddedSignature.Parse(x.CodeSignatureData, f)).ToArray();
    Lap("open+parse");
    _ = System.Security.Cryptography.SHA256.HashData(new byte[4096]);
    Lap("first SHA256");
    var cms = new SignedCms(new ContentInfo(sg[0].CodeDirectory.Bytes.ToArray()), detached: true);
    cms.Decode(sg[0].Signature!.CmsBytes.Span);
    Lap("SignedCms decode");
    cms.SignerInfos[0].CheckSignature(true);
    Lap("CheckSignature");
    using var root = AppleRootCertificate.Load();
    Lap("Apple root load");
    BareChainBuild(cms, root);
    Lap("X509Chain build");
    _ = CodeSignatureVerifier.Verify(sg[0]);
    Lap("CodeSignatureVerifier.Verify");
    _ = CodeSignatureVerifier.Verify(sg[0]);
    Lap("CodeSignatureVerifier.Verify 2");
    _ = KextSignatureVerifier.VerifyMany([f], new KextSignatureVerifierOptions { MaxDegreeOfParallelism = 1 });
    Lap("VerifyMany");
    _ = KextSignatureVerifier.VerifyMany([f], new KextSignatureVerifierOptions { MaxDegreeOfParallelism = 1 });
    Lap("VerifyMany 2");
    return;
}
var total = Stopwatch.StartNew();
_ = KextSignatureVerifier.VerifyMany([files[0]], new KextSignatureVerifierOptions { MaxDegreeOfParallelism = 1 });
Console.WriteLine($"first VerifyMany (1 file, cold): {total.ElapsedMilliseconds} ms");
for (var round = 0; round < 3; round++)
{
    var t = new Dictionary<string, double>();
    void Add(string k, Stopwatch s) => t[k] = t.GetValueOrDefault(k) + s.Elapsed.TotalMilliseconds;
    long bytes = 0;
    foreach (var f in files)
    {
        var s = Stopwatch.StartNew();
        using var file = MachOFile.Open(f);
        Add("  of which MachOFile.Open", s);
        var s0 = Stopwatch.StartNew();
        var sigs = file.Slices.Where(x => x.CodeSignature is not null).Select(x => (x, EmbeddedSignature.Parse(x.CodeSignatureData, f))).ToArray();
        Add("open+parse", s);
        s.Restart();
        var d = new byte[64];
        foreach (var (slice, sig) in sigs)
        {
            var data = slice.Data.Span;
            foreach (var cd in sig.AllCodeDirectories)
            {
                var limit = (long)cd.EffectiveCodeLimit;
                for (long p = 0; p < limit; p += cd.PageSize)
                {
                    var len = (int)Math.Min(cd.PageSize, limit - p);
                    _ = cd.HashType == CodeSigningHashType.Sha1 ? System.Security.Cryptography.SHA1.HashData(data.Slice((int)p, len), d) : System.Security.Cryptography.SHA256.HashData(data.Slice((int)p, len), d);
                    bytes += len;
                }
            }
        }
        Add("page hashing", s);
        s.Restart();
        foreach (var (_, sig) in sigs) { _ = CodeSignatureVerifier.Verify(sig); }
        Add("CMS verify (decode+sig+chain)", s);
        s.Restart();
        foreach (var (_, sig) in sigs)
        {
            var c = new SignedCms(new ContentInfo(sig.CodeDirectory.Bytes.ToArray()), detached: true);
            c.Decode(sig.Signature!.CmsBytes.Span);
            foreach (var cert in c.Certificates) { cert.Dispose(); }
        }
        Add("2nd CMS decode (ChainObjects)", s);
    }
    var s2 = Stopwatch.StartNew();
    var r = KextSignatureVerifier.VerifyMany(files, new KextSignatureVerifierOptions { MaxDegreeOfParallelism = 1 });
    Add("VerifyMany total (dop 1)", s2);
    s2.Restart();
    var r2 = KextSignatureVerifier.VerifyMany(files, new KextSignatureVerifierOptions());
    Add("VerifyMany total (all cores)", s2);
    s2.Restart();
    var json = System.Text.Json.JsonSerializer.Serialize(r);
    Add("JSON (reflection)", s2);
    if (round == 2)
    {
        foreach (var (k, v) in t) { Console.WriteLine($"{k,-34} {v,8:F1} ms"); }
        Console.WriteLine($"page bytes hashed: {bytes / 1e6:F1} MB; statuses: {string.Join(",", r.Select(x => x.Result?.Status.ToString() ?? "err").Distinct())}");
    }
}

// The chain build alone, as CodeSignatureVerifier configures it (pinned root only, no revocation, no downloads).
static void BareChainBuild(SignedCms cms, System.Security.Cryptography.X509Certificates.X509Certificate2 root)
{
    using var ch = new System.Security.Cryptography.X509Certificates.X509Chain();
    ch.ChainPolicy.TrustMode = System.Security.Cryptography.X509Certificates.X509ChainTrustMode.CustomRootTrust;
    ch.ChainPolicy.CustomTrustStore.Add(root);
    ch.ChainPolicy.RevocationMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck;
    ch.ChainPolicy.DisableCertificateDownloads = true;
    ch.ChainPolicy.ExtraStore.AddRange(cms.Certificates);
    ch.Build(cms.SignerInfos[0].Certificate!);
}

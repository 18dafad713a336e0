using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace KextTrust.Kexts.Signing;

/// <summary>What an <see cref="X509Chain"/> build concluded: the elements as facts, the combined status, and the intermediate's Developer ID CA marker.</summary>
internal sealed record ChainVerdict(ChainCertificate[] Chain, X509ChainStatusFlags Status, bool IntermediateIsDeveloperIdCa);

/// <summary>
/// Chain verdicts of one verification run, keyed by EVERY input of the build: the leaf's DER, the DER of each
/// certificate of the CMS set (the extra store, in order), the test root's DER (the pinned Apple root and the
/// policy are constant) and the verification time to the tick. Identical inputs give an identical verdict, so
/// a hit skips only redundant work (Microsoft's runtime-pack files share one leaf, chain and signing time).
/// Also the run's decoded CMS certificates, keyed by their exact encoded bytes: a certificate that several
/// files carry is turned into an <see cref="X509Certificate2"/> once (an OpenSSL decode costs ~0.2 ms) and the
/// object is shared, read-only, by those files' signature checks and chain builds; the cache owns and disposes it.
/// One instance per <see cref="KextSignatureVerifier.VerifyMany"/> call; never static.
/// </summary>
internal sealed class ChainVerdictCache : IDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<ChainVerdict>> _verdicts = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<byte[], Lazy<X509Certificate2>> _certificates = new(EncodedBytesComparer.Instance);
    private readonly Lazy<X509Certificate2> _appleRoot = new(AppleRootCertificate.Load, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>
    /// The pinned Apple Root CA for this run: loaded (and its fingerprint checked) once, not once per signature;
    /// read-only, shared by every chain build and requirement evaluation of the run, disposed with the cache.
    /// </summary>
    public X509Certificate2 AppleRoot => _appleRoot.Value;

    /// <summary>Builds (how many chains were really built) — for tests.</summary>
    public int Builds => _verdicts.Count;

    public ChainVerdict GetOrBuild(X509Certificate2 leaf, IReadOnlyList<X509Certificate2> extra, X509Certificate2? testRoot, DateTimeOffset time, Func<ChainVerdict> build)
    {
        var key = Key(leaf, extra, testRoot, time);
        return _verdicts.GetOrAdd(key, _ => new Lazy<ChainVerdict>(build, LazyThreadSafetyMode.ExecutionAndPublication)).Value;
    }

    /// <summary>Certificates decoded so far (distinct encodings) — for tests.</summary>
    public int CertificatesDecoded => _certificates.Values.Count(l => l.IsValueCreated);

    /// <summary>
    /// The certificate whose encoding is exactly <paramref name="encoded"/>, decoded on first use and shared after
    /// (borrowed: do not dispose). A malformed encoding throws <see cref="CryptographicException"/> every time.
    /// </summary>
    public X509Certificate2 Certificate(ReadOnlyMemory<byte> encoded)
    {
        var key = encoded.ToArray();
        return _certificates.GetOrAdd(key, k => new Lazy<X509Certificate2>(() => X509CertificateLoader.LoadCertificate(k), LazyThreadSafetyMode.ExecutionAndPublication)).Value;
    }

    public void Dispose()
    {
        if (_appleRoot.IsValueCreated)
        {
            _appleRoot.Value.Dispose();
        }
        foreach (var c in _certificates.Values.Where(l => l.IsValueCreated))
        {
            c.Value.Dispose();
        }
    }

    /// <summary>Compares encodings byte for byte (the hash only spreads them over buckets).</summary>
    private sealed class EncodedBytesComparer : IEqualityComparer<byte[]>
    {
        public static readonly EncodedBytesComparer Instance = new();

        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(byte[] obj)
        {
            var h = new HashCode();
            h.AddBytes(obj);
            return h.ToHashCode();
        }
    }

    private static string Key(X509Certificate2 leaf, IReadOnlyList<X509Certificate2> extra, X509Certificate2? testRoot, DateTimeOffset time)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Add(h, leaf.RawDataMemory.Span);
        AddNumber(h, extra.Count);
        foreach (var c in extra)
        {
            Add(h, c.RawDataMemory.Span);
        }
        Add(h, testRoot is null ? [] : testRoot.RawDataMemory.Span);
        AddNumber(h, time.UtcTicks);
        return Convert.ToHexString(h.GetHashAndReset());
    }

    private static void Add(IncrementalHash h, ReadOnlySpan<byte> der)
    {
        AddNumber(h, der.Length);
        h.AppendData(der);
    }

    private static void AddNumber(IncrementalHash h, long value)
    {
        Span<byte> n = stackalloc byte[8];
        BitConverter.TryWriteBytes(n, value);
        h.AppendData(n);
    }
}

using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace KextTrust.Kexts.Signing;

/// <summary>What an <see cref="X509Chain"/> build concluded: the elements as facts, the combined status, and the intermediate's Developer ID CA marker.</summary>
internal sealed record ChainVerdict(ChainCertificate[] Chain, X509ChainStatusFlags Status, bool IntermediateIsDeveloperIdCa);

/// <summary>
/// Chain verdicts of one verification run, keyed by every input of the build: the leaf, each certificate of the CMS
/// set (the extra store, in order) and the test root, each by its exact encoding (the run decodes an encoding into
/// one shared object, so the objects' identities stand for their bytes; the pinned Apple root and the policy are
/// constant), and the verification time as far as a build can see it. With revocation off and no downloads, the
/// time enters a chain build only through the validity check of each candidate certificate (OpenSSL's
/// <c>X509_cmp_time</c> against notBefore and notAfter, which also decides which issuer it prefers), so two times
/// at which every candidate is valid or invalid alike give the same verdict; a time within two seconds of any
/// candidate's notBefore or notAfter is keyed exactly, so the whole-second rounding of either side cannot merge
/// two times that differ. Microsoft's runtime-pack files share one leaf and chain but each has its own CMS
/// signing time (the verification time, as Apple's loader uses it): they share one build.
/// Also the run's decoded CMS certificates, keyed by their exact encoded bytes: a certificate that several
/// files carry is turned into an <see cref="X509Certificate2"/> once (an OpenSSL decode costs ~0.2 ms) and the
/// object is shared, read-only, by those files' signature checks and chain builds; the cache owns and disposes it.
/// One instance per <see cref="KextSignatureVerifier.VerifyMany"/> call; never static.
/// </summary>
internal sealed class ChainVerdictCache : IDisposable
{
    private readonly ConcurrentDictionary<ChainKey, Lazy<ChainVerdict>> _verdicts = new();
    private readonly ConcurrentDictionary<byte[], Lazy<X509Certificate2>> _certificates = new(EncodedBytesComparer.Instance);
    private readonly ConcurrentDictionary<X509Certificate2, string> _fingerprints = new(ReferenceEqualityComparer.Instance);
    private readonly ConcurrentDictionary<X509Certificate2, Lazy<AsymmetricAlgorithm?>> _publicKeys = new(ReferenceEqualityComparer.Instance);
    private int _confirmedSignatures;
    private readonly Lazy<X509Certificate2> _appleRoot = new(AppleRootCertificate.Load, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>
    /// The pinned Apple Root CA for this run: loaded (and its fingerprint checked) once, not once per signature;
    /// read-only, shared by every chain build and requirement evaluation of the run, disposed with the cache.
    /// </summary>
    public X509Certificate2 AppleRoot => _appleRoot.Value;

    /// <summary>Builds (how many chains were really built) — for tests.</summary>
    public int Builds => _verdicts.Count;

    /// <summary>
    /// The verdict for these inputs: built once, shared by every later call with the same certificates (the same
    /// objects, as <see cref="Certificate"/> hands them out) and an equivalent time.
    /// </summary>
    public ChainVerdict GetOrBuild(X509Certificate2 leaf, IReadOnlyList<X509Certificate2> extra, X509Certificate2? testRoot, DateTimeOffset time, Func<ChainVerdict> build)
    {
        var key = new ChainKey(leaf, [.. extra], testRoot, time, AppleRoot);
        return _verdicts.GetOrAdd(key, _ => new Lazy<ChainVerdict>(build, LazyThreadSafetyMode.ExecutionAndPublication)).Value;
    }

    /// <summary>The SHA-256 fingerprint (uppercase hex) of a certificate object, computed once per object and run.</summary>
    public string Sha256Of(X509Certificate2 certificate) => _fingerprints.GetOrAdd(certificate, AppleRootCertificate.Sha256Of);

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

    /// <summary>
    /// The RSA or ECDSA public key of a certificate object, imported once per object and run (null for another key
    /// type or a key OpenSSL will not import). Shared: callers lock it around each use.
    /// </summary>
    public AsymmetricAlgorithm? PublicKeyOf(X509Certificate2 certificate) =>
        _publicKeys.GetOrAdd(certificate, c => new Lazy<AsymmetricAlgorithm?>(() => ImportPublicKey(c), LazyThreadSafetyMode.ExecutionAndPublication)).Value;

    private static AsymmetricAlgorithm? ImportPublicKey(X509Certificate2 certificate)
    {
        try
        {
            return (AsymmetricAlgorithm?)certificate.GetRSAPublicKey() ?? certificate.GetECDsaPublicKey();
        }
        catch (CryptographicException)
        {
            return null;
        }
    }

    /// <summary>Signer-info signatures confirmed with a cached key (<see cref="CmsSignatureCheck"/>) — for tests.</summary>
    public int ConfirmedSignatures => Volatile.Read(ref _confirmedSignatures);

    /// <summary>Counts one signature <see cref="CmsSignatureCheck"/> confirmed.</summary>
    public void CountConfirmedSignature() => Interlocked.Increment(ref _confirmedSignatures);

    public void Dispose()
    {
        foreach (var k in _publicKeys.Values.Where(l => l.IsValueCreated))
        {
            k.Value?.Dispose();
        }
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

    /// <summary>
    /// One chain build's inputs: the certificate objects by identity, and the time as the set of candidates valid at
    /// it (bit i: candidate i of leaf, extra…, test root, Apple root), or exactly when it lies within two seconds of
    /// a candidate's validity bound or there are more than 64 candidates.
    /// </summary>
    private sealed class ChainKey : IEquatable<ChainKey>
    {
        private static readonly TimeSpan Margin = TimeSpan.FromSeconds(2);
        private readonly X509Certificate2 _leaf;
        private readonly X509Certificate2[] _extra;
        private readonly X509Certificate2? _testRoot;
        private readonly ulong _valid;
        private readonly long? _exactTicks;

        public ChainKey(X509Certificate2 leaf, X509Certificate2[] extra, X509Certificate2? testRoot, DateTimeOffset time, X509Certificate2 appleRoot)
        {
            _leaf = leaf;
            _extra = extra;
            _testRoot = testRoot;
            var candidates = extra.Prepend(leaf).Append(testRoot).Append(appleRoot).OfType<X509Certificate2>().ToArray();
            var t = time.UtcDateTime;
            var exact = candidates.Length > 64;
            for (var i = 0; i < candidates.Length && !exact; i++)
            {
                var notBefore = candidates[i].NotBefore.ToUniversalTime();
                var notAfter = candidates[i].NotAfter.ToUniversalTime();
                if ((t - notBefore).Duration() <= Margin || (t - notAfter).Duration() <= Margin)
                {
                    exact = true;
                }
                else if (notBefore < t && t < notAfter)
                {
                    _valid |= 1UL << i;
                }
            }
            _exactTicks = exact ? time.UtcTicks : null;
        }

        public bool Equals(ChainKey? other) =>
            other is not null
            && ReferenceEquals(_leaf, other._leaf)
            && ReferenceEquals(_testRoot, other._testRoot)
            && _valid == other._valid
            && _exactTicks == other._exactTicks
            && _extra.Length == other._extra.Length
            && _extra.AsSpan().SequenceEqual(other._extra, ReferenceEqualityComparer.Instance);

        public override bool Equals(object? obj) => Equals(obj as ChainKey);

        public override int GetHashCode()
        {
            var h = new HashCode();
            h.Add(_leaf, ReferenceEqualityComparer.Instance);
            h.Add(_testRoot, ReferenceEqualityComparer.Instance);
            h.Add(_valid);
            h.Add(_exactTicks);
            foreach (var c in _extra)
            {
                h.Add(c, ReferenceEqualityComparer.Instance);
            }
            return h.ToHashCode();
        }
    }
}

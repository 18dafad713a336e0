using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace KextTrust.Kexts.Signing;

/// <summary>
/// A private PKI shaped like Apple's, for tests and <c>kextrust pki init</c>: "KextTrust Test Root CA",
/// a Developer-ID-style intermediate carrying <c>1.2.840.113635.100.6.2.6</c>, and a leaf
/// "Developer ID Application: NAME (TEAMID)" with OU = team id, <c>…6.1.13</c> and (optionally) the kext
/// signing authority <c>…6.1.18</c>. ECDSA P-256 keys.
/// </summary>
public sealed class TestPki : IDisposable
{
    /// <summary>Root certificate subject common name.</summary>
    internal const string RootName = "KextTrust Test Root CA";
    /// <summary>Intermediate certificate subject common name.</summary>
    internal const string IntermediateName = "Developer ID Certification Authority";
    /// <summary>Password of the leaf PKCS#12 written by <see cref="WriteTo"/>.</summary>
    public const string DefaultPkcs12Password = "kextrust";

    private TestPki(X509Certificate2 root, X509Certificate2 intermediate, X509Certificate2 leaf)
    {
        Root = root;
        Intermediate = intermediate;
        Leaf = leaf;
    }

    /// <summary>The root CA (with private key).</summary>
    public X509Certificate2 Root { get; }
    /// <summary>The intermediate CA (with private key).</summary>
    public X509Certificate2 Intermediate { get; }
    /// <summary>The signing leaf (with private key).</summary>
    public X509Certificate2 Leaf { get; }

    /// <summary>Options for <see cref="Create"/>.</summary>
    public sealed record Options(string DeveloperName, string TeamId)
    {
        /// <summary>Include the kext-signing extension <c>…6.1.18</c> in the leaf (false for a negative fixture).</summary>
        public bool KextSigning { get; init; } = true;
        /// <summary>Start of validity; default one day before now.</summary>
        public DateTimeOffset? NotBefore { get; init; }
        /// <summary>Validity length of every certificate; default ten years.</summary>
        public TimeSpan Validity { get; init; } = TimeSpan.FromDays(3650);
    }

    /// <summary>Creates a fresh PKI.</summary>
    public static TestPki Create(Options options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(options.TeamId) || string.IsNullOrWhiteSpace(options.DeveloperName))
        {
            throw new ArgumentException("developer name and team id are required", nameof(options));
        }
        var notBefore = options.NotBefore ?? DateTimeOffset.UtcNow.AddDays(-1);
        var notAfter = notBefore + options.Validity;

        using var rootKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var rootName = Name(b => { b.AddCountryOrRegion("US"); b.AddOrganizationName("KextTrust"); b.AddOrganizationalUnitName("KextTrust Test Certification Authority"); b.AddCommonName(RootName); });
        var rootReq = new CertificateRequest(rootName, rootKey, HashAlgorithmName.SHA256);
        rootReq.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        rootReq.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        var rootSki = new X509SubjectKeyIdentifierExtension(rootReq.PublicKey, false);
        rootReq.CertificateExtensions.Add(rootSki);
        var root = rootReq.CreateSelfSigned(notBefore, notAfter);

        using var interKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var interName = Name(b => { b.AddCountryOrRegion("US"); b.AddOrganizationName("KextTrust"); b.AddOrganizationalUnitName("KextTrust Test Certification Authority"); b.AddCommonName(IntermediateName); });
        var interReq = new CertificateRequest(interName, interKey, HashAlgorithmName.SHA256);
        interReq.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        interReq.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        var interSki = new X509SubjectKeyIdentifierExtension(interReq.PublicKey, false);
        interReq.CertificateExtensions.Add(interSki);
        interReq.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromSubjectKeyIdentifier(rootSki));
        interReq.CertificateExtensions.Add(new X509Extension(AppleOids.DeveloperIdCa, Null(), false));
        using var interPublic = interReq.Create(root, notBefore, notAfter, Serial());
        var intermediate = interPublic.CopyWithPrivateKey(interKey);

        using var leafKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var leafName = Name(b =>
        {
            b.AddCountryOrRegion("US");
            b.AddOrganizationName(options.DeveloperName);
            b.AddOrganizationalUnitName(options.TeamId);
            b.AddCommonName($"Developer ID Application: {options.DeveloperName} ({options.TeamId})");
            b.Add(AppleOids.UserId, options.TeamId, UniversalTagNumber.UTF8String);
        });
        var leafReq = new CertificateRequest(leafName, leafKey, HashAlgorithmName.SHA256);
        leafReq.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        leafReq.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        leafReq.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(AppleOids.CodeSigningEku)], true));
        leafReq.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(leafReq.PublicKey, false));
        leafReq.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromSubjectKeyIdentifier(interSki));
        leafReq.CertificateExtensions.Add(new X509Extension(AppleOids.DeveloperIdApplication, Null(), true));
        if (options.KextSigning)
        {
            leafReq.CertificateExtensions.Add(new X509Extension(AppleOids.DeveloperIdKernel, Null(), true));
        }
        using var leafPublic = leafReq.Create(intermediate, notBefore, notAfter, Serial());
        var leaf = leafPublic.CopyWithPrivateKey(leafKey);
        return new TestPki(root, intermediate, leaf);
    }

    private static X500DistinguishedName Name(Action<X500DistinguishedNameBuilder> build)
    {
        var b = new X500DistinguishedNameBuilder();
        build(b);
        return b.Build();
    }

    private static byte[] Null() => [0x05, 0x00];

    private static byte[] Serial()
    {
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] = (byte)((serial[0] & 0x7f) | 0x01); // positive, no leading zero
        return serial;
    }

    /// <summary>File names written by <see cref="WriteTo"/>.</summary>
    public static class Files
    {
        /// <summary>Root certificate PEM.</summary>
        public const string RootCert = "root.pem";
        /// <summary>Root private key PEM (PKCS#8).</summary>
        public const string RootKey = "root.key.pem";
        /// <summary>Intermediate certificate PEM.</summary>
        public const string IntermediateCert = "intermediate.pem";
        /// <summary>Intermediate private key PEM.</summary>
        public const string IntermediateKey = "intermediate.key.pem";
        /// <summary>Leaf certificate PEM.</summary>
        public const string LeafCert = "leaf.pem";
        /// <summary>Leaf private key PEM.</summary>
        public const string LeafKey = "leaf.key.pem";
        /// <summary>PKCS#12 of the leaf (with key), intermediate and root.</summary>
        public const string LeafPkcs12 = "leaf.p12";
    }

    /// <summary>Writes every certificate and key as PEM, plus a PKCS#12 of the leaf and its chain.</summary>
    public void WriteTo(string directory, string pkcs12Password = DefaultPkcs12Password)
    {
        Directory.CreateDirectory(directory);
        foreach (var (cert, certFile, keyFile) in new[] { (Root, Files.RootCert, Files.RootKey), (Intermediate, Files.IntermediateCert, Files.IntermediateKey), (Leaf, Files.LeafCert, Files.LeafKey) })
        {
            File.WriteAllText(Path.Combine(directory, certFile), cert.ExportCertificatePem() + "\n");
            using var key = cert.GetECDsaPrivateKey() ?? throw new InvalidOperationException("certificate lacks its private key");
            File.WriteAllText(Path.Combine(directory, keyFile), key.ExportPkcs8PrivateKeyPem() + "\n");
        }
        var bundle = new X509Certificate2Collection { Leaf, X509CertificateLoader.LoadCertificate(Intermediate.RawData), X509CertificateLoader.LoadCertificate(Root.RawData) };
        File.WriteAllBytes(Path.Combine(directory, Files.LeafPkcs12), bundle.Export(X509ContentType.Pkcs12, pkcs12Password)!);
    }

    /// <summary>Loads a PKI written by <see cref="WriteTo"/> (from the PEM files).</summary>
    public static TestPki Load(string directory)
    {
        X509Certificate2 Read(string cert, string key) =>
            X509Certificate2.CreateFromPemFile(Path.Combine(directory, cert), Path.Combine(directory, key));
        return new TestPki(Read(Files.RootCert, Files.RootKey), Read(Files.IntermediateCert, Files.IntermediateKey), Read(Files.LeafCert, Files.LeafKey));
    }

    /// <summary>Loads the leaf (with key) and its chain from the PKCS#12 written by <see cref="WriteTo"/>.</summary>
    internal static X509Certificate2Collection LoadPkcs12(string directory, string pkcs12Password = DefaultPkcs12Password) =>
        X509CertificateLoader.LoadPkcs12CollectionFromFile(Path.Combine(directory, Files.LeafPkcs12), pkcs12Password);

    /// <inheritdoc />
    public void Dispose()
    {
        Root.Dispose();
        Intermediate.Dispose();
        Leaf.Dispose();
    }
}

using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace KextTrust.Kexts.Signing;

/// <summary>Apple certificate OIDs used by code-signing policy.</summary>
internal static class AppleOids
{
    /// <summary>Developer ID Application leaf marker.</summary>
    public const string DeveloperIdApplication = "1.2.840.113635.100.6.1.13";
    /// <summary>Developer ID Installer leaf marker.</summary>
    public const string DeveloperIdInstaller = "1.2.840.113635.100.6.1.14";
    /// <summary>Developer ID Kernel (kext signing authority) leaf marker.</summary>
    public const string DeveloperIdKernel = "1.2.840.113635.100.6.1.18";
    /// <summary>Developer ID date.</summary>
    public const string DeveloperIdDate = "1.2.840.113635.100.6.1.33";
    /// <summary>Developer ID Certification Authority intermediate marker.</summary>
    public const string DeveloperIdCa = "1.2.840.113635.100.6.2.6";
    /// <summary>The CMS signed attribute holding the cdhashes plist.</summary>
    public const string CdHashesPlistAttribute = "1.2.840.113635.100.9.1";
    /// <summary>The CMS signed attribute holding hash-agility v2 digests.</summary>
    public const string CdHashesV2Attribute = "1.2.840.113635.100.9.2";
    /// <summary>PKCS#9 signing time.</summary>
    public const string SigningTime = "1.2.840.113549.1.9.5";
    /// <summary>Code Signing extended key usage.</summary>
    public const string CodeSigningEku = "1.3.6.1.5.5.7.3.3";
    /// <summary>LDAP UID (Apple puts the team id there too).</summary>
    public const string UserId = "0.9.2342.19200300.100.1.1";
}

/// <summary>
/// The pinned Apple Root CA, shipped as an embedded resource (extracted from the CMS certificate set of
/// Microsoft's Developer-ID-signed runtime-pack binaries) and re-checked against its SHA-256 on every load.
/// </summary>
internal static class AppleRootCertificate
{
    /// <summary>SHA-256 of the Apple Root CA DER (pipeline facts §8).</summary>
    public const string Sha256Fingerprint = "B0B1730ECBC7FF4505142C49F1295E6EDA6BCAED7E2C68C5BE91B5A11001F024";

    /// <summary>SHA-256 of the Developer ID Certification Authority (2012–2027).</summary>
    public const string DeveloperIdCaSha256Fingerprint = "7AFC9D01A62F03A2DE9637936D4AFE68090D2DE18D03F29C88CFB0B1BA63587F";

    /// <summary>SHA-256 of the Developer ID Certification Authority G2 (2021–2031).</summary>
    public const string DeveloperIdCaG2Sha256Fingerprint = "F16CD3C54C7F83CEA4BF1A3E6A0819C8AAA8E4A1528FD144715F350643D2DF3A";

    private const string ResourceName = "KextTrust.Kexts.Signing.AppleRootCA.cer";

    /// <summary>The embedded DER, after its fingerprint has been verified.</summary>
    public static byte[] LoadDer() => PinnedCertificateResource.Load(ResourceName, Sha256Fingerprint, "Apple Root CA");

    /// <summary>A fresh certificate object of the pinned Apple Root CA (caller disposes).</summary>
    public static X509Certificate2 Load() => X509CertificateLoader.LoadCertificate(LoadDer());

    /// <summary>Upper-case hex SHA-256 of a certificate's DER.</summary>
    public static string Sha256Of(X509Certificate2 certificate) => Convert.ToHexString(SHA256.HashData(certificate.RawDataMemory.Span));
}

/// <summary>A root certificate shipped as an embedded resource of this assembly, checked against its pinned SHA-256 on every load.</summary>
internal static class PinnedCertificateResource
{
    /// <summary>The resource's DER; <see cref="CryptographicException"/> unless its SHA-256 is <paramref name="sha256Fingerprint"/>.</summary>
    public static byte[] Load(string resourceName, string sha256Fingerprint, string what)
    {
        using var stream = typeof(PinnedCertificateResource).Assembly.GetManifestResourceStream(resourceName)
            ?? throw new InvalidOperationException($"embedded resource {resourceName} is missing");
        using var ms = new MemoryStream();
        stream.CopyTo(ms);
        var der = ms.ToArray();
        var actual = Convert.ToHexString(SHA256.HashData(der));
        if (!string.Equals(actual, sha256Fingerprint, StringComparison.Ordinal))
        {
            throw new CryptographicException($"embedded {what} fingerprint {actual} does not equal the pinned {sha256Fingerprint}");
        }
        return der;
    }
}

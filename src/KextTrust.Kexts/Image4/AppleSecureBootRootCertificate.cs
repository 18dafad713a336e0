using System.Security.Cryptography.X509Certificates;
using KextTrust.Kexts.Signing;

namespace KextTrust.Kexts.Image4;

/// <summary>
/// The pinned Apple Secure Boot Root CA - G2 (self-signed RSA-4096, 2014-12-19 to 2034-12-14), the root that issues the
/// TSS manifest-signing certificates of newer devices' IM4Ms; shipped as an embedded resource and re-checked against its
/// SHA-256 on every load. Where its bytes come from: <c>Image4/PROVENANCE.md</c>.
/// </summary>
internal static class AppleSecureBootRootCertificate
{
    /// <summary>SHA-256 of the DER.</summary>
    public const string Sha256Fingerprint = "6428665D0B97C1ECB876D2D5A93257D467FFC188DF66305DFD21F488E79C94EC";

    private const string ResourceName = "KextTrust.Kexts.Image4.AppleSecureBootRootCA-G2.cer";

    /// <summary>The embedded DER, after its fingerprint has been verified.</summary>
    public static byte[] LoadDer() => PinnedCertificateResource.Load(ResourceName, Sha256Fingerprint, "Apple Secure Boot Root CA - G2");

    /// <summary>A fresh certificate object (caller disposes).</summary>
    public static X509Certificate2 Load() => X509CertificateLoader.LoadCertificate(LoadDer());
}

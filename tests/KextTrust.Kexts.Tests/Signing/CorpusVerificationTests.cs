using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Text.RegularExpressions;
using KextTrust.Formats.CodeSigning;
using KextTrust.Kexts.Signing;
using KextTrust.TestSupport;

namespace KextTrust.Kexts.Tests.Signing;

public class CorpusVerificationTests
{
    private const string MicrosoftTeam = "UBF8T346G9";

    public static IEnumerable<object[]> Files() => SignatureLocator.Files();

    [Fact]
    public void Pinned_root_matches_the_spec_fingerprint_and_the_corpus_certificate_set()
    {
        using var root = AppleRootCertificate.Load();
        Assert.Equal("B0:B1:73:0E:CB:C7:FF:45:05:14:2C:49:F1:29:5E:6E:DA:6B:CA:ED:7E:2C:68:C5:BE:91:B5:A1:10:01:F0:24".Replace(":", ""), AppleRootCertificate.Sha256Of(root));
        Assert.Equal("CN=Apple Root CA, OU=Apple Certification Authority, O=Apple Inc., C=US", root.Subject);
        // The same certificate travels in the CMS of Microsoft's files.
        var path = Corpus.RuntimePackMachOFiles()[0];
        var sig = EmbeddedSignature.Parse(SignatureLocator.Locate(path).Signature, path);
        var cms = new SignedCms();
        cms.Decode(sig.Signature!.CmsBytes.Span);
        Assert.Contains(cms.Certificates.Cast<System.Security.Cryptography.X509Certificates.X509Certificate2>(), c => c.RawData.AsSpan().SequenceEqual(root.RawData));
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Microsoft_signature_verifies_against_the_pinned_Apple_root(string path)
    {
        var sig = EmbeddedSignature.Parse(SignatureLocator.Locate(path).Signature, path);
        var result = CodeSignatureVerifier.Verify(sig);

        Assert.True(result.IsValid, string.Join("; ", result.Problems));
        Assert.Equal(TrustAnchorKind.AppleRoot, result.Anchor);
        Assert.True(result.IsAppleAnchored);
        Assert.Equal(VerificationTimeSource.CmsSigningTime, result.TimeSource);
        Assert.Equal(CdHashAttributeStatus.Agrees, result.CdHashesPlist);
        Assert.Equal(CdHashAttributeStatus.Agrees, result.CdHashesV2);
        Assert.Equal(3, result.Chain.Count);
        Assert.Contains("CN=Developer ID Application: Microsoft Corporation (UBF8T346G9)", result.Chain[0].Subject);
        Assert.Equal(AppleRootCertificate.DeveloperIdCaSha256Fingerprint, result.Chain[1].Sha256);
        Assert.Equal(AppleRootCertificate.Sha256Fingerprint, result.Chain[2].Sha256);

        var signer = result.Signer!;
        Assert.Equal(MicrosoftTeam, signer.TeamId);
        Assert.Equal(sig.CodeDirectory.TeamId, signer.TeamId);
        Assert.Equal("Developer ID Application: Microsoft Corporation (UBF8T346G9)", signer.CommonName);
        Assert.True(signer.IsDeveloperIdApplication);
        Assert.True(signer.IntermediateIsDeveloperIdCa);
        // Microsoft's Developer ID leaf DOES carry the kext-signing extension 1.2.840.113635.100.6.1.18 (critical);
        // checked against openssl's independent reading of the same certificate below.
        Assert.True(signer.HasKextSigningAuthority);
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Cdhash_agrees_with_openssl_reading_of_the_CMS_attributes(string path)
    {
        var sig = EmbeddedSignature.Parse(SignatureLocator.Locate(path).Signature, path);
        using var tmp = new TempDir();
        var der = tmp.Combine("cms.der");
        File.WriteAllBytes(der, sig.Signature!.CmsBytes.ToArray());
        var printed = ExternalTool.RunChecked(ExternalTool.OpenSsl, "cms", "-cmsout", "-inform", "der", "-in", der, "-print");
        // .9.2: the full SHA-256 of the CodeDirectory, hex-dumped by openssl.
        var v2 = Regex.Match(printed, @"1\.2\.840\.113635\.100\.9\.2\)[\s\S]*?\[HEX DUMP\]:([0-9A-F]+)");
        Assert.True(v2.Success, "openssl shows no .9.2 attribute");
        Assert.Equal(Convert.ToHexString(SHA256.HashData(sig.CodeDirectory.Bytes.Span)), v2.Groups[1].Value);
        Assert.Equal(v2.Groups[1].Value, Convert.ToHexString(sig.CodeDirectory.ComputeFullHash()));
        // .9.1: the plist's base64 cdhash is the first 20 bytes; decode openssl's hex dump of the OCTET STRING.
        var start = printed.IndexOf("1.2.840.113635.100.9.1)", StringComparison.Ordinal);
        Assert.True(start >= 0, "openssl shows no .9.1 attribute");
        var dump = new List<byte>();
        foreach (var line in printed[start..].Split('\n').Skip(1))
        {
            var m = Regex.Match(line, @"^\s+[0-9a-f]{4} - ([0-9a-f]{2}(?:[ -][0-9a-f]{2})*)");
            if (!m.Success)
            {
                if (dump.Count > 0)
                {
                    break;
                }
                continue;
            }
            dump.AddRange(Convert.FromHexString(m.Groups[1].Value.Replace(" ", "").Replace("-", "")));
        }
        var plistText = System.Text.Encoding.UTF8.GetString(dump.ToArray());
        Assert.Contains("<key>cdhashes</key>", plistText);
        Assert.Contains(Convert.ToBase64String(sig.CodeDirectory.ComputeCdHash()), plistText);

        // Kext-signing extension: openssl sees the same thing our SignerFacts reports.
        var certs = ExternalTool.RunChecked(ExternalTool.OpenSsl, "pkcs7", "-inform", "der", "-in", der, "-print_certs", "-text", "-noout");
        var result = CodeSignatureVerifier.Verify(sig);
        Assert.Equal(certs.Contains("1.2.840.113635.100.6.1.18: critical", StringComparison.Ordinal), result.Signer!.HasKextSigningAuthority);
    }

    private static byte[] LibHostFxrSignature() =>
        SignatureLocator.Locate(Corpus.RuntimePackMachOFiles().First(f => f.EndsWith("libhostfxr.dylib", StringComparison.Ordinal))).Signature.ToArray();

    [Fact]
    public void Flipped_byte_in_the_CMS_signature_value_fails()
    {
        var bytes = LibHostFxrSignature();
        var sig = EmbeddedSignature.Parse(bytes, "x");
        var cms = new SignedCms();
        cms.Decode(sig.Signature!.CmsBytes.Span);
        var at = IndexOf(bytes, cms.SignerInfos[0].GetSignature());
        bytes[at + 17] ^= 0x01;
        var result = CodeSignatureVerifier.Verify(EmbeddedSignature.Parse(bytes, "tampered"));
        Assert.False(result.IsValid);
        Assert.True(result.Has(SignatureProblemCode.CmsSignatureInvalid), string.Join("; ", result.Problems));
    }

    [Fact]
    public void Every_byte_flip_in_the_authenticated_parts_of_the_CMS_is_caught()
    {
        var bytes = LibHostFxrSignature();
        var sig = EmbeddedSignature.Parse(bytes, "x");
        var cms = new SignedCms();
        cms.Decode(sig.Signature!.CmsBytes.Span);
        var signer = cms.SignerInfos[0];
        // Authenticated: the leaf and intermediate certificates, every signed attribute value, the signature value.
        // (Not authenticated by CMS itself, and so not asserted here: the outer digestAlgorithms set, the spare copy
        // of the Apple Root CA in the bag — the pinned copy is used — and the unsigned timestamp token.)
        var regions = new List<byte[]> { signer.Certificate!.RawData, signer.GetSignature() };
        regions.Add(cms.Certificates.Cast<System.Security.Cryptography.X509Certificates.X509Certificate2>()
            .Single(c => c.Subject.Contains("Developer ID Certification Authority", StringComparison.Ordinal)).RawData);
        regions.AddRange(signer.SignedAttributes.Cast<System.Security.Cryptography.CryptographicAttributeObject>()
            .SelectMany(a => a.Values.Cast<System.Security.Cryptography.AsnEncodedData>()).Select(v => v.RawData));
        var checkedFlips = 0;
        // The SignerInfo follows the certificate bag: search there, so that e.g. the id-data OID of the
        // content-type attribute is not confused with the (unsigned) eContentType at the start of SignedData.
        var signerInfoStart = new[] { regions[0], regions[2] }.Max(r => IndexOf(bytes, r) + r.Length);
        foreach (var region in regions)
        {
            var at = regions.IndexOf(region) < 3 ? IndexOf(bytes, region) : signerInfoStart + IndexOf(bytes[signerInfoStart..], region);
            for (var i = 0; i < region.Length; i += Math.Max(1, region.Length / 40))
            {
                var copy = (byte[])bytes.Clone();
                copy[at + i] ^= 0x20;
                var result = CodeSignatureVerifier.Verify(EmbeddedSignature.Parse(copy, "tampered"));
                Assert.False(result.IsValid, $"flip at SuperBlob byte {at + i} (region {regions.IndexOf(region)} of {regions.Count}, byte {i} of {region.Length}) went unnoticed");
                checkedFlips++;
            }
        }
        Assert.True(checkedFlips > 150);
    }

    [Fact]
    public void Byte_flips_anywhere_in_the_CMS_give_a_result_never_an_exception()
    {
        var bytes = LibHostFxrSignature();
        var sig = EmbeddedSignature.Parse(bytes, "x");
        var offset = IndexOf(bytes, sig.Signature!.CmsBytes.ToArray());
        for (var i = 0; i < sig.Signature.CmsBytes.Length; i += 11)
        {
            var copy = (byte[])bytes.Clone();
            copy[offset + i] ^= 0x5a;
            var result = CodeSignatureVerifier.Verify(EmbeddedSignature.Parse(copy, "tampered"));
            Assert.NotNull(result);
            Assert.Equal(result.Problems.Count == 0, result.IsValid);
        }
    }

    [Fact]
    public void Flipped_byte_in_the_code_directory_is_a_digest_and_cdhash_mismatch()
    {
        var bytes = LibHostFxrSignature();
        var sig = EmbeddedSignature.Parse(bytes, "x");
        var cdOffset = IndexOf(bytes, sig.CodeDirectory.Bytes.ToArray());
        bytes[cdOffset + (int)sig.CodeDirectory.HashOffset + 5] ^= 0xff; // a page hash
        var result = CodeSignatureVerifier.Verify(EmbeddedSignature.Parse(bytes, "tampered"));
        Assert.True(result.Has(SignatureProblemCode.ContentDigestMismatch));
        Assert.True(result.Has(SignatureProblemCode.CdHashesMismatch));
        Assert.True(result.Has(SignatureProblemCode.CdHashesV2Mismatch));
        Assert.Equal(CdHashAttributeStatus.Mismatch, result.CdHashesPlist);
    }

    [Fact]
    public void Truncated_super_blob_is_a_format_exception()
    {
        var bytes = LibHostFxrSignature();
        Assert.Throws<CodeSignatureFormatException>(() => EmbeddedSignature.Parse(bytes.AsMemory(0, 1000), "truncated"));
    }

    [Fact]
    public void Garbage_CMS_is_reported_as_malformed()
    {
        var bytes = LibHostFxrSignature();
        var sig = EmbeddedSignature.Parse(bytes, "x");
        var offset = IndexOf(bytes, sig.Signature!.CmsBytes.ToArray());
        bytes[offset] = 0x04; // no longer a SEQUENCE
        var result = CodeSignatureVerifier.Verify(EmbeddedSignature.Parse(bytes, "garbage"));
        Assert.Equal(SignatureProblemCode.CmsMalformed, Assert.Single(result.Problems).Code);
        Assert.Null(result.Signer);
    }

    internal static int IndexOf(byte[] haystack, byte[] needle)
    {
        var i = haystack.AsSpan().IndexOf(needle);
        Assert.True(i >= 0);
        return i;
    }
}

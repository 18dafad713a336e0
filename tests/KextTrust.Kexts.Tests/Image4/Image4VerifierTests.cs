using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using KextTrust.Formats.Image4;
using KextTrust.Kexts.Image4;
using KextTrust.TestSupport;

namespace KextTrust.Kexts.Tests.Image4;

/// <summary>Real IM4Ms signed by Apple's TSS verify to the pinned roots; any change to the signed body is caught.</summary>
public sealed class Image4VerifierTests
{
    private static byte[] Read(string name) => File.ReadAllBytes(Corpus.Image4File(name));

    [Fact]
    public void A_T8015_manifest_verifies_to_the_Apple_Secure_Boot_Root_CA_G2_with_SHA384()
    {
        var v = Image4Verifier.Verify(Im4Manifest.FromBytes(Read("pyimg4-IM4M")));
        Assert.True(v.Valid, string.Join("; ", v.Problems));
        Assert.Equal(Image4TrustAnchor.AppleSecureBootRootCaG2, v.Anchor);
        Assert.Equal("RSA-4096 PKCS#1 v1.5 SHA384", v.SignatureAlgorithm);
        Assert.Equal(2, v.Chain.Count);
        Assert.Contains("CN=T8015-TssLive-ManifestKey-RevA-DataCenter", v.Chain[0].Subject);
        Assert.Contains("CN=Apple Secure Boot Root CA - G2", v.Chain[1].Subject);
        Assert.Equal(AppleSecureBootRootCertificate.Sha256Fingerprint, v.Chain[^1].Sha256);
    }

    [Fact]
    public void An_S5L8960_manifest_verifies_through_the_Secure_Boot_CA_to_the_Apple_Root_CA_with_SHA1_though_expired()
    {
        var v = Image4Verifier.Verify(Im4Manifest.FromBytes(Read("img4helper-apticket.im4m")));
        Assert.True(v.Valid, string.Join("; ", v.Problems));
        Assert.Equal(Image4TrustAnchor.AppleRootCa, v.Anchor);
        Assert.Equal("RSA-2048 PKCS#1 v1.5 SHA1", v.SignatureAlgorithm);
        Assert.Equal(3, v.Chain.Count);
        Assert.Contains("Apple Secure Boot Certification Authority", v.Chain[1].Subject);
        // Expired in 2022 (openssl x509 -dates): reported, not enforced (the boot ROM has no clock).
        Assert.Equal(new DateTimeOffset(2022, 12, 15, 1, 59, 29, TimeSpan.Zero), v.Chain[0].NotAfter);
    }

    [Fact]
    public void The_constraints_in_Apples_leaf_are_read_as_openssl_asn1parse_strparse_lists_them()
    {
        var v = Image4Verifier.Verify(Im4Manifest.FromBytes(Read("pyimg4-IM4M")));
        // openssl asn1parse -inform DER -in leaf.der -strparse 906 (the extension's OCTET STRING): [0] NULL = any value.
        Assert.Equal(
            ["MANP BNCH *", "MANP BORD *", "MANP CEPO 1", "MANP CHIP 8015", "MANP CPRO *", "MANP CSEC *", "MANP ECID *",
             "MANP SDOM 1", "MANP snon *", "OBJP DGST *", "OBJP EPRO *", "OBJP ESEC *"],
            v.Constraints.Select(c => $"{c.Group} {c.FourCC} {(c.RequiredValue is Im4Integer i ? i.Value.ToString("x") : c.RequiredValue?.ToString() ?? "*")}"));
    }

    [Theory]
    [InlineData("pyimg4-IM4M")]
    [InlineData("img4helper-apticket.im4m")]
    public void Every_byte_flip_in_the_signed_body_that_still_decodes_is_a_SignatureInvalid(string name)
    {
        var der = Read(name);
        var manifest = Im4Manifest.FromBytes(der);
        var bodyStart = der.AsSpan().IndexOf(manifest.BodyBytes.Span);
        var random = new Random(14);
        var checkedFlips = 0;
        for (var n = 0; n < 200; n++)
        {
            var copy = (byte[])der.Clone();
            var at = bodyStart + random.Next(manifest.BodyBytes.Length);
            copy[at] ^= (byte)(1 << random.Next(8));
            Im4Manifest tampered;
            try
            {
                tampered = Im4Manifest.FromBytes(copy);
            }
            catch (Image4FormatException)
            {
                continue;
            }
            var v = Image4Verifier.Verify(tampered);
            Assert.False(v.Valid);
            Assert.Contains(v.Problems, p => p.Code == Image4ProblemCode.SignatureInvalid);
            checkedFlips++;
        }
        Assert.True(checkedFlips > 20, $"only {checkedFlips} flips decoded");
    }

    [Fact]
    public void A_flipped_signature_byte_and_a_missing_root_are_caught()
    {
        var der = Read("pyimg4-IM4M");
        var manifest = Im4Manifest.FromBytes(der);
        var signature = manifest.Signature.ToArray();
        signature[100] ^= 1;
        var resigned = Im4Manifest.Create(manifest.Body, signature, manifest.CertificateChain);
        Assert.Equal(Image4ProblemCode.SignatureInvalid, Assert.Single(Image4Verifier.Verify(resigned).Problems).Code);

        // The same body signed by a key of our own, with a self-signed certificate: signature fine, chain not Apple's.
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        using var cert = new CertificateRequest("CN=Not Apple", key, HashAlgorithmName.SHA384)
            .CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var ours = Im4Manifest.Create(manifest.Body,
            key.SignData(manifest.BodyBytes.Span, HashAlgorithmName.SHA384, DSASignatureFormat.Rfc3279DerSequence), [cert.RawData]);
        var v = Image4Verifier.Verify(ours);
        Assert.Equal(Image4ProblemCode.ChainUntrusted, Assert.Single(v.Problems).Code);
        Assert.Equal(Image4TrustAnchor.None, v.Anchor);
        var given = Image4Verifier.Verify(ours, cert);
        Assert.True(given.Valid, string.Join("; ", given.Problems));
        Assert.Equal(Image4TrustAnchor.GivenRoot, given.Anchor);
    }

    [Fact]
    public void A_property_outside_the_certificates_constraints_is_a_ConstraintViolated()
    {
        // A certificate of our own carrying Apple's constraint extension: CHIP must be 0x8103 (the manifest says 0x8015).
        var constraint = new AsnWriter(AsnEncodingRules.DER);
        constraint.PushSetOf();
        constraint.PushSequence(FourCC.ToTag("MANP"));
        constraint.PushSequence();
        constraint.WriteCharacterString(UniversalTagNumber.IA5String, "MANP");
        constraint.PushSetOf();
        constraint.PushSequence(FourCC.ToTag("CHIP"));
        constraint.PushSequence();
        constraint.WriteCharacterString(UniversalTagNumber.IA5String, "CHIP");
        constraint.WriteInteger(0x8103);
        constraint.PopSequence();
        constraint.PopSequence(FourCC.ToTag("CHIP"));
        constraint.PopSetOf();
        constraint.PopSequence();
        constraint.PopSequence(FourCC.ToTag("MANP"));
        constraint.PopSetOf();
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        var request = new CertificateRequest("CN=Constrained", key, HashAlgorithmName.SHA384);
        request.CertificateExtensions.Add(new X509Extension(Im4CertificateConstraints.Oid, constraint.Encode(), critical: true));
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var body = Im4Manifest.FromBytes(Read("pyimg4-IM4M")).Body;
        var manifest = Im4Manifest.Create(body, key.SignData(body.Encode(), HashAlgorithmName.SHA384, DSASignatureFormat.Rfc3279DerSequence), [cert.RawData]);
        var v = Image4Verifier.Verify(manifest, cert);
        var problem = Assert.Single(v.Problems);
        Assert.Equal(Image4ProblemCode.ConstraintViolated, problem.Code);
        Assert.Contains("CHIP", problem.Detail);
    }

    [Fact]
    public void An_IMG4_whose_payload_the_manifest_does_not_list_is_refused_but_its_manifest_still_verifies()
    {
        var img4 = Img4.FromBytes(Read("pyimg4-IMG4"));
        var v = Image4Verifier.Verify(img4);
        Assert.Equal(Image4ProblemCode.PayloadNotInManifest, Assert.Single(v.Problems).Code);
        Assert.Equal(Image4TrustAnchor.AppleSecureBootRootCaG2, v.Anchor);
    }

    [Fact]
    public void A_payload_listed_with_a_different_digest_is_a_DigestMismatch()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        using var cert = new CertificateRequest("CN=Signer", key, HashAlgorithmName.SHA384)
            .CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var payload = new Im4Payload("krnl", "kernel", [1, 2, 3]);
        Img4 Signed(byte[] digest)
        {
            var body = new Im4ManifestBody(new Im4PropertySet(new Im4Property("ECID", new Im4Integer(1))),
                [new Im4ObjectProperties("krnl", new Im4PropertySet(new Im4Property("DGST", new Im4OctetString(digest))))]);
            return new Img4(payload, Im4Manifest.Create(body,
                key.SignData(body.Encode(), HashAlgorithmName.SHA384, DSASignatureFormat.Rfc3279DerSequence), [cert.RawData]));
        }
        Assert.True(Image4Verifier.Verify(Signed(payload.ComputeDigest().ToArray()), cert).Valid);
        var wrong = payload.ComputeDigest().ToArray();
        wrong[0] ^= 1;
        Assert.Equal(Image4ProblemCode.DigestMismatch, Assert.Single(Image4Verifier.Verify(Signed(wrong), cert).Problems).Code);
    }
}

using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using KextTrust.Formats.CodeSigning;
using KextTrust.Kexts.Signing;
using KextTrust.TestSupport;

namespace KextTrust.Kexts.Tests.Signing;

public class TestPkiSigningTests
{
    private const string Team = "KT4TEST001";

    private static byte[] Code()
    {
        var code = new byte[20_000];
        new Random(7).NextBytes(code);
        return code;
    }

    private static (byte[] Signature, byte[] Cd1, byte[] Cd256) SignWith(TestPki pki, bool alternate = true, bool includeRoot = false)
    {
        var code = Code();
        var reqs = RequirementCompiler.CompileSet(
            $"designated => identifier \"com.example.driver\" and anchor apple generic and certificate 1[field.1.2.840.113635.100.6.2.6] /* exists */ and certificate leaf[field.1.2.840.113635.100.6.1.13] /* exists */ and certificate leaf[subject.OU] = {Team}");
        byte[] Cd(CodeSigningHashType type) => new CodeDirectoryBuilder
        {
            Identifier = "com.example.driver",
            TeamId = Team,
            HashType = type,
            ExecSegLimit = 0x4000,
            SpecialSlotHashes = new Dictionary<int, byte[]> { [2] = EmbeddedSignatureBuilder.SpecialSlotHash(type, reqs) },
        }.Build(code);
        var cd1 = alternate ? Cd(CodeSigningHashType.Sha1) : Cd(CodeSigningHashType.Sha256);
        var cd256 = Cd(CodeSigningHashType.Sha256);
        byte[][] cds = alternate ? [cd1, cd256] : [cd1];
        X509Certificate2[] chain = includeRoot ? [pki.Intermediate, pki.Root] : [pki.Intermediate];
        var cms = CodeSignatureCmsSigner.Sign(cds, pki.Leaf, chain, new DateTimeOffset(2025, 6, 1, 12, 0, 0, TimeSpan.Zero));
        var sig = new EmbeddedSignatureBuilder
        {
            CodeDirectory = cd1,
            Requirements = reqs,
            AlternateCodeDirectories = alternate ? [cd256] : [],
            Cms = cms,
        }.Build();
        return (sig, cd1, cd256);
    }

    private static TestPki NewPki(bool kextSigning = true) => TestPki.Create(new TestPki.Options("Example Corp", Team)
    {
        KextSigning = kextSigning,
        NotBefore = new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero),
    });

    [Fact]
    public void Own_signature_verifies_with_the_test_root_passed_explicitly()
    {
        using var pki = NewPki();
        var (bytes, _, _) = SignWith(pki);
        var sig = EmbeddedSignature.Parse(bytes, "own");
        var result = CodeSignatureVerifier.Verify(sig, new CodeSignatureVerifierOptions { TestRoot = pki.Root });
        Assert.True(result.IsValid, string.Join("; ", result.Problems));
        Assert.Equal(TrustAnchorKind.TestRoot, result.Anchor);
        Assert.False(result.IsAppleAnchored);
        Assert.Equal(new DateTimeOffset(2025, 6, 1, 12, 0, 0, TimeSpan.Zero), result.VerificationTime);
        Assert.Equal(VerificationTimeSource.CmsSigningTime, result.TimeSource);
        Assert.Equal(CdHashAttributeStatus.Agrees, result.CdHashesPlist);
        Assert.Equal(CdHashAttributeStatus.Agrees, result.CdHashesV2);
        Assert.Equal(3, result.Chain.Count);
        var s = result.Signer!;
        Assert.Equal(Team, s.TeamId);
        Assert.Equal($"Developer ID Application: Example Corp ({Team})", s.CommonName);
        Assert.True(s.IsDeveloperIdApplication);
        Assert.True(s.IntermediateIsDeveloperIdCa);
        Assert.True(s.HasKextSigningAuthority);
    }

    [Fact]
    public void Own_signature_fails_without_the_test_root_so_only_the_pinned_store_is_used()
    {
        using var pki = NewPki();
        // Even with the root embedded in the CMS, it must not be trusted unless passed explicitly.
        var (bytes, _, _) = SignWith(pki, includeRoot: true);
        var result = CodeSignatureVerifier.Verify(EmbeddedSignature.Parse(bytes, "own"));
        Assert.False(result.IsValid);
        Assert.Equal(TrustAnchorKind.None, result.Anchor);
        Assert.True(result.Has(SignatureProblemCode.UntrustedRoot), string.Join("; ", result.Problems));
        Assert.False(result.Has(SignatureProblemCode.CmsSignatureInvalid));

        using var other = NewPki();
        var wrongRoot = CodeSignatureVerifier.Verify(EmbeddedSignature.Parse(bytes, "own"), new CodeSignatureVerifierOptions { TestRoot = other.Root });
        Assert.True(wrongRoot.Has(SignatureProblemCode.UntrustedRoot));
    }

    [Fact]
    public void Leaf_without_the_kext_extension_reports_no_kext_signing_authority()
    {
        using var pki = NewPki(kextSigning: false);
        var (bytes, _, _) = SignWith(pki);
        var result = CodeSignatureVerifier.Verify(EmbeddedSignature.Parse(bytes, "own"), new CodeSignatureVerifierOptions { TestRoot = pki.Root });
        Assert.True(result.IsValid, string.Join("; ", result.Problems));
        Assert.False(result.Signer!.HasKextSigningAuthority);
        Assert.True(result.Signer.IsDeveloperIdApplication);
    }

    private static byte[] WithCms(byte[] signature, Func<SignedCms, byte[]> edit)
    {
        var original = EmbeddedSignature.Parse(signature, "own");
        var cms = new SignedCms();
        cms.Decode(original.Signature!.CmsBytes.Span);
        return new EmbeddedSignatureBuilder
        {
            CodeDirectory = original.CodeDirectory.Bytes.ToArray(),
            Requirements = original.Requirements!.Bytes.ToArray(),
            AlternateCodeDirectories = original.AlternateCodeDirectories.Select(cd => cd.Bytes.ToArray()).ToArray(),
            Cms = edit(cms),
        }.Build();
    }

    [Fact]
    public void CMS_without_the_signer_certificate_names_the_missing_signer()
    {
        using var pki = NewPki();
        var (bytes, _, _) = SignWith(pki);
        var noLeaf = WithCms(bytes, cms =>
        {
            cms.RemoveCertificate(pki.Leaf);
            return cms.Encode();
        });
        var result = CodeSignatureVerifier.Verify(EmbeddedSignature.Parse(noLeaf, "no-leaf"), new CodeSignatureVerifierOptions { TestRoot = pki.Root });
        Assert.True(result.Has(SignatureProblemCode.SignerCertificateMissing), string.Join("; ", result.Problems));
        Assert.True(result.Has(SignatureProblemCode.CmsSignatureInvalid), string.Join("; ", result.Problems));
        Assert.Null(result.Signer);
    }

    [Fact]
    public void CMS_followed_by_padding_verifies_and_a_foreign_leaf_in_the_bag_does_not_sign_for_it()
    {
        using var pki = NewPki();
        using var other = TestPki.Create(new TestPki.Options("Other Corp", "KT4TEST009") { NotBefore = new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero) });
        var (bytes, _, _) = SignWith(pki);
        // codesign reserves room for the CMS: zeros after the message are part of the blob.
        var padded = WithCms(bytes, cms => [.. cms.Encode(), .. new byte[64]]);
        var ok = CodeSignatureVerifier.Verify(EmbeddedSignature.Parse(padded, "padded"), new CodeSignatureVerifierOptions { TestRoot = pki.Root });
        Assert.True(ok.IsValid, string.Join("; ", ok.Problems));
        Assert.Equal(Team, ok.Signer!.TeamId);

        // The other hierarchy's leaf replaces ours in the bag: the signature must be checked against the key that is
        // named by the signer identifier, and that certificate is no longer there.
        var swapped = WithCms(bytes, cms =>
        {
            cms.RemoveCertificate(pki.Leaf);
            cms.AddCertificate(other.Leaf);
            return cms.Encode();
        });
        var bad = CodeSignatureVerifier.Verify(EmbeddedSignature.Parse(swapped, "swapped-leaf"), new CodeSignatureVerifierOptions { TestRoot = pki.Root });
        Assert.True(bad.Has(SignatureProblemCode.SignerCertificateMissing), string.Join("; ", bad.Problems));
        Assert.True(bad.Has(SignatureProblemCode.CmsSignatureInvalid), string.Join("; ", bad.Problems));
        Assert.Null(bad.Signer);
    }

    [Fact]
    public void Stripped_stronger_code_directory_is_caught()
    {
        using var pki = NewPki();
        var (bytes, cd1, _) = SignWith(pki);
        var original = EmbeddedSignature.Parse(bytes, "own");
        var stripped = new EmbeddedSignatureBuilder
        {
            CodeDirectory = cd1,
            Requirements = original.Requirements!.Bytes.ToArray(),
            Cms = original.Signature!.CmsBytes.ToArray(),
        }.Build();
        var result = CodeSignatureVerifier.Verify(EmbeddedSignature.Parse(stripped, "stripped"), new CodeSignatureVerifierOptions { TestRoot = pki.Root });
        Assert.False(result.Has(SignatureProblemCode.CmsSignatureInvalid)); // the CMS itself is intact …
        Assert.True(result.Has(SignatureProblemCode.CdHashesMismatch));     // … but it vouches for a CD that is gone
        Assert.True(result.Has(SignatureProblemCode.CdHashesV2Mismatch));
    }

    [Fact]
    public void Swapped_stronger_code_directory_is_caught()
    {
        using var pki = NewPki();
        var (bytes, cd1, _) = SignWith(pki);
        var original = EmbeddedSignature.Parse(bytes, "own");
        var other = new CodeDirectoryBuilder { Identifier = "com.example.driver", TeamId = Team }.Build(new byte[9000]);
        var swapped = new EmbeddedSignatureBuilder
        {
            CodeDirectory = cd1,
            Requirements = original.Requirements!.Bytes.ToArray(),
            AlternateCodeDirectories = [other],
            Cms = original.Signature!.CmsBytes.ToArray(),
        }.Build();
        var result = CodeSignatureVerifier.Verify(EmbeddedSignature.Parse(swapped, "swapped"), new CodeSignatureVerifierOptions { TestRoot = pki.Root });
        Assert.Equal(CdHashAttributeStatus.Mismatch, result.CdHashesPlist);
        Assert.Equal(CdHashAttributeStatus.Mismatch, result.CdHashesV2);
    }

    [Fact]
    public void Created_CMS_carries_the_expected_attributes_and_certificates()
    {
        using var pki = NewPki();
        var (bytes, cd1, cd256) = SignWith(pki, includeRoot: true);
        var sig = EmbeddedSignature.Parse(bytes, "own");
        var cms = new SignedCms(new ContentInfo(cd1), detached: true);
        cms.Decode(sig.Signature!.CmsBytes.Span);
        cms.CheckSignature(verifySignatureOnly: true);
        var signer = Assert.Single(cms.SignerInfos.Cast<SignerInfo>());
        Assert.Equal("2.16.840.1.101.3.4.2.1", signer.DigestAlgorithm.Value);
        var oids = signer.SignedAttributes.Cast<System.Security.Cryptography.CryptographicAttributeObject>().Select(a => a.Oid.Value).ToArray();
        Assert.Contains("1.2.840.113549.1.9.3", oids); // content type
        Assert.Contains("1.2.840.113549.1.9.4", oids); // message digest
        Assert.Contains("1.2.840.113549.1.9.5", oids); // signing time
        Assert.Contains(AppleOids.CdHashesPlistAttribute, oids);
        Assert.Contains(AppleOids.CdHashesV2Attribute, oids);
        var v2 = signer.SignedAttributes.Cast<System.Security.Cryptography.CryptographicAttributeObject>().Single(a => a.Oid.Value == AppleOids.CdHashesV2Attribute);
        Assert.Equal(2, v2.Values.Count);
        Assert.Equal(3, cms.Certificates.Count);
        var plist = signer.SignedAttributes.Cast<System.Security.Cryptography.CryptographicAttributeObject>().Single(a => a.Oid.Value == AppleOids.CdHashesPlistAttribute);
        var listed = CdHashAttributes.TryDecodePlistAttribute(plist.Values[0].RawData)!;
        Assert.Equal([CodeDirectory.Parse(cd1, null).ComputeCdHash(), CodeDirectory.Parse(cd256, null).ComputeCdHash()], listed);
    }

    [Fact]
    public void Own_CMS_verifies_with_openssl_too()
    {
        using var pki = NewPki();
        var (bytes, cd1, _) = SignWith(pki, alternate: false);
        var sig = EmbeddedSignature.Parse(bytes, "own");
        using var tmp = new TempDir();
        File.WriteAllBytes(tmp.Combine("cms.der"), sig.Signature!.CmsBytes.ToArray());
        File.WriteAllBytes(tmp.Combine("cd.bin"), cd1);
        File.WriteAllText(tmp.Combine("root.pem"), pki.Root.ExportCertificatePem());
        var r = ExternalTool.Run(ExternalTool.OpenSsl, ["cms", "-verify", "-binary", "-inform", "der", "-in", tmp.Combine("cms.der"),
            "-content", tmp.Combine("cd.bin"), "-CAfile", tmp.Combine("root.pem"), "-purpose", "any", "-ignore_critical", "-attime", "1748779200", "-out", "/dev/null"], stdin: null);
        Assert.True(r.ExitCode == 0, r.StdErr);
        // And openssl refuses it against a root it was not given.
        using var stranger = NewPki();
        File.WriteAllText(tmp.Combine("other.pem"), stranger.Root.ExportCertificatePem());
        var wrong = ExternalTool.Run(ExternalTool.OpenSsl, ["cms", "-verify", "-binary", "-inform", "der", "-in", tmp.Combine("cms.der"),
            "-content", tmp.Combine("cd.bin"), "-CAfile", tmp.Combine("other.pem"), "-purpose", "any", "-ignore_critical", "-attime", "1748779200", "-out", "/dev/null"], stdin: null);
        Assert.NotEqual(0, wrong.ExitCode);
        // Signature-only check (no chain policy) must succeed outright.
        var noVerify = ExternalTool.Run(ExternalTool.OpenSsl, ["cms", "-verify", "-noverify", "-binary", "-inform", "der", "-in", tmp.Combine("cms.der"),
            "-content", tmp.Combine("cd.bin"), "-out", "/dev/null"], stdin: null);
        Assert.Equal(0, noVerify.ExitCode);
    }

    [Fact]
    public void Pki_round_trips_through_a_folder()
    {
        using var pki = NewPki();
        using var tmp = new TempDir();
        pki.WriteTo(tmp.Path);
        foreach (var f in new[] { TestPki.Files.RootCert, TestPki.Files.RootKey, TestPki.Files.IntermediateCert, TestPki.Files.IntermediateKey, TestPki.Files.LeafCert, TestPki.Files.LeafKey, TestPki.Files.LeafPkcs12 })
        {
            Assert.True(File.Exists(tmp.Combine(f)), f);
        }
        using var loaded = TestPki.Load(tmp.Path);
        Assert.Equal(pki.Root.RawData, loaded.Root.RawData);
        Assert.Equal(pki.Leaf.RawData, loaded.Leaf.RawData);
        Assert.True(loaded.Leaf.HasPrivateKey);
        Assert.Equal(TestPki.RootName, loaded.Root.GetNameInfo(X509NameType.SimpleName, false));
        Assert.NotNull(loaded.Intermediate.Extensions[AppleOids.DeveloperIdCa]);
        Assert.True(loaded.Leaf.Extensions[AppleOids.DeveloperIdKernel]!.Critical);

        var p12 = TestPki.LoadPkcs12(tmp.Path);
        Assert.Equal(3, p12.Count);
        Assert.Contains(p12.Cast<X509Certificate2>(), c => c.HasPrivateKey && c.RawData.AsSpan().SequenceEqual(pki.Leaf.RawData));

        // A signature made with the reloaded PKI verifies against the reloaded root.
        var (bytes, _, _) = SignWith(loaded);
        Assert.True(CodeSignatureVerifier.Verify(EmbeddedSignature.Parse(bytes, "reloaded"), new CodeSignatureVerifierOptions { TestRoot = pki.Root }).IsValid);

        // openssl independently agrees that the leaf chains to the root.
        var r = ExternalTool.Run(ExternalTool.OpenSsl, ["verify", "-CAfile", tmp.Combine(TestPki.Files.RootCert), "-untrusted", tmp.Combine(TestPki.Files.IntermediateCert), "-ignore_critical", tmp.Combine(TestPki.Files.LeafCert)], stdin: null);
        Assert.Equal(0, r.ExitCode);
    }

    [Fact]
    public void Signing_time_outside_the_certificates_validity_is_reported()
    {
        using var pki = TestPki.Create(new TestPki.Options("Example Corp", Team)
        {
            NotBefore = new DateTimeOffset(2020, 1, 1, 0, 0, 0, TimeSpan.Zero),
            Validity = TimeSpan.FromDays(365),
        });
        var cd = new CodeDirectoryBuilder { Identifier = "com.example.driver", TeamId = Team }.Build(Code());
        var cms = CodeSignatureCmsSigner.Sign([cd], pki.Leaf, [pki.Intermediate], new DateTimeOffset(2025, 6, 1, 0, 0, 0, TimeSpan.Zero));
        var sig = EmbeddedSignature.Parse(new EmbeddedSignatureBuilder { CodeDirectory = cd, Cms = cms }.Build(), "late");
        var result = CodeSignatureVerifier.Verify(sig, new CodeSignatureVerifierOptions { TestRoot = pki.Root });
        Assert.Equal(VerificationTimeSource.CmsSigningTime, result.TimeSource);
        Assert.Equal(SignatureProblemCode.CertificateNotTimeValid, Assert.Single(result.Problems).Code);
    }

    [Fact]
    public void Ad_hoc_signature_reports_no_cms()
    {
        var cd = new CodeDirectoryBuilder { Identifier = "adhoc", Flags = CodeDirectoryFlags.Adhoc }.Build(Code());
        var sig = EmbeddedSignature.Parse(new EmbeddedSignatureBuilder { CodeDirectory = cd, Cms = [] }.Build(), "adhoc");
        var result = CodeSignatureVerifier.Verify(sig);
        Assert.Equal(SignatureProblemCode.NoCmsSignature, Assert.Single(result.Problems).Code);
    }
}

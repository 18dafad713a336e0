using System.Formats.Asn1;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using KextTrust.Formats.CodeSigning;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Signing;
using KextTrust.TestSupport;

namespace KextTrust.Kexts.Tests.Signing;

/// <summary>
/// The signer-info signature confirmed with a key imported once per run (<see cref="CmsSignatureCheck"/>) agrees with
/// <c>SignedCms</c>'s own <c>CheckSignature</c> on real and tampered messages, and hands every case it does not take
/// back to it.
/// </summary>
public class CmsSignatureCheckTests
{
    private static readonly DateTimeOffset SigningTime = new(2025, 6, 1, 12, 0, 0, TimeSpan.Zero);

    private static readonly SignatureProblemCode[] SignatureCodes =
    [
        SignatureProblemCode.CmsMalformed, SignatureProblemCode.SignerCountNotOne, SignatureProblemCode.SignerCertificateMissing,
        SignatureProblemCode.ContentDigestMismatch, SignatureProblemCode.CmsSignatureInvalid,
    ];

    /// <summary>Whether SignedCms alone (its own certificate set, its own signer lookup) accepts the signer's signature.</summary>
    private static bool SignedCmsAccepts(ReadOnlySpan<byte> cms, byte[] codeDirectory)
    {
        try
        {
            var message = new SignedCms(new ContentInfo(codeDirectory), detached: true);
            message.Decode(cms);
            if (message.SignerInfos.Count != 1 || message.SignerInfos[0].Certificate is null)
            {
                return false;
            }
            message.SignerInfos[0].CheckSignature(new X509Certificate2Collection(), verifySignatureOnly: true);
            return true;
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    private static bool WeAccept(CodeSignatureVerification result) => !result.Problems.Any(p => SignatureCodes.Contains(p.Code));

    /// <summary>Where the SignerInfos SET lies in <paramref name="cms"/> (the last element of SignedData).</summary>
    private static (int Start, int Length) SignerInfos(byte[] cms)
    {
        var contentInfo = new AsnReader(cms, AsnEncodingRules.BER).ReadSequence();
        contentInfo.ReadObjectIdentifier();
        var signedData = contentInfo.ReadSequence(new Asn1Tag(TagClass.ContextSpecific, 0, true)).ReadSequence();
        ReadOnlyMemory<byte> last = default;
        while (signedData.HasData)
        {
            last = signedData.ReadEncodedValue();
        }
        Assert.True(MemoryMarshal.TryGetArray(last, out var segment));
        return (segment.Offset, segment.Count);
    }

    /// <summary>
    /// The signer info from its start to the end of its signature value, i.e. without the unsigned attributes (which
    /// for Microsoft's files hold a 4 KB timestamp token that no signature of this message covers).
    /// </summary>
    private static (int Start, int Length) SignedPartOfSignerInfo(byte[] cms)
    {
        var (_, signature) = SignerFields(cms);
        var (start, _) = SignerInfos(cms);
        return (start, signature.Offset + signature.Count - start);
    }

    /// <summary>Where the signed attributes ([0]) and the signature value lie in <paramref name="cms"/>.</summary>
    private static (ArraySegment<byte> Attributes, ArraySegment<byte> Signature) SignerFields(byte[] cms)
    {
        var (start, length) = SignerInfos(cms);
        var signerInfo = new AsnReader(cms.AsMemory(start, length), AsnEncodingRules.DER).ReadSetOf().ReadSequence();
        signerInfo.ReadEncodedValue(); // version
        signerInfo.ReadEncodedValue(); // sid
        signerInfo.ReadEncodedValue(); // digestAlgorithm
        var attributes = signerInfo.ReadEncodedValue();
        signerInfo.ReadEncodedValue(); // signatureAlgorithm
        Assert.True(signerInfo.TryReadPrimitiveOctetString(out var signature));
        Assert.True(MemoryMarshal.TryGetArray(attributes, out var a));
        Assert.True(MemoryMarshal.TryGetArray(signature, out var s));
        return (a, s);
    }

    private static (byte[] Blob, int CmsOffset, int CmsLength, TestPki Pki) OwnEcdsaSignature(TempDir tmp)
    {
        var pki = TestPki.Create(new TestPki.Options("Example Corp", "KT4TEST009") { NotBefore = new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero) });
        var kext = KextSignerTests.WriteKext(Path.Combine(tmp.Path, "k"));
        using (var identity = KextSigningIdentity.Create(pki.Leaf, [pki.Intermediate, pki.Root]))
        {
            KextSigner.Sign(kext, new KextSigningOptions { Identity = identity, SigningTime = SigningTime });
        }
        using var file = MachOFile.Open(KextBundle.Open(kext).ExecutablePath!);
        var blob = file.Slices[0].CodeSignatureData.ToArray();
        var cms = EmbeddedSignature.Parse(blob, "own").Signature!.CmsBytes;
        Assert.True(MemoryMarshal.TryGetArray(cms, out var segment));
        return (blob, segment.Offset, segment.Count, pki);
    }

    [Fact]
    public void Every_runtime_pack_signature_is_confirmed_with_one_key_import_per_leaf()
    {
        using var cache = new ChainVerdictCache();
        var signatures = 0;
        foreach (var path in Corpus.RuntimePackMachOFiles())
        {
            using var file = MachOFile.Open(path);
            foreach (var slice in file.Slices)
            {
                var result = CodeSignatureVerifier.Verify(EmbeddedSignature.Parse(slice.CodeSignatureData, path), null, cache, out _);
                Assert.True(result.IsAppleAnchored, $"{path}: {string.Join("; ", result.Problems)}");
                signatures++;
            }
        }
        Assert.True(signatures >= 28, $"{signatures} signatures");
        Assert.Equal(signatures, cache.ConfirmedSignatures);
    }

    [Theory]
    [InlineData("microsoft")]
    [InlineData("own")]
    public void Every_byte_flip_in_the_signer_info_gets_the_verdict_SignedCms_gives(string which)
    {
        using var tmp = new TempDir();
        byte[] blob;
        int cmsOffset, cmsLength;
        TestPki? pki = null;
        if (which == "microsoft")
        {
            blob = SignatureLocator.Locate(Corpus.RuntimePackMachOFiles().First(f => f.EndsWith("libhostfxr.dylib", StringComparison.Ordinal))).Signature.ToArray();
            var cms = EmbeddedSignature.Parse(blob, "x").Signature!.CmsBytes.ToArray();
            cmsOffset = CorpusVerificationTests.IndexOf(blob, cms);
            cmsLength = cms.Length;
        }
        else
        {
            (blob, cmsOffset, cmsLength, pki) = OwnEcdsaSignature(tmp);
        }
        using var owned = pki;
        var options = new CodeSignatureVerifierOptions { TestRoot = pki?.Root };
        var codeDirectory = EmbeddedSignature.Parse(blob, "x").CodeDirectory.Bytes.ToArray();
        var (start, length) = SignedPartOfSignerInfo(blob[cmsOffset..(cmsOffset + cmsLength)]);
        using var cache = new ChainVerdictCache(); // shared, as in a run: a cached key must never lend a tampered message its verdict
        var accepted = 0;
        var confirmedBefore = 0;
        for (var i = 0; i < length; i++)
        {
            foreach (var mask in new byte[] { 0x01, 0x80 })
            {
                var copy = (byte[])blob.Clone();
                copy[cmsOffset + start + i] ^= mask;
                var reference = SignedCmsAccepts(copy.AsSpan(cmsOffset, cmsLength), codeDirectory);
                EmbeddedSignature signature;
                try
                {
                    signature = EmbeddedSignature.Parse(copy, "tampered");
                }
                catch (CodeSignatureFormatException)
                {
                    continue; // the SuperBlob itself no longer parses (its CMS blob length)
                }
                confirmedBefore = cache.ConfirmedSignatures;
                var ours = CodeSignatureVerifier.Verify(signature, options, cache, out _);
                Assert.True(reference == WeAccept(ours),
                    $"flip {mask:x2} at SignerInfos byte {i} of {length}: SignedCms {(reference ? "accepts" : "refuses")}, we say [{string.Join("; ", ours.Problems)}]");
                accepted += reference ? 1 : 0;
                // Whatever the cached-key check confirmed, SignedCms confirms too.
                Assert.True(cache.ConfirmedSignatures == confirmedBefore || reference, $"flip {mask:x2} at byte {i} confirmed with the cached key");
            }
        }
        // A few fields are not covered by the signature (e.g. the version number); nearly every byte is.
        Assert.True(accepted * 20 < length * 2, $"{accepted} of {length * 2} flips accepted");
        var untouched = CodeSignatureVerifier.Verify(EmbeddedSignature.Parse(blob, "x"), options, cache, out _);
        Assert.True(untouched.IsValid, string.Join("; ", untouched.Problems));
    }

    [Fact]
    public void Signed_attributes_signed_in_unsorted_order_are_left_to_SignedCms_which_accepts_them()
    {
        using var tmp = new TempDir();
        var (blob, cmsOffset, cmsLength, pki) = OwnEcdsaSignature(tmp);
        using var owned = pki;
        var cms = blob[cmsOffset..(cmsOffset + cmsLength)];
        var (attributes, signature) = SignerFields(cms);

        // Reverse the attribute order inside the [0] element (same length), then sign that document order as
        // some CMS producers do: not DER, but SignedCms (like OpenSSL and Windows) accepts it in its second try.
        var reader = new AsnReader(attributes.AsMemory(), AsnEncodingRules.BER).ReadSetOf(skipSortOrderValidation: true, new Asn1Tag(TagClass.ContextSpecific, 0, true));
        var items = new List<byte[]>();
        while (reader.HasData)
        {
            items.Add(reader.ReadEncodedValue().ToArray());
        }
        Assert.True(items.Count >= 3);
        var header = attributes.Count - items.Sum(x => x.Length);
        var reordered = attributes.Take(header).Concat(items.AsEnumerable().Reverse().SelectMany(x => x)).ToArray();
        Assert.Equal(attributes.Count, reordered.Length);
        var toSign = (byte[])reordered.Clone();
        toSign[0] = 0x31;
        using var key = pki.Leaf.GetECDsaPrivateKey()!;
        byte[] newSignature;
        do
        {
            newSignature = key.SignData(toSign, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
        }
        while (newSignature.Length != signature.Count); // DER ECDSA values vary by a byte or two: keep every length as it was
        var asSigned = (byte[])blob.Clone();
        reordered.CopyTo(blob, cmsOffset + attributes.Offset);
        newSignature.CopyTo(blob, cmsOffset + signature.Offset);

        var codeDirectory = EmbeddedSignature.Parse(blob, "x").CodeDirectory.Bytes.ToArray();
        Assert.True(SignedCmsAccepts(blob.AsSpan(cmsOffset, cmsLength), codeDirectory));
        using var cache = new ChainVerdictCache();
        var result = CodeSignatureVerifier.Verify(EmbeddedSignature.Parse(blob, "reordered"), new CodeSignatureVerifierOptions { TestRoot = pki.Root }, cache, out _);
        Assert.True(result.IsValid, string.Join("; ", result.Problems));
        Assert.Equal(0, cache.ConfirmedSignatures); // not DER: decided by SignedCms, not by the cached-key check

        // The message as our signer wrote it (DER) is confirmed by the cached-key check.
        var ours = CodeSignatureVerifier.Verify(EmbeddedSignature.Parse(asSigned, "as signed"), new CodeSignatureVerifierOptions { TestRoot = pki.Root }, cache, out _);
        Assert.True(ours.IsValid, string.Join("; ", ours.Problems));
        Assert.Equal(1, cache.ConfirmedSignatures);
    }
}

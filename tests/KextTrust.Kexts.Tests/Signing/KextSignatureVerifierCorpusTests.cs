using KextTrust.Formats.CodeSigning;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Signing;
using KextTrust.TestSupport;

namespace KextTrust.Kexts.Tests.Signing;

/// <summary>The whole-file verifier on Microsoft's Developer-ID-signed runtime-pack binaries (files we did not write).</summary>
public class KextSignatureVerifierCorpusTests
{
    private const string MicrosoftTeam = "UBF8T346G9";

    public static IEnumerable<object[]> Files() => Corpus.RuntimePackMachOFiles().Select(f => new object[] { f });

    private static string CoreClr(string rid = "osx-x64") => Path.Combine(Corpus.RuntimePack(rid), "native", "libcoreclr.dylib");

    [Theory]
    [MemberData(nameof(Files))]
    public void Microsoft_file_is_valid_with_every_page_verified(string path)
    {
        var r = KextSignatureVerifier.Verify(path);

        Assert.True(r.Status == KextSignatureStatus.Valid, string.Join("\n", r.Problems));
        Assert.Empty(r.Problems);
        Assert.Equal(MicrosoftTeam, r.TeamId);
        Assert.Equal("Developer ID Application: Microsoft Corporation (UBF8T346G9)", r.Signer);
        Assert.Equal(TrustAnchorKind.AppleRoot, r.Anchor);
        Assert.Equal("Apple Root CA", r.TrustedRoot);
        Assert.False(r.TrustedByRequest);
        Assert.Equal(AppleRootCertificate.Sha256Fingerprint, r.Chain[^1].Sha256);
        // The leaf carries …6.1.18 (openssl shows it; see CorpusVerificationTests), so it may sign kexts,
        // and the third-party kext requirement holds — but these are not kexts at all.
        Assert.True(r.KextSigningAuthorized);
        Assert.True(r.RequirementSatisfied);
        Assert.Equal(RequirementEvaluator.ThirdPartyKextRequirement.Replace("]", "] /* exists */"), r.KextRequirement!.Requirement);
        Assert.False(r.IsKextBinary);
        Assert.All(r.Slices, s => Assert.NotEqual(nameof(MachOFileType.KextBundle), s.FileType));

        // Every page of every CodeDirectory: the sum of their slot counts, each covering the bytes up to the signature.
        using var file = MachOFile.Open(path);
        var expectedPages = 0L;
        foreach (var slice in file.Slices)
        {
            var sig = EmbeddedSignature.Parse(slice.CodeSignatureData, path);
            expectedPages += sig.AllCodeDirectories.Sum(cd => (long)cd.CodeSlotCount);
            Assert.All(sig.AllCodeDirectories, cd => Assert.Equal((ulong)slice.CodeSignature!.Value.DataOffset, cd.EffectiveCodeLimit));
            var cdhash = Convert.ToHexStringLower(sig.CodeDirectory.ComputeCdHash());
            Assert.Contains(cdhash, r.CdHashes);
        }
        Assert.Equal(expectedPages, r.PagesVerified);
        Assert.True(r.PagesVerified > 0);
        // The designated requirement Microsoft wrote (identifier + anchor apple generic + Developer ID fields + OU) holds.
        Assert.Equal(RequirementOutcome.Satisfied, r.DesignatedRequirement!.Outcome);
        Assert.Contains("UBF8T346G9", r.DesignatedRequirement.Requirement);
    }

    [Fact]
    public void Single_threaded_and_parallel_verification_agree()
    {
        var files = Corpus.RuntimePackMachOFiles();
        var one = KextSignatureVerifier.VerifyMany(files, new KextSignatureVerifierOptions { MaxDegreeOfParallelism = 1 });
        var all = KextSignatureVerifier.VerifyMany(files, new KextSignatureVerifierOptions { MaxDegreeOfParallelism = 4, PagesPerWorkItem = 7 });
        Assert.Equal(one.Select(i => (i.Result!.Status, string.Join(",", i.Result.CdHashes), i.Result.PagesVerified)),
            all.Select(i => (i.Result!.Status, string.Join(",", i.Result.CdHashes), i.Result.PagesVerified)));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void Large_fat_file_streamed_through_its_handle_finds_a_flipped_page_in_the_second_slice(int threads)
    {
        // Microsoft's x86_64 and arm64 libcoreclr side by side in one fat file (each slice's signature covers only
        // that slice): large enough to be memory-mapped, so its pages are read through the file handle at each
        // slice's own offset.
        using var tmp = new TempDir();
        var fat = MachOFatBuilder.Build([File.ReadAllBytes(CoreClr("osx-x64")), File.ReadAllBytes(CoreClr("osx-arm64"))]);
        var path = tmp.Combine("libcoreclr-universal.dylib");
        File.WriteAllBytes(path, fat);
        using (var file = MachOFile.Open(path))
        {
            Assert.True(file.IsMemoryMapped);
        }
        var options = new KextSignatureVerifierOptions { MaxDegreeOfParallelism = threads };

        var intact = KextSignatureVerifier.Verify(path, options);
        Assert.True(intact.Status == KextSignatureStatus.Valid, string.Join("\n", intact.Problems));
        Assert.Equal(["x86_64", "arm64"], intact.Slices.Select(s => s.Arch));

        long flipped, pageSize;
        using (var file = MachOFile.FromBytes(fat, path))
        {
            var arm = file.Slices[1];
            var cd = EmbeddedSignature.Parse(arm.CodeSignatureData, path).CodeDirectory;
            pageSize = cd.PageSize;
            flipped = arm.FileOffset + 40 * pageSize + 7; // page 40 of the arm64 slice
        }
        fat[flipped] ^= 0x80;
        File.WriteAllBytes(path, fat);

        var r = KextSignatureVerifier.Verify(path, options);

        Assert.Equal(KextSignatureStatus.Invalid, r.Status);
        var page = Assert.Single(r.Problems);
        Assert.Equal(KextSignatureProblemCode.CodePageHashMismatch, page.Code);
        Assert.Equal("arm64", page.Arch);
        Assert.Contains("code page 40 ", page.Message);
        Assert.Equal(flipped - 7, page.Offset);
    }

    [Theory]
    [InlineData(16)] // 64 KiB pages: several per read of the verifier's 256 KiB buffer
    [InlineData(20)] // 1 MiB pages: larger than the buffer, hashed as they stream through it
    public void Large_pages_of_a_mapped_file_are_read_through_the_buffer_and_a_flip_names_its_page(int pageSizeLog2)
    {
        // Microsoft's libcoreclr re-signed ad hoc with a CodeDirectory of 2^pageSizeLog2-byte pages (the kernel
        // accepts any power of two): the file is memory-mapped, so its pages come through the file handle.
        using var tmp = new TempDir();
        var thin = File.ReadAllBytes(CoreClr("osx-x64"));
        var signed = MachOSignatureWriter.Sign(thin, "libcoreclr.dylib", s => new EmbeddedSignatureBuilder
        {
            CodeDirectory = new CodeDirectoryBuilder
            {
                Identifier = "libcoreclr",
                Flags = CodeDirectoryFlags.Adhoc,
                PageSizeLog2 = (byte)pageSizeLog2,
            }.Build(s.Code.Span),
        }.Build());
        var path = tmp.Combine("libcoreclr.dylib");
        File.WriteAllBytes(path, signed);
        long pages;
        using (var file = MachOFile.Open(path))
        {
            Assert.True(file.IsMemoryMapped);
            var cd = EmbeddedSignature.Parse(file.Slices[0].CodeSignatureData, path).CodeDirectory;
            Assert.Equal(1L << pageSizeLog2, cd.PageSize);
            pages = cd.CodeSlotCount;
        }

        var intact = KextSignatureVerifier.Verify(path);
        Assert.True(intact.Status == KextSignatureStatus.AdHoc, string.Join("\n", intact.Problems));
        Assert.Empty(intact.Problems);
        Assert.Equal(pages, intact.PagesVerified);

        var page = (int)pages - 2;
        var at = ((long)page << pageSizeLog2) + (1L << pageSizeLog2) - 1; // the page's last byte
        signed[at] ^= 0x01;
        File.WriteAllBytes(path, signed);

        var r = KextSignatureVerifier.Verify(path);

        var problem = Assert.Single(r.Problems);
        Assert.Equal(KextSignatureProblemCode.CodePageHashMismatch, problem.Code);
        Assert.Contains($"code page {page} ", problem.Message);
        Assert.Equal((long)page << pageSizeLog2, problem.Offset);
    }

    [Fact]
    public void A_malformed_fixups_blob_is_a_page_mismatch_not_unreadable_input()
    {
        // codesign --verify does not read the chained fixups; neither does the verifier. A corrupted header
        // (imports_format 9) breaks the signed page it lies in, and that is what is reported.
        using var tmp = new TempDir();
        var (path, slice, _, bytes) = Copy(tmp, CoreClr("osx-arm64"));
        var fixups = slice.LoadCommands.Single(c => c.Command == MachOLoadCommandType.DyldChainedFixups);
        var dataOffset = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(fixups.Data.Span[8..]);
        bytes[slice.FileOffset + dataOffset + 20] = 9;
        File.WriteAllBytes(path, bytes);
        Assert.Throws<MachOFormatException>(() => MachOFile.Open(path));

        var r = KextSignatureVerifier.Verify(path);

        Assert.Equal(KextSignatureStatus.Invalid, r.Status);
        Assert.Equal([KextSignatureProblemCode.CodePageHashMismatch], r.Problems.Select(p => p.Code).Distinct());
    }

    private static (string Path, MachOSlice Slice, EmbeddedSignature Sig, byte[] Bytes) Copy(TempDir tmp, string source)
    {
        var bytes = File.ReadAllBytes(source);
        var path = tmp.Combine(Path.GetFileName(source));
        File.WriteAllBytes(path, bytes);
        var file = MachOFile.FromBytes(bytes, path);
        var slice = file.Slices[0];
        return (path, slice, EmbeddedSignature.Parse(slice.CodeSignatureData, path), bytes);
    }

    [Fact]
    public void Byte_flipped_in_TEXT_reports_the_page_number_and_offset()
    {
        using var tmp = new TempDir();
        var (path, slice, sig, bytes) = Copy(tmp, CoreClr());
        var text = slice.Segments.Single(s => s.Name == "__TEXT");
        var offset = (long)text.FileOffset + 5 * 4096 + 123; // page 5 of the 4 KiB code pages
        bytes[slice.FileOffset + offset] ^= 0x01;
        File.WriteAllBytes(path, bytes);

        var r = KextSignatureVerifier.Verify(path);

        Assert.Equal(KextSignatureStatus.Invalid, r.Status);
        var pages = r.Problems.Where(p => p.Code == KextSignatureProblemCode.CodePageHashMismatch).ToArray();
        Assert.Equal(sig.AllCodeDirectories.Count, pages.Length); // once per CodeDirectory (SHA-1 and SHA-256)
        Assert.All(pages, p =>
        {
            Assert.Contains("code page 5 ", p.Message);
            Assert.Equal(slice.FileOffset + 5 * 4096, p.Offset);
            Assert.Equal("x86_64", p.Arch);
        });
        // Nothing else broke: the CMS is over the (intact) CodeDirectory.
        Assert.All(r.Problems, p => Assert.Equal(KextSignatureProblemCode.CodePageHashMismatch, p.Code));
    }

    [Fact]
    public void Byte_flipped_in_the_CMS_signature_is_a_CMS_failure()
    {
        using var tmp = new TempDir();
        var (path, slice, sig, bytes) = Copy(tmp, CoreClr());
        var cms = new System.Security.Cryptography.Pkcs.SignedCms();
        cms.Decode(sig.Signature!.CmsBytes.Span);
        var signatureValue = cms.SignerInfos[0].GetSignature(); // the RSA signature over the signed attributes
        var at = slice.FileOffset + slice.CodeSignature!.Value.DataOffset + IndexOf(sig.Bytes.Span, signatureValue) + 17;
        bytes[at] ^= 0x01;
        File.WriteAllBytes(path, bytes);

        var r = KextSignatureVerifier.Verify(path);

        Assert.Equal(KextSignatureStatus.Invalid, r.Status);
        Assert.Contains(r.Problems, p => p.Code == KextSignatureProblemCode.CmsInvalid && p.Message.Contains(nameof(SignatureProblemCode.CmsSignatureInvalid)));
        Assert.DoesNotContain(r.Problems, p => p.Code == KextSignatureProblemCode.CodePageHashMismatch);
    }

    [Fact]
    public void Byte_flipped_in_the_CodeDirectory_is_a_cdhash_failure()
    {
        using var tmp = new TempDir();
        var (path, slice, sig, bytes) = Copy(tmp, CoreClr());
        var cdStart = slice.FileOffset + slice.CodeSignature!.Value.DataOffset + IndexOf(sig.Bytes.Span, sig.CodeDirectory.Bytes.Span);
        // Flip a byte of the identifier string: the CodeDirectory still parses and its page hashes still match.
        bytes[cdStart + sig.CodeDirectory.IdentOffset] ^= 0x20;
        File.WriteAllBytes(path, bytes);

        var r = KextSignatureVerifier.Verify(path);

        Assert.Equal(KextSignatureStatus.Invalid, r.Status);
        Assert.Contains(r.Problems, p => p.Code == KextSignatureProblemCode.CdHashMismatch);
        Assert.DoesNotContain(r.Problems, p => p.Code == KextSignatureProblemCode.CodePageHashMismatch);
    }

    [Fact]
    public void Truncated_signature_is_a_typed_input_error_naming_the_file()
    {
        using var tmp = new TempDir();
        var (path, slice, _, bytes) = Copy(tmp, CoreClr());
        var cut = slice.FileOffset + slice.CodeSignature!.Value.DataOffset + 200;
        File.WriteAllBytes(path, bytes.AsSpan(0, (int)cut).ToArray());

        var e = Assert.Throws<KextSignatureInputException>(() => KextSignatureVerifier.Verify(path));
        Assert.Equal(path, e.PathName);
        Assert.Contains(path, e.Message);
    }

    private static long IndexOf(ReadOnlySpan<byte> haystack, ReadOnlySpan<byte> needle)
    {
        var i = haystack.IndexOf(needle);
        Assert.True(i >= 0);
        return i;
    }
}

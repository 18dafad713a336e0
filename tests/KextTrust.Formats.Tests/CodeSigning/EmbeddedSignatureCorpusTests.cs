using System.Buffers.Binary;
using CsCheck;
using KextTrust.Formats.CodeSigning;
using KextTrust.TestSupport;

namespace KextTrust.Formats.Tests.CodeSigning;

public class EmbeddedSignatureCorpusTests
{
    private const string MicrosoftTeam = "UBF8T346G9";

    public static IEnumerable<object[]> Files() => SignatureLocator.Files();

    [Fact]
    public void Corpus_is_not_empty()
    {
        Assert.True(Corpus.RuntimePackMachOFiles().Count >= 20);
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Parses_identifier_team_and_designated_requirement(string path)
    {
        var loc = SignatureLocator.Locate(path);
        var sig = EmbeddedSignature.Parse(loc.Signature, path);

        var cd = sig.CodeDirectory;
        Assert.False(string.IsNullOrWhiteSpace(cd.Identifier));
        Assert.Equal(MicrosoftTeam, cd.TeamId);
        Assert.True(cd.Version >= CodeDirectory.VersionTeam);
        Assert.Equal(CodeSigningHashType.Sha256, cd.HashType);
        Assert.Equal(12, cd.PageSizeLog2);
        // The code limit is where the signature starts (the whole file before LC_CODE_SIGNATURE's data).
        Assert.Equal((ulong)loc.DataOffset, cd.EffectiveCodeLimit);
        Assert.Equal((uint)((loc.DataOffset + 4095) / 4096), cd.CodeSlotCount);
        // Page 0 hash is the SHA-256 of the first 4 KiB of the file: page hashes sit where we read them.
        Assert.Equal(System.Security.Cryptography.SHA256.HashData(loc.File.AsSpan(0, 4096)), cd.GetCodeSlotHash(0).ToArray());
        var last = (int)cd.CodeSlotCount - 1;
        Assert.Equal(System.Security.Cryptography.SHA256.HashData(loc.File.AsSpan(last * 4096, (int)loc.DataOffset - last * 4096)),
            cd.GetCodeSlotHash(last).ToArray());

        // Special slot 2 = hash of the requirement set blob.
        Assert.NotNull(sig.Requirements);
        Assert.Equal(System.Security.Cryptography.SHA256.HashData(sig.Requirements!.Bytes.Span), cd.GetSpecialSlotHash(2).ToArray());

        var designated = sig.Requirements.Designated;
        Assert.NotNull(designated);
        Assert.Equal(
            $"identifier \"{cd.Identifier}\" and anchor apple generic and certificate 1[field.1.2.840.113635.100.6.2.6] /* exists */ " +
            $"and certificate leaf[field.1.2.840.113635.100.6.1.13] /* exists */ and certificate leaf[subject.OU] = {MicrosoftTeam}",
            designated!.Text);
        Assert.StartsWith("designated => ", sig.Requirements.ToText());

        Assert.NotNull(sig.Signature);
        Assert.True(sig.Signature!.CmsBytes.Length > 1000);
        Assert.Equal(0x30, sig.Signature.CmsBytes.Span[0]);
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Requirement_text_compiles_back_to_the_same_bytes(string path)
    {
        var sig = EmbeddedSignature.Parse(SignatureLocator.Locate(path).Signature, path);
        var set = sig.Requirements!;
        Assert.Equal(set.Bytes.ToArray(), RequirementCompiler.CompileSet(set.ToText()));
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Entitlement_slots_hash_into_the_code_directory(string path)
    {
        var sig = EmbeddedSignature.Parse(SignatureLocator.Locate(path).Signature, path);
        var cd = sig.CodeDirectory;
        if (sig.Entitlements is { } xml)
        {
            Assert.Contains("<plist", xml.Text);
            Assert.Equal(System.Security.Cryptography.SHA256.HashData(xml.Bytes.Span), cd.GetSpecialSlotHash(5).ToArray());
        }
        else
        {
            Assert.False(cd.HasSpecialSlotHash(5));
        }
        if (sig.DerEntitlements is { } der)
        {
            Assert.Equal(0x70, der.Payload.Span[0]); // DER entitlements are an [APPLICATION 16] constructed value
            Assert.Equal(System.Security.Cryptography.SHA256.HashData(der.Bytes.Span), cd.GetSpecialSlotHash(7).ToArray());
        }
    }

    [Fact]
    public void Createdump_carries_entitlements()
    {
        var path = Corpus.RuntimePackMachOFiles().First(f => Path.GetFileName(f) == "createdump");
        var sig = EmbeddedSignature.Parse(SignatureLocator.Locate(path).Signature, path);
        Assert.NotNull(sig.Entitlements);
        Assert.NotNull(sig.DerEntitlements);
        Assert.Equal([0u, 2u, 5u, 7u, 0x10000u], sig.Blobs.Select(b => b.Slot));
    }

    [Fact]
    public void Every_truncation_is_a_typed_failure()
    {
        var path = Corpus.RuntimePackMachOFiles().First(f => f.EndsWith("libhostfxr.dylib", StringComparison.Ordinal));
        var full = SignatureLocator.Locate(path).Signature.ToArray();
        var declared = (int)BinaryPrimitives.ReadUInt32BigEndian(full.AsSpan(4));
        for (var n = 0; n < declared; n += n < 256 ? 1 : 97)
        {
            var ex = Assert.Throws<CodeSignatureFormatException>(() => EmbeddedSignature.Parse(full.AsMemory(0, n), "truncated"));
            Assert.Equal("truncated", ex.SourceName);
            Assert.False(string.IsNullOrEmpty(ex.Rule));
            Assert.InRange(ex.Offset, 0, declared);
        }
        Assert.NotNull(EmbeddedSignature.Parse(full.AsMemory(0, declared), "exact"));
    }

    [Fact]
    public void Structural_violations_are_reported_with_rule_and_offset()
    {
        var path = Corpus.RuntimePackMachOFiles().First(f => f.EndsWith("libhostfxr.dylib", StringComparison.Ordinal));
        var good = SignatureLocator.Locate(path).Signature.ToArray();

        var badMagic = (byte[])good.Clone();
        badMagic[0] = 0;
        Assert.Equal(0, Assert.Throws<CodeSignatureFormatException>(() => EmbeddedSignature.Parse(badMagic, null)).Offset);

        var hugeCount = (byte[])good.Clone();
        BinaryPrimitives.WriteUInt32BigEndian(hugeCount.AsSpan(8), 0x7fffffff);
        Assert.Contains("count", Assert.Throws<CodeSignatureFormatException>(() => EmbeddedSignature.Parse(hugeCount, null)).Rule);

        var intoIndex = (byte[])good.Clone();
        BinaryPrimitives.WriteUInt32BigEndian(intoIndex.AsSpan(16), 12);
        Assert.Equal(16, Assert.Throws<CodeSignatureFormatException>(() => EmbeddedSignature.Parse(intoIndex, null)).Offset);

        var overlapping = (byte[])good.Clone();
        var cdOffset = BinaryPrimitives.ReadUInt32BigEndian(good.AsSpan(16));
        BinaryPrimitives.WriteUInt32BigEndian(overlapping.AsSpan(20), CodeSignatureSlot.AlternateCodeDirectoryFirst);
        BinaryPrimitives.WriteUInt32BigEndian(overlapping.AsSpan(24), cdOffset);
        Assert.Contains("overlaps", Assert.Throws<CodeSignatureFormatException>(() => EmbeddedSignature.Parse(overlapping, null)).Rule);

        var hashTypeBad = (byte[])good.Clone();
        hashTypeBad[cdOffset + 37] = 9;
        Assert.Equal(cdOffset + 37, Assert.Throws<CodeSignatureFormatException>(() => EmbeddedSignature.Parse(hashTypeBad, null)).Offset);

        var slotsOutside = (byte[])good.Clone();
        BinaryPrimitives.WriteUInt32BigEndian(slotsOutside.AsSpan((int)cdOffset + 28), 0xffffffff);
        Assert.Throws<CodeSignatureFormatException>(() => EmbeddedSignature.Parse(slotsOutside, null));
    }

    [Fact]
    public void Random_mutations_parse_or_fail_with_the_typed_exception()
    {
        var samples = Corpus.RuntimePackMachOFiles()
            .Where(f => f.EndsWith("createdump", StringComparison.Ordinal) || f.EndsWith("libhostpolicy.dylib", StringComparison.Ordinal))
            .Select(f => SignatureLocator.Locate(f).Signature.ToArray())
            .ToArray();
        // Mutations concentrated in the structural part (index, CodeDirectory header, requirements), plus anywhere.
        var gen = Gen.Select(
            Gen.Int[0, samples.Length - 1],
            Gen.Select(Gen.Int[0, 700], Gen.Byte).Array[1, 6],
            Gen.Int[0, 3],
            Gen.Int[0, 2000]);
        Check.Sample(gen, t =>
        {
            var (which, edits, mode, cut) = t;
            var bytes = (byte[])samples[which].Clone();
            foreach (var (pos, value) in edits)
            {
                var at = mode == 3 ? pos * 97 % bytes.Length : pos;
                bytes[at] = value;
            }
            var length = mode == 2 ? Math.Max(0, bytes.Length - cut * 37) : bytes.Length;
            try
            {
                var sig = EmbeddedSignature.Parse(bytes.AsMemory(0, length), "fuzz");
                foreach (var cd in sig.AllCodeDirectories)
                {
                    _ = cd.ComputeCdHash();
                    _ = cd.Identifier + cd.TeamId;
                    for (var i = 1; i <= cd.SpecialSlotCount; i++)
                    {
                        _ = cd.GetSpecialSlotHash(i);
                    }
                    if (cd.CodeSlotCount > 0)
                    {
                        _ = cd.GetCodeSlotHash((int)cd.CodeSlotCount - 1);
                    }
                }
                _ = sig.Requirements?.ToText();
            }
            catch (CodeSignatureFormatException)
            {
            }
        }, iter: 3000);
    }
}

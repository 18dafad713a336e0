using System.Security.Cryptography;
using System.Text;
using KextTrust.Formats.CodeSigning;

namespace KextTrust.Formats.Tests.CodeSigning;

public class BuilderTests
{
    private static byte[] Code(int length)
    {
        var code = new byte[length];
        new Random(1234).NextBytes(code);
        return code;
    }

    [Theory]
    [InlineData(CodeSigningHashType.Sha256, 10_000)]
    [InlineData(CodeSigningHashType.Sha1, 8192)]
    [InlineData(CodeSigningHashType.Sha384, 1)]
    [InlineData(CodeSigningHashType.Sha256Truncated, 4097)]
    public void Built_code_directory_parses_back_to_its_inputs(CodeSigningHashType type, int length)
    {
        var code = Code(length + 100);
        var reqs = RequirementCompiler.CompileSet("designated => identifier \"com.example.kext\" and anchor apple generic");
        var reqHash = EmbeddedSignatureBuilder.SpecialSlotHash(type, reqs);
        var builder = new CodeDirectoryBuilder
        {
            Identifier = "com.example.kext",
            TeamId = "ABCDE12345",
            HashType = type,
            CodeLimit = (ulong)length,
            ExecSegBase = 0,
            ExecSegLimit = 0x4000,
            ExecSegFlags = 1,
            Flags = CodeDirectoryFlags.Runtime,
            SpecialSlotHashes = new Dictionary<int, byte[]> { [2] = reqHash },
        };
        var blob = builder.Build(code);
        var cd = CodeDirectory.Parse(blob, "built");
        Assert.Equal(0x20400u, cd.Version);
        Assert.Equal("com.example.kext", cd.Identifier);
        Assert.Equal("ABCDE12345", cd.TeamId);
        Assert.Equal(type, cd.HashType);
        Assert.Equal(CodeSigningHash.SizeOf(type), cd.HashSize);
        Assert.Equal(4096, cd.PageSize);
        Assert.Equal((ulong)length, cd.EffectiveCodeLimit);
        Assert.Equal(0x4000ul, cd.ExecSegLimit);
        Assert.Equal(1ul, cd.ExecSegFlags);
        Assert.Equal(CodeDirectoryFlags.Runtime, cd.Flags);
        Assert.Equal(2u, cd.SpecialSlotCount);
        Assert.Equal(reqHash, cd.GetSpecialSlotHash(2).ToArray());
        Assert.False(cd.HasSpecialSlotHash(1));
        Assert.Equal((uint)((length + 4095) / 4096), cd.CodeSlotCount);
        for (var i = 0; i < cd.CodeSlotCount; i++)
        {
            var page = code.AsSpan(i * 4096, Math.Min(4096, length - i * 4096));
            var full = type switch
            {
                CodeSigningHashType.Sha1 => SHA1.HashData(page),
                CodeSigningHashType.Sha384 => SHA384.HashData(page),
                _ => SHA256.HashData(page),
            };
            Assert.Equal(full.AsSpan(0, cd.HashSize).ToArray(), cd.GetCodeSlotHash(i).ToArray());
        }
        var expectedCdHash = (type switch
        {
            CodeSigningHashType.Sha1 => SHA1.HashData(blob),
            CodeSigningHashType.Sha384 => SHA384.HashData(blob),
            _ => SHA256.HashData(blob),
        }).AsSpan(0, 20).ToArray();
        Assert.Equal(expectedCdHash, cd.ComputeCdHash());
    }

    [Fact]
    public void Built_super_blob_parses_back_with_every_slot()
    {
        var code = Code(5000);
        var reqs = RequirementCompiler.CompileSet("designated => identifier \"com.example.kext\" and anchor apple generic");
        var ent = EmbeddedSignatureBuilder.WrapEntitlements(Encoding.UTF8.GetBytes("<plist version=\"1.0\"><dict/></plist>"));
        var cd1 = new CodeDirectoryBuilder { Identifier = "com.example.kext", HashType = CodeSigningHashType.Sha1, Flags = CodeDirectoryFlags.Adhoc }.Build(code);
        var cd256 = new CodeDirectoryBuilder { Identifier = "com.example.kext", Flags = CodeDirectoryFlags.Adhoc }.Build(code);
        var blob = new EmbeddedSignatureBuilder
        {
            CodeDirectory = cd1,
            Requirements = reqs,
            Entitlements = ent,
            AlternateCodeDirectories = [cd256],
            Cms = [],
        }.Build();
        var sig = EmbeddedSignature.Parse(blob, "built");
        Assert.Equal([0u, 2u, 5u, 0x1000u, 0x10000u], sig.Blobs.Select(b => b.Slot));
        Assert.Equal(cd1, sig.CodeDirectory.Bytes.ToArray());
        Assert.Equal(cd256, Assert.Single(sig.AlternateCodeDirectories).Bytes.ToArray());
        Assert.Equal(CodeSigningHashType.Sha256, sig.AlternateCodeDirectories[0].HashType);
        Assert.Null(sig.CodeDirectory.TeamId);
        Assert.Equal(reqs, sig.Requirements!.Bytes.ToArray());
        Assert.Equal("<plist version=\"1.0\"><dict/></plist>", sig.Entitlements!.Text);
        Assert.Equal(0, sig.Signature!.CmsBytes.Length);
        Assert.Equal(blob, sig.Bytes.ToArray());
    }

    [Fact]
    public void Builder_rejects_bad_inputs()
    {
        Assert.Throws<ArgumentException>(() => new CodeDirectoryBuilder { Identifier = "" }.Build(new byte[10]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new CodeDirectoryBuilder { Identifier = "x", CodeLimit = 11 }.Build(new byte[10]));
        Assert.Throws<ArgumentException>(() => new CodeDirectoryBuilder
        {
            Identifier = "x",
            SpecialSlotHashes = new Dictionary<int, byte[]> { [1] = new byte[20] },
        }.Build(new byte[10]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new CodeDirectoryBuilder
        {
            Identifier = "x",
            SpecialSlotHashes = new Dictionary<int, byte[]> { [8] = new byte[32] },
        }.Build(new byte[10]));
    }
}

using System.Buffers.Binary;
using CsCheck;
using KextTrust.Formats.MachO;
using KextTrust.TestSupport;

namespace KextTrust.Formats.Tests.MachO;

/// <summary>Malformed input: every failure is a MachOFormatException at the right absolute offset.</summary>
public sealed class MachOHostileInputTests
{
    private static byte[] KextX64() => MachOFixtures.Kext(MachOTargetArchitecture.X86_64).Build();

    private static MachOFormatException Fails(byte[] bytes, string name = "hostile")
    {
        var ex = Assert.Throws<MachOFormatException>(() => Parse(bytes, name));
        Assert.Equal(name, ex.SourceName);
        Assert.Equal("Mach-O", ex.Format);
        return ex;
    }

    /// <summary>Parses everything the reader offers, nested fileset entries included.</summary>
    private static int Parse(ReadOnlyMemory<byte> bytes, string name)
    {
        var file = MachOFile.FromBytes(bytes, name);
        var n = 0;
        foreach (var slice in file.Slices)
        {
            n += slice.UndefinedSymbols.Count + slice.CodeSignatureData.Length;
            foreach (var entry in slice.FilesetEntries)
            {
                n += slice.OpenFilesetEntry(entry).UndefinedSymbols.Count;
            }
        }
        return n;
    }

    private static void PutU32(byte[] b, long at, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan((int)at), v);

    [Fact]
    public void TruncationAtEveryHeaderAndCommandBoundaryFails()
    {
        var bytes = KextX64();
        var slice = MachOFile.FromBytes(bytes).Slices[0];
        var cuts = new SortedSet<int> { 0, 3, 4, 8, 12, 16, 20, 24, 28, 31, 32, bytes.Length - 1 };
        foreach (var c in slice.LoadCommands)
        {
            cuts.Add((int)c.FileOffset);
            cuts.Add((int)c.FileOffset + 4);
            cuts.Add((int)(c.FileOffset + c.Size) - 1);
        }
        foreach (var seg in slice.Segments)
        {
            cuts.Add((int)seg.FileOffset + 1);
        }
        foreach (var cut in cuts)
        {
            var ex = Fails(bytes[..cut]);
            Assert.InRange(ex.Offset, 0, cut + 32);
        }
        Assert.Equal(0, Fails(bytes[..20]).Offset);
        Assert.Equal(20, Fails(bytes[..100]).Offset);
    }

    [Fact]
    public void BadCmdsizeIsReportedAtTheCommand()
    {
        var bytes = KextX64();
        var slice = MachOFile.FromBytes(bytes).Slices[0];
        foreach (var bad in new uint[] { 0, 4, 74 })
        {
            var b = (byte[])bytes.Clone();
            PutU32(b, 36, bad);
            var ex = Fails(b);
            Assert.Equal(36, ex.Offset);
            Assert.Contains("cmdsize", ex.Rule);
        }
        var last = slice.LoadCommands[^1];
        var past = (byte[])bytes.Clone();
        PutU32(past, last.FileOffset + 4, last.Size + 8);
        var e = Fails(past);
        Assert.Equal(last.FileOffset + 4, e.Offset);
        Assert.Contains("past sizeofcmds", e.Rule);
        var ncmds = (byte[])bytes.Clone();
        PutU32(ncmds, 16, 0x10000000);
        Assert.Equal(16, Fails(ncmds).Offset);
    }

    [Fact]
    public void NsectsTooLargeFails()
    {
        var b = KextX64();
        PutU32(b, 32 + 64, 1000);
        var ex = Fails(b);
        Assert.Equal(32 + 64, ex.Offset);
        Assert.Contains("nsects", ex.Rule);
    }

    [Fact]
    public void SymtabOutOfRangeAndBadStrxFail()
    {
        var bytes = KextX64();
        var slice = MachOFile.FromBytes(bytes).Slices[0];
        var symtab = slice.LoadCommands.Single(c => c.Command == MachOLoadCommandType.Symtab).FileOffset;
        var b = (byte[])bytes.Clone();
        PutU32(b, symtab + 8, 0xFFFFFFF0);
        Assert.Equal(symtab + 8, Fails(b).Offset);
        b = (byte[])bytes.Clone();
        PutU32(b, symtab + 12, 0x7FFFFFFF);
        Assert.Equal(symtab + 8, Fails(b).Offset);
        b = (byte[])bytes.Clone();
        PutU32(b, symtab + 20, (uint)bytes.Length);
        Assert.Equal(symtab + 16, Fails(b).Offset);
        b = (byte[])bytes.Clone();
        PutU32(b, slice.SymbolTable!.SymbolOffset + 16, 0xFFFFFF);
        var ex = Fails(b);
        Assert.Equal(slice.SymbolTable.SymbolOffset + 16, ex.Offset);
        Assert.Contains("n_strx", ex.Rule);
    }

    [Fact]
    public void OverlappingFatSlicesFail()
    {
        var fat = MachOFixtures.Fat();
        var b = (byte[])fat.Clone();
        var first = BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(16));
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(20), (uint)fat.Length - first);
        var ex = Fails(b);
        Assert.Equal(8 + 20 + 8, ex.Offset);
        Assert.Contains("overlaps", ex.Rule);
        b = (byte[])fat.Clone();
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(16), 4);
        Assert.Equal(16, Fails(b).Offset);
    }

    [Fact]
    public void HugeNfatArchAndJavaClassAreRefused()
    {
        var b = MachOFixtures.Fat();
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(4), 0x01000000);
        Assert.False(MachOFile.IsMachO(b));
        var ex = Fails(b);
        Assert.Equal(4, ex.Offset);
        Assert.Contains("nfat_arch", ex.Rule);
        byte[] javaClass = [0xCA, 0xFE, 0xBA, 0xBE, 0x00, 0x00, 0x00, 0x34, 0x00, 0x1D, 0x0A, 0x00];
        Assert.False(MachOFile.IsMachO(javaClass));
        Assert.Contains("Java", Fails(javaClass).Rule);
        Assert.False(MachOFile.IsMachO([0x7F, (byte)'E', (byte)'L', (byte)'F']));
        Assert.Equal(0, Fails([0x7F, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1, 0]).Offset);
    }

    [Fact]
    public void FilesetLoopsAndNestingAreRefused()
    {
        var bytes = MachOFixtures.Fileset(MachOTargetArchitecture.X86_64);
        var slice = MachOFile.FromBytes(bytes).Slices[0];
        var entry = slice.FilesetEntries[0];
        var b = (byte[])bytes.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan((int)entry.CommandFileOffset + 16), 0);
        var ex = Fails(b);
        Assert.Equal(entry.CommandFileOffset + 16, ex.Offset);
        Assert.Contains("loop", ex.Rule);
        b = (byte[])bytes.Clone();
        PutU32(b, (long)entry.FileOffset + 12, (uint)MachOFileType.Fileset);
        ex = Fails(b);
        Assert.Equal((long)entry.FileOffset + 12, ex.Offset);
        Assert.Contains("nested", ex.Rule);
    }

    [Fact]
    public void ChainedFixupImportsOutOfRangeFail()
    {
        var path = Corpus.RuntimePackMachOFiles().First(p => p.Contains("osx-arm64") && p.EndsWith("libSystem.Native.dylib"));
        var bytes = File.ReadAllBytes(path);
        var fx = MachOFile.FromBytes(bytes).Slices[0].LoadCommands.Single(c => c.Command == MachOLoadCommandType.DyldChainedFixups);
        var dataoff = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan((int)fx.FileOffset + 8));
        var b = (byte[])bytes.Clone();
        PutU32(b, dataoff + 16, 0x40000000);
        Assert.Equal(dataoff + 8, Fails(b).Offset);
        b = (byte[])bytes.Clone();
        PutU32(b, dataoff + 20, 9);
        Assert.Equal(dataoff + 20, Fails(b).Offset);
        b = (byte[])bytes.Clone();
        PutU32(b, dataoff + 12, 0xFFFFFF00);
        Assert.Equal(dataoff + 12, Fails(b).Offset);
    }

    [Fact]
    public void MutatedFilesOnlyEverThrowMachOFormatExceptionWithBoundedAllocation()
    {
        var inputs = Corpus.RuntimePackMachOFiles()
            .Where(p => new FileInfo(p).Length < 250_000)
            .Select(File.ReadAllBytes)
            .Concat([KextX64(), MachOFixtures.Kext(MachOTargetArchitecture.Arm64e).Build(), MachOFixtures.Fat(), MachOFixtures.Fileset()])
            .ToArray();
        Assert.True(inputs.Length >= 8);
        var gen = Gen.Select(Gen.Int[0, inputs.Length - 1], Gen.Int[0, 3], Gen.Int, Gen.UInt, Gen.Int[1, 16]);
        gen.Sample((index, kind, seed, value, count) =>
        {
            var bytes = Mutate(inputs[index], kind, seed, value, count);
            var before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                Parse(bytes, "mutant");
            }
            catch (MachOFormatException)
            {
            }
            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated < 4L * bytes.Length + (1 << 20), $"parse allocated {allocated} bytes for a {bytes.Length}-byte file");
        }, iter: 2000);
    }

    private static byte[] Mutate(byte[] source, int kind, int seed, uint value, int count)
    {
        var rng = new Random(seed);
        switch (kind)
        {
            case 0:
            {
                var b = (byte[])source.Clone();
                for (var i = 0; i < count; i++)
                {
                    b[rng.Next(b.Length)] ^= (byte)rng.Next(1, 256);
                }
                return b;
            }
            case 1:
                return source[..rng.Next(source.Length)];
            case 2:
            {
                var at = rng.Next(source.Length);
                var insert = new byte[count];
                rng.NextBytes(insert);
                return [.. source.AsSpan(0, at), .. insert, .. source.AsSpan(at)];
            }
            default:
            {
                var b = (byte[])source.Clone();
                var header = MachOFile.IsMachO(b) && BinaryPrimitives.ReadUInt32BigEndian(b) != MachOFile.FatMagic
                    ? 32 + (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(20)), (uint)(b.Length - 36))
                    : Math.Min(b.Length - 4, 128);
                var at = rng.Next(header / 4) * 4;
                BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at), value);
                return b;
            }
        }
    }
}

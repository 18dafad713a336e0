using System.Buffers.Binary;
using System.Text.RegularExpressions;
using KextTrust.Formats.MachO;
using KextTrust.TestSupport;

namespace KextTrust.Formats.Tests.MachO;

/// <summary><see cref="FilesetBuilder.AddEntry(string, ReadOnlyMemory{byte})"/>: embedding already-built Mach-O bytes.</summary>
public sealed class FilesetEmbedTests
{
    [Theory]
    [InlineData(MachOTargetArchitecture.Arm64e)]
    [InlineData(MachOTargetArchitecture.X86_64)]
    public void EmbeddedBytesRelocateExactlyAsTheBuilderLaysOutAnEntry(MachOTargetArchitecture arch)
    {
        var fromBuilders = new FilesetBuilder(arch) { PrelinkInfo = MachOFixtures.PrelinkPlist, VmBase = 0xFFFFFE0007004000 };
        var fromBytes = new FilesetBuilder(arch) { PrelinkInfo = MachOFixtures.PrelinkPlist, VmBase = 0xFFFFFE0007004000 };
        foreach (var id in MachOFixtures.FilesetIds)
        {
            var kext = MachOFixtures.Kext(arch, id.Split('.')[^1]);
            fromBuilders.AddEntry(id, kext);
            fromBytes.AddEntry(id, kext.Build());
        }
        // The builder lays a kext out at (fileBase, vmBase) directly; relocating the standalone file must give the same bytes.
        Assert.Equal(fromBuilders.Build(), fromBytes.Build());
    }

    [Fact]
    public void EmbeddedEntriesReadBackWithTheirSymbolsAndLlvm19NamesTheFileset()
    {
        var kexts = MachOFixtures.FilesetIds.Select(id => MachOFixtures.Kext(MachOTargetArchitecture.Arm64e, id.Split('.')[^1]).Build()).ToArray();
        var builder = new FilesetBuilder(MachOTargetArchitecture.Arm64e) { PrelinkInfo = MachOFixtures.PrelinkPlist, VmBase = 0xFFFFFE0000000000 };
        for (var i = 0; i < kexts.Length; i++)
        {
            builder.AddEntry(MachOFixtures.FilesetIds[i], kexts[i]);
        }
        var bytes = builder.Build();
        var fileset = MachOFile.FromBytes(bytes, "kc").Slices[0];
        Assert.Equal(MachOFixtures.FilesetIds, fileset.FilesetEntries.Select(e => e.EntryId));
        for (var i = 0; i < kexts.Length; i++)
        {
            var entry = fileset.FilesetEntries[i];
            var alone = MachOFile.FromBytes(kexts[i]).Slices[0];
            var embedded = fileset.OpenFilesetEntry(entry);
            Assert.Equal(alone.UndefinedSymbols, embedded.UndefinedSymbols);
            Assert.Equal(alone.DefinedExternalSymbols.Select(s => (s.Name, s.Value + entry.VmAddress)), embedded.DefinedExternalSymbols.Select(s => (s.Name, s.Value)));
            Assert.Equal(entry.VmAddress, embedded.Segments[0].VmAddress);
            Assert.Equal(entry.FileOffset, embedded.Segments[0].FileOffset);
            var t1 = alone.Segments[0].Sections[0];
            var t2 = embedded.Segments[0].Sections[0];
            Assert.Equal(t1.Offset + entry.FileOffset, t2.Offset);
            Assert.Equal(alone.Data.Slice((int)t1.Offset, (int)t1.Size).ToArray(), embedded.Data.Slice((int)t2.Offset, (int)t2.Size).ToArray());
        }

        using var dir = new TempDir();
        var path = dir.Combine("kc");
        File.WriteAllBytes(path, bytes);
        var r = ExternalTool.Run(ExternalTool.LlvmObjdump19, "--macho", "--private-headers", path);
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("", r.StdErr);
        Assert.Matches(@"MH_MAGIC_64\s+ARM64\s+E\s+\S+\s+FILESET", r.StdOut);
        Assert.Equal(3, Regex.Matches(r.StdOut, @"cmd \?\(0x80000035\)").Count);
    }

    [Fact]
    public void FatWrongArchitectureFilesetAndGarbageAreRefused()
    {
        var builder = new FilesetBuilder(MachOTargetArchitecture.Arm64e);
        Assert.Throws<ArgumentException>(() => builder.AddEntry("fat", MachOFixtures.Fat()));
        Assert.Throws<ArgumentException>(() => builder.AddEntry("x86", MachOFixtures.Kext(MachOTargetArchitecture.X86_64).Build()));
        Assert.Throws<ArgumentException>(() => builder.AddEntry("arm64", MachOFixtures.Kext(MachOTargetArchitecture.Arm64).Build()));
        Assert.Throws<ArgumentException>(() => builder.AddEntry("kc", MachOFixtures.Fileset()));
        Assert.Throws<ArgumentException>(() => builder.AddEntry("junk", new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 }));
    }

    [Fact]
    public void UnknownLoadCommandIsRefusedRatherThanLeftPointingAtTheWrongBytes()
    {
        var kext = MachOFixtures.Kext(MachOTargetArchitecture.Arm64e).Build();
        // Turn LC_UUID (24 bytes, after the segments) into LC_NOTE-sized unknown command 0x31 (LC_NOTE carries a file offset).
        var slice = MachOFile.FromBytes(kext).Slices[0];
        var uuid = slice.LoadCommands.Single(c => c.Command == MachOLoadCommandType.Uuid);
        BinaryPrimitives.WriteUInt32LittleEndian(kext.AsSpan((int)uuid.FileOffset), 0x31);
        var e = Assert.Throws<ArgumentException>(() => new FilesetBuilder(MachOTargetArchitecture.Arm64e).AddEntry("note", kext));
        Assert.Contains("0x31", e.Message);
    }
}

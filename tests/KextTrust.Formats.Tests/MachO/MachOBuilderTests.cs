using System.Text.RegularExpressions;
using KextTrust.Formats.MachO;
using KextTrust.TestSupport;

namespace KextTrust.Formats.Tests.MachO;

/// <summary>Fixtures from our builders, read back by our reader and by llvm-14.</summary>
public sealed class MachOBuilderTests
{
    [Theory]
    [InlineData(MachOTargetArchitecture.X86_64, "x86_64", "X86_64", "ALL", 0x1000)]
    [InlineData(MachOTargetArchitecture.Arm64, "arm64", "ARM64", "ALL", 0x4000)]
    [InlineData(MachOTargetArchitecture.Arm64e, "arm64e", "ARM64", "E", 0x4000)]
    public void KextReadsBackInOurReaderAndLlvm(MachOTargetArchitecture arch, string name, string llvmCpu, string llvmSub, int page)
    {
        var builder = MachOFixtures.Kext(arch);
        var bytes = builder.Build();
        var slice = Assert.Single(MachOFile.FromBytes(bytes, "kext").Slices);
        Assert.Equal(name, slice.Architecture);
        Assert.Equal(MachOFileType.KextBundle, slice.FileType);
        Assert.False(slice.Flags.HasFlag(MachOHeaderFlags.NoUndefs));
        Assert.Equal(builder.Uuid, slice.Uuid);
        Assert.Equal(MachOPlatform.MacOS, slice.BuildVersion!.Platform);
        Assert.Equal("11.0.0", slice.BuildVersion.MinOS.ToString());
        Assert.Equal("14.2.1", slice.BuildVersion.Sdk.ToString());
        Assert.Equal(MachOFixtures.Imports.Order(StringComparer.Ordinal), slice.UndefinedSymbols);
        Assert.Equal(["_kext_start", "_kext_stop", "_kmod_info"], slice.DefinedExternalSymbols.Select(s => s.Name));
        Assert.Equal(["__TEXT", "__DATA", "__LINKEDIT"], slice.Segments.Select(s => s.Name));
        Assert.All(slice.Segments, s => Assert.Equal(0ul, s.FileOffset % (ulong)page));
        var text = slice.Segments[0].Sections.Single(s => s.SectionName == "__text");
        Assert.Equal(builder.Text.ToArray(), slice.Data.Slice((int)text.Offset, (int)text.Size).ToArray());
        Assert.Equal(text.Address + 4, slice.DefinedExternalSymbols.Single(s => s.Name == "_kext_stop").Value);
        var firstSection = slice.Segments.SelectMany(s => s.Sections).Min(s => s.Offset);
        Assert.True(firstSection - 32 - slice.SizeOfCommands >= 0x1000, "at least 0x1000 bytes of free load-command space");
        Assert.Equal(3u, slice.DynamicSymbolTable!.ExternalDefinedSymbolCount);
        Assert.Equal(4u, slice.DynamicSymbolTable.UndefinedSymbolCount);

        using var dir = new TempDir();
        var path = dir.Combine("kext");
        File.WriteAllBytes(path, bytes);
        var headers = ExternalTool.Run(ExternalTool.LlvmObjdump, "--macho", "--private-headers", path);
        Assert.Equal(0, headers.ExitCode);
        Assert.Equal("", headers.StdErr);
        var m = MachOCorpusTests.HeaderLine().Match(headers.StdOut);
        Assert.Equal(name, MachOCorpusTests.LlvmArch(m.Groups["cpu"].Value, m.Groups["sub"].Value));
        Assert.Equal(llvmCpu, m.Groups["cpu"].Value);
        Assert.Equal(llvmSub, m.Groups["sub"].Value);
        Assert.Equal("KEXTBUNDLE", m.Groups["type"].Value);
        Assert.Equal(slice.UuidString, MachOCorpusTests.UuidLine().Match(headers.StdOut).Groups[1].Value);
        Assert.Matches(@"platform macos\n\s+sdk 14\.2\.1\n\s+minos 11\.0", headers.StdOut);
        var undefined = ExternalTool.RunChecked(ExternalTool.LlvmNm, "-u", path).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(slice.UndefinedSymbols, undefined);
        var defined = ExternalTool.RunChecked(ExternalTool.LlvmNm, "-g", "--defined-only", path).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(slice.DefinedExternalSymbols.Select(s => $"{s.Value:x16} {(s.Section == 1 ? 'T' : 'D')} {s.Name}"), defined);
    }

    [Fact]
    public void KextWithoutImportsSetsNoUndefs()
    {
        var bytes = new KextBinaryBuilder(MachOTargetArchitecture.X86_64, new byte[] { 0xC3 }).AddDefinedSymbol("_f", KextSymbolSection.Text).Build();
        var slice = MachOFile.FromBytes(bytes).Slices[0];
        Assert.True(slice.Flags.HasFlag(MachOHeaderFlags.NoUndefs));
        Assert.Empty(slice.UndefinedSymbols);
        Assert.Equal(["__TEXT", "__LINKEDIT"], slice.Segments.Select(s => s.Name));
    }

    [Fact]
    public void BuildersAreDeterministic()
    {
        Assert.Equal(MachOFixtures.Kext(MachOTargetArchitecture.Arm64e).Build(), MachOFixtures.Kext(MachOTargetArchitecture.Arm64e).Build());
        Assert.Equal(MachOFixtures.Fat(), MachOFixtures.Fat());
        Assert.Equal(MachOFixtures.Fileset(), MachOFixtures.Fileset());
    }

    [Fact]
    public void FatOfBothReadsBack()
    {
        var bytes = MachOFixtures.Fat();
        Assert.True(MachOFile.IsMachO(bytes));
        var file = MachOFile.FromBytes(bytes, "fat");
        Assert.True(file.IsFat);
        Assert.Equal(["x86_64", "arm64e"], file.Slices.Select(s => s.Architecture));
        Assert.Equal(0, file.Slices[0].FileOffset % 0x1000);
        Assert.Equal(0, file.Slices[1].FileOffset % 0x4000);
        Assert.Equal(MachOFixtures.Kext(MachOTargetArchitecture.Arm64e).Build(), file.Slices[1].Data.ToArray());
        Assert.All(file.Slices, s => Assert.Equal(MachOFixtures.Imports.Order(StringComparer.Ordinal), s.UndefinedSymbols));

        using var dir = new TempDir();
        var path = dir.Combine("fat");
        File.WriteAllBytes(path, bytes);
        var fat = ExternalTool.Run(ExternalTool.LlvmObjdump, "--macho", "--universal-headers", "--private-headers", "--arch=all", path);
        Assert.Equal(0, fat.ExitCode);
        Assert.Equal("", fat.StdErr);
        Assert.Equal("2", Regex.Match(fat.StdOut, @"nfat_arch (\d+)").Groups[1].Value);
        var uuids = MachOCorpusTests.UuidLine().Matches(fat.StdOut).Select(m => m.Groups[1].Value);
        Assert.Equal(file.Slices.Select(s => s.UuidString), uuids);
        var arm = ExternalTool.RunChecked(ExternalTool.LlvmNm, "-u", "--arch=arm64e", path).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(file.Slices[1].UndefinedSymbols, arm);
    }

    [Theory]
    [InlineData(MachOTargetArchitecture.Arm64e)]
    [InlineData(MachOTargetArchitecture.X86_64)]
    public void FilesetOfThreeKextsReadsBack(MachOTargetArchitecture arch)
    {
        var bytes = MachOFixtures.Fileset(arch);
        var fileset = Assert.Single(MachOFile.FromBytes(bytes, "kc").Slices);
        Assert.Equal(MachOFileType.Fileset, fileset.FileType);
        Assert.Equal(MachOFixtures.FilesetIds, fileset.FilesetEntries.Select(e => e.EntryId));
        var info = fileset.Segments.Single(s => s.Name == "__PRELINK_INFO").Sections.Single();
        Assert.Equal("__info", info.SectionName);
        Assert.Equal(MachOFixtures.PrelinkPlist, fileset.Data.Slice((int)info.Offset, (int)info.Size).ToArray());
        Assert.Contains(fileset.Segments, s => s.Name == "__LINKEDIT");
        var page = arch == MachOTargetArchitecture.X86_64 ? 0x1000ul : 0x4000ul;
        foreach (var entry in fileset.FilesetEntries)
        {
            Assert.Equal(0ul, entry.FileOffset % page);
            var kext = fileset.OpenFilesetEntry(entry);
            var seed = entry.EntryId.Split('.')[^1];
            Assert.Equal(MachOFileType.KextBundle, kext.FileType);
            Assert.Equal((long)entry.FileOffset, kext.HeaderOffset);
            Assert.Equal(MachOFixtures.UuidFor(seed + arch), kext.Uuid);
            Assert.Equal(MachOFixtures.Imports.Order(StringComparer.Ordinal), kext.UndefinedSymbols);
            Assert.Equal([$"_{seed}_start", $"_{seed}_stop", "_kmod_info"], kext.DefinedExternalSymbols.Select(s => s.Name));
            Assert.Equal(entry.FileOffset, kext.Segments[0].FileOffset);
            Assert.Equal(entry.VmAddress, kext.Segments[0].VmAddress);
        }

        // Each entry reads the same as the standalone kext that llvm verifies in KextReadsBackInOurReaderAndLlvm.
        foreach (var entry in fileset.FilesetEntries)
        {
            var seed = entry.EntryId.Split('.')[^1];
            var alone = MachOFile.FromBytes(MachOFixtures.Kext(arch, seed).Build()).Slices[0];
            var kext = fileset.OpenFilesetEntry(entry);
            Assert.Equal(alone.SizeOfCommands, kext.SizeOfCommands);
            var t1 = alone.Segments[0].Sections[0];
            var t2 = kext.Segments[0].Sections[0];
            Assert.Equal(alone.Data.Slice((int)t1.Offset, (int)t1.Size).ToArray(), kext.Data.Slice((int)t2.Offset, (int)t2.Size).ToArray());
            Assert.Equal(alone.DefinedExternalSymbols.Select(s => s.Value - t1.Address), kext.DefinedExternalSymbols.Select(s => s.Value - t2.Address));
        }

        // llvm-14 predates MH_FILESET (its identify_magic rejects filetype 0xC and it has no LC_FILESET_ENTRY name),
        // so it checks the same bytes with the filetype patched to MH_KEXT_BUNDLE: every load command, segment and
        // section range must still satisfy its validator.
        using var dir = new TempDir();
        var path = dir.Combine("kc");
        var patched = (byte[])bytes.Clone();
        patched[12] = (byte)MachOFileType.KextBundle;
        File.WriteAllBytes(path, patched);
        var r = ExternalTool.Run(ExternalTool.LlvmObjdump, "--macho", "--private-headers", path);
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("", r.StdErr);
        Assert.Equal(6, int.Parse(MachOCorpusTests.HeaderLine().Match(r.StdOut).Groups["ncmds"].Value));
        Assert.Equal(3, Regex.Matches(r.StdOut, @"cmd \?\(0x80000035\)").Count);
        Assert.Equal(["__TEXT", "__PRELINK_INFO", "__LINKEDIT"], MachOCorpusTests.SegmentNames().Matches(r.StdOut).Select(m => m.Groups[1].Value));
    }
}

using System.Text.RegularExpressions;
using KextTrust.Formats.MachO;
using KextTrust.TestSupport;

namespace KextTrust.Formats.Tests.MachO;

/// <summary>Our reader against llvm-14 on Microsoft-signed Mach-O files we did not write.</summary>
public sealed partial class MachOCorpusTests
{
    public static TheoryData<string> Files()
    {
        var data = new TheoryData<string>();
        foreach (var f in Corpus.RuntimePackMachOFiles())
        {
            data.Add(f);
        }
        return data;
    }

    [Fact]
    public void CorpusIsNotEmpty() => Assert.True(Corpus.RuntimePackMachOFiles().Count >= 20);

    [Theory]
    [MemberData(nameof(Files))]
    public void HeaderAndUuidMatchLlvmObjdump(string path)
    {
        using var file = MachOFile.Open(path);
        var slice = Assert.Single(file.Slices);
        var text = ExternalTool.RunChecked(ExternalTool.LlvmObjdump, "--macho", "--private-headers", path);
        var header = HeaderLine().Match(text);
        Assert.True(header.Success, text[..Math.Min(400, text.Length)]);
        Assert.Equal(LlvmArch(header.Groups["cpu"].Value, header.Groups["sub"].Value), slice.Architecture);
        Assert.Equal(header.Groups["type"].Value, LlvmFileType(slice.FileType));
        Assert.Equal(int.Parse(header.Groups["ncmds"].Value), slice.LoadCommands.Count);
        Assert.Equal(uint.Parse(header.Groups["size"].Value), slice.SizeOfCommands);
        Assert.Equal(UuidLine().Match(text).Groups[1].Value, slice.UuidString);
        var build = BuildLine().Match(text);
        Assert.True(build.Success);
        Assert.NotNull(slice.BuildVersion);
        Assert.Equal(build.Groups["sdk"].Value, slice.BuildVersion.Sdk.ToShortString());
        Assert.Equal(build.Groups["minos"].Value, slice.BuildVersion.MinOS.ToShortString());
        Assert.Equal(MachOPlatform.MacOS, slice.BuildVersion.Platform);
        Assert.Equal(SegmentNames().Matches(text).Select(m => m.Groups[1].Value), slice.Segments.Select(s => s.Name));
        var dylibNames = DylibName().Matches(text).Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(dylibNames, slice.Dylibs.Select(d => d.Name));
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void UndefinedSymbolsMatchLlvmNm(string path)
    {
        using var file = MachOFile.Open(path);
        var slice = Assert.Single(file.Slices);
        var expected = ExternalTool.RunChecked(ExternalTool.LlvmNm, "-u", path)
            .Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.NotEmpty(expected);
        Assert.Equal(expected, slice.UndefinedSymbols);
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void DefinedExternalSymbolsMatchLlvmNm(string path)
    {
        using var file = MachOFile.Open(path);
        var slice = Assert.Single(file.Slices);
        var expected = ExternalTool.RunChecked(ExternalTool.LlvmNm, "-g", "--defined-only", "-j", path)
            .Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(expected, slice.DefinedExternalSymbols.Select(s => s.Name));
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void CodeSignatureLocationMatchesLlvmOtool(string path)
    {
        using var file = MachOFile.Open(path);
        var slice = Assert.Single(file.Slices);
        var text = ExternalTool.RunChecked(ExternalTool.LlvmOtool, "-l", path);
        var m = CodeSignatureBlock().Match(text);
        Assert.True(m.Success);
        Assert.NotNull(slice.CodeSignature);
        Assert.Equal(uint.Parse(m.Groups["off"].Value), slice.CodeSignature.Value.DataOffset);
        Assert.Equal(uint.Parse(m.Groups["size"].Value), slice.CodeSignature.Value.DataSize);
        // The blob is an embedded-signature SuperBlob (CSMAGIC_EMBEDDED_SIGNATURE, big-endian).
        Assert.Equal(0xFADE0CC0u, System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(slice.CodeSignatureData.Span));
        Assert.Equal(slice.CodeSignature.Value.DataSize, (uint)slice.CodeSignatureData.Length);
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void ChainedFixupImportsMatchUndefinedSymbols(string path)
    {
        using var file = MachOFile.Open(path);
        var slice = Assert.Single(file.Slices);
        if (slice.ChainedFixups is not { } fx)
        {
            Assert.Contains(slice.LoadCommands, c => c.Command == 0x22 || c.Command == (0x22 | MachOLoadCommandType.ReqDyld));
            return;
        }
        Assert.Equal((int)fx.ImportsCount, fx.Imports.Count);
        // Every chained import is an undefined symbol of the symbol table (ld may keep unreferenced ones there).
        Assert.NotEmpty(fx.Imports);
        Assert.Subset(slice.UndefinedSymbols.ToHashSet(), fx.Imports.Select(i => i.Name).ToHashSet());
        Assert.All(fx.Imports, i => Assert.InRange(i.LibraryOrdinal, -3, slice.Dylibs.Count(d => d.Command != MachOLoadCommandType.IdDylib)));
    }

    [Fact]
    public void FromBytesEqualsOpen()
    {
        var path = Corpus.RuntimePackMachOFiles()[0];
        using var mapped = MachOFile.Open(path);
        var bytes = MachOFile.FromBytes(File.ReadAllBytes(path), "copy");
        Assert.Equal(mapped.Slices[0].UndefinedSymbols, bytes.Slices[0].UndefinedSymbols);
        Assert.Equal(mapped.Slices[0].Uuid, bytes.Slices[0].Uuid);
        Assert.True(MachOFile.IsMachO(File.ReadAllBytes(path).AsSpan(0, 8)));
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void OpenPooledThroughAHandleReadsTheSameFileAndKeepsTheHandle(string path)
    {
        using var handle = File.OpenHandle(path);
        using var full = MachOFile.Open(path);
        using (var pooled = MachOFile.OpenPooled(handle, path))
        {
            Assert.Equal(new FileInfo(path).Length >= MachOFile.PooledReadLimit, pooled.IsMemoryMapped);
            Assert.True(pooled.Data.Span.SequenceEqual(full.Data.Span));
            Assert.Equal(full.Slices[0].UndefinedSymbols, pooled.Slices[0].UndefinedSymbols);
        }
        // The handle is the caller's: still open and readable after the file is disposed.
        Span<byte> magic = stackalloc byte[4];
        Assert.Equal(4, RandomAccess.Read(handle, magic, 0));
        Assert.True(magic.SequenceEqual(full.Data.Span[..4]));
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void LoadCommandsOnlyReadsTheSameCommandsAndRefusesSymbolQuestions(string path)
    {
        using var full = MachOFile.Open(path);
        using var handle = File.OpenHandle(path);
        using var lean = MachOFile.OpenPooled(handle, path, MachOReadOptions.LoadCommandsOnly);
        var a = full.Slices[0];
        var b = lean.Slices[0];
        Assert.True(a.HasSymbols);
        Assert.False(b.HasSymbols);
        Assert.Equal(a.LoadCommands.Select(c => (c.Command, c.FileOffset)), b.LoadCommands.Select(c => (c.Command, c.FileOffset)));
        Assert.Equal(a.Segments.Select(s => s.Name), b.Segments.Select(s => s.Name));
        Assert.Equal(a.CodeSignature, b.CodeSignature);
        Assert.True(a.CodeSignatureData.Span.SequenceEqual(b.CodeSignatureData.Span));
        Assert.Equal(a.Uuid, b.Uuid);
        Assert.Equal(a.Dylibs.Select(d => d.Name), b.Dylibs.Select(d => d.Name));
        Assert.Throws<InvalidOperationException>(() => b.SymbolTable);
        Assert.Throws<InvalidOperationException>(() => b.DynamicSymbolTable);
        Assert.Throws<InvalidOperationException>(() => b.ChainedFixups);
        Assert.Throws<InvalidOperationException>(() => b.UndefinedSymbols);
        Assert.Throws<InvalidOperationException>(() => { _ = b.UndefinedSymbolNames.Count; });
        Assert.Throws<InvalidOperationException>(() => b.DefinedExternalSymbols);
    }

    [Fact]
    public void LoadCommandsOnlyDoesNotReadAMalformedSymbolTable()
    {
        // nsyms pointing far past the end of the file: an error for a full read, not read at all without symbols.
        var path = Corpus.RuntimePackMachOFiles().First(p => p.Contains("osx-x64") && p.EndsWith("libSystem.Native.dylib"));
        var bytes = File.ReadAllBytes(path);
        var symtab = MachOFile.FromBytes(bytes, path).Slices[0].LoadCommands.Single(c => c.Command == MachOLoadCommandType.Symtab);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan((int)symtab.FileOffset + 12), 0x7fff_ffff);
        using var tmp = new TempDir();
        var copy = tmp.Combine("libSystem.Native.dylib");
        File.WriteAllBytes(copy, bytes);

        var e = Assert.Throws<MachOFormatException>(() => MachOFile.Open(copy));
        Assert.Equal(copy, e.SourceName);
        using var handle = File.OpenHandle(copy);
        using var lean = MachOFile.OpenPooled(handle, copy, MachOReadOptions.LoadCommandsOnly);
        Assert.NotNull(lean.Slices[0].CodeSignature);
    }

    internal static string LlvmArch(string cpu, string sub) => (cpu, sub) switch
    {
        ("X86_64", "ALL") => "x86_64",
        ("X86_64", "H") => "x86_64h",
        ("ARM64", "ALL") => "arm64",
        ("ARM64", "E") => "arm64e",
        _ => $"{cpu}/{sub}",
    };

    internal static string LlvmFileType(MachOFileType t) => t switch
    {
        MachOFileType.Execute => "EXECUTE",
        MachOFileType.Dylib => "DYLIB",
        MachOFileType.KextBundle => "KEXTBUNDLE",
        MachOFileType.Fileset => "FILESET",
        MachOFileType.Bundle => "BUNDLE",
        _ => t.ToString(),
    };

    [GeneratedRegex(@"MH_MAGIC(?:_64)?\s+(?<cpu>\S+)\s+(?<sub>\S+)\s+\S+\s+(?<type>\S+)\s+(?<ncmds>\d+)\s+(?<size>\d+)")]
    internal static partial Regex HeaderLine();

    [GeneratedRegex(@"\n\s+uuid ([0-9A-F-]{36})")]
    internal static partial Regex UuidLine();

    [GeneratedRegex(@"cmd LC_BUILD_VERSION\n.*\n\s+platform \S+\n\s+sdk (?<sdk>\S+)\n\s+minos (?<minos>\S+)")]
    internal static partial Regex BuildLine();

    [GeneratedRegex(@"cmd LC_SEGMENT(?:_64)?\n\s+cmdsize \d+\n\s+segname (\S+)")]
    internal static partial Regex SegmentNames();

    [GeneratedRegex(@"\n\s+name (\S+) \(offset 24\)")]
    internal static partial Regex DylibName();

    [GeneratedRegex(@"cmd LC_CODE_SIGNATURE\n\s+cmdsize \d+\n\s+dataoff (?<off>\d+)\n\s+datasize (?<size>\d+)")]
    internal static partial Regex CodeSignatureBlock();
}

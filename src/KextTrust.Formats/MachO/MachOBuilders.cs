using System.Buffers.Binary;
using System.Text;

namespace KextTrust.Formats.MachO;

/// <summary>Architectures the builders emit.</summary>
public enum MachOTargetArchitecture
{
    /// <summary>CPU_TYPE_X86_64 / CPU_SUBTYPE_X86_64_ALL; 4 KiB pages.</summary>
    X86_64,
    /// <summary>CPU_TYPE_ARM64 / CPU_SUBTYPE_ARM64_ALL; 16 KiB pages.</summary>
    Arm64,
    /// <summary>CPU_TYPE_ARM64 / CPU_SUBTYPE_ARM64E with CPU_SUBTYPE_PTRAUTH_ABI; 16 KiB pages.</summary>
    Arm64e,
}

/// <summary>The section a built kext symbol is defined in.</summary>
public enum KextSymbolSection
{
    /// <summary>__TEXT,__text (n_sect 1).</summary>
    Text,
    /// <summary>__DATA,__data (n_sect 2).</summary>
    Data,
}

/// <summary>A defined external symbol for <see cref="KextBinaryBuilder"/>: a byte offset into its section.</summary>
public sealed record KextDefinedSymbol(string Name, KextSymbolSection Section, ulong Offset);

/// <summary>
/// Builds an MH_KEXT_BUNDLE: __TEXT,__text (caller's bytes), optional __DATA,__data, __LINKEDIT with
/// LC_SYMTAB/LC_DYSYMTAB (defined externals then N_UNDF|N_EXT imports, each sorted), LC_UUID,
/// LC_BUILD_VERSION, and free load-command space for a later LC_CODE_SIGNATURE. Deterministic.
/// </summary>
public sealed class KextBinaryBuilder
{
    private readonly List<KextDefinedSymbol> _defined = [];
    private readonly List<string> _undefined = [];

    /// <summary>Starts a kext for <paramref name="architecture"/> whose __text holds <paramref name="text"/>.</summary>
    public KextBinaryBuilder(MachOTargetArchitecture architecture, ReadOnlyMemory<byte> text)
    {
        Architecture = architecture;
        Text = text;
    }

    /// <summary>Target architecture.</summary>
    public MachOTargetArchitecture Architecture { get; }
    /// <summary>Contents of __TEXT,__text.</summary>
    public ReadOnlyMemory<byte> Text { get; }
    /// <summary>Contents of __DATA,__data; the __DATA segment is omitted when empty.</summary>
    public ReadOnlyMemory<byte> Data { get; init; }
    /// <summary>LC_UUID value.</summary>
    public Guid Uuid { get; init; }
    /// <summary>LC_BUILD_VERSION minos (platform is always macOS).</summary>
    public MachOVersion MinOS { get; init; } = MachOVersion.Create(11, 0);
    /// <summary>LC_BUILD_VERSION sdk.</summary>
    public MachOVersion Sdk { get; init; } = MachOVersion.Create(14, 0);
    /// <summary>Free bytes reserved after the load commands (for LC_CODE_SIGNATURE and friends).</summary>
    public int HeaderPadding { get; init; } = 0x1000;

    /// <summary>Defined external symbols added so far.</summary>
    public IReadOnlyList<KextDefinedSymbol> DefinedSymbols => _defined;
    /// <summary>Undefined (imported) symbols added so far.</summary>
    public IReadOnlyList<string> UndefinedSymbols => _undefined;

    /// <summary>Adds an N_SECT|N_EXT symbol at <paramref name="offset"/> within its section.</summary>
    public KextBinaryBuilder AddDefinedSymbol(string name, KextSymbolSection section, ulong offset = 0)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        var length = section == KextSymbolSection.Text ? Text.Length : Data.Length;
        if (offset > (ulong)length)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"offset {offset} is past the {length}-byte {section} section");
        }
        _defined.Add(new KextDefinedSymbol(name, section, offset));
        return this;
    }

    /// <summary>Adds an N_UNDF|N_EXT import (a KPI symbol the kext links against).</summary>
    public KextBinaryBuilder AddUndefinedSymbol(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        _undefined.Add(name);
        return this;
    }

    /// <summary>The kext as a standalone file.</summary>
    public byte[] Build() => Build(0, 0);

    /// <summary>Lays the kext out as if placed at <paramref name="fileBase"/> of a containing file (fileset), at <paramref name="vmBase"/>.</summary>
    internal byte[] Build(ulong fileBase, ulong vmBase)
    {
        if (HeaderPadding < 0)
        {
            throw new InvalidOperationException("HeaderPadding must not be negative");
        }
        var page = MachOLayout.PageSize(Architecture);
        var hasData = !Data.IsEmpty;
        var sizeofcmds = (72 + 80) + (hasData ? 72 + 80 : 0) + 72 + 24 + 24 + 24 + 80;
        var ncmds = hasData ? 7u : 6u;
        var textOff = MachOLayout.Align(32 + sizeofcmds + HeaderPadding, 16);
        var textSegSize = MachOLayout.Align(textOff + Text.Length, page);
        var dataOff = textSegSize;
        var dataSegSize = hasData ? MachOLayout.Align(Data.Length, page) : 0;
        var linkOff = dataOff + dataSegSize;

        var defined = _defined.OrderBy(d => d.Name, Comparer<string>.Create(MachOSlice.Utf8Order)).ToList();
        var undefined = _undefined.Distinct().Order(Comparer<string>.Create(MachOSlice.Utf8Order)).ToList();
        var strtab = new List<byte> { 0x20, 0x00 };
        var strx = new List<uint>();
        foreach (var name in defined.Select(d => d.Name).Concat(undefined))
        {
            strx.Add((uint)strtab.Count);
            strtab.AddRange(Encoding.UTF8.GetBytes(name));
            strtab.Add(0);
        }
        while (strtab.Count % 8 != 0)
        {
            strtab.Add(0);
        }
        var nsyms = defined.Count + undefined.Count;
        var symoff = linkOff;
        var stroff = symoff + nsyms * 16;
        var linkSize = nsyms * 16 + strtab.Count;
        var total = linkOff + linkSize;

        var b = new byte[total];
        var w = new MachOLayout.Writer(b);
        var (cpu, sub) = MachOLayout.Cpu(Architecture);
        var flags = undefined.Count == 0 ? MachOHeaderFlags.NoUndefs : MachOHeaderFlags.None;
        w.Header(cpu, sub, MachOFileType.KextBundle, ncmds, (uint)sizeofcmds, flags);
        var textAddr = vmBase + (ulong)textOff;
        var dataAddr = vmBase + (ulong)dataOff;
        w.Segment("__TEXT", vmBase, (ulong)textSegSize, fileBase, (ulong)textSegSize, 5, 5, 1);
        w.Section("__text", "__TEXT", textAddr, (ulong)Text.Length, (uint)(fileBase + (ulong)textOff), 4, 0x80000400);
        if (hasData)
        {
            w.Segment("__DATA", dataAddr, (ulong)dataSegSize, fileBase + (ulong)dataOff, (ulong)dataSegSize, 3, 3, 1);
            w.Section("__data", "__DATA", dataAddr, (ulong)Data.Length, (uint)(fileBase + (ulong)dataOff), 3, 0);
        }
        w.Segment("__LINKEDIT", vmBase + (ulong)linkOff, (ulong)MachOLayout.Align(linkSize, page), fileBase + (ulong)linkOff, (ulong)linkSize, 1, 1, 0);
        w.Uuid(Uuid);
        w.U32(MachOLoadCommandType.BuildVersion); w.U32(24); w.U32((uint)MachOPlatform.MacOS); w.U32(MinOS.Raw); w.U32(Sdk.Raw); w.U32(0);
        w.U32(MachOLoadCommandType.Symtab); w.U32(24);
        w.U32(checked((uint)(fileBase + (ulong)symoff))); w.U32((uint)nsyms); w.U32(checked((uint)(fileBase + (ulong)stroff))); w.U32((uint)strtab.Count);
        w.U32(MachOLoadCommandType.Dysymtab); w.U32(80);
        w.U32(0); w.U32(0); w.U32(0); w.U32((uint)defined.Count); w.U32((uint)defined.Count); w.U32((uint)undefined.Count);
        for (var i = 0; i < 12; i++)
        {
            w.U32(0);
        }

        Text.Span.CopyTo(b.AsSpan(textOff));
        Data.Span.CopyTo(b.AsSpan(dataOff));
        w.Position = symoff;
        for (var i = 0; i < defined.Count; i++)
        {
            var d = defined[i];
            var value = (d.Section == KextSymbolSection.Text ? textAddr : dataAddr) + d.Offset;
            var sect = d.Section == KextSymbolSection.Text ? (byte)1 : (byte)2;
            if (d.Section == KextSymbolSection.Data && !hasData)
            {
                throw new InvalidOperationException($"symbol {d.Name} is in __data but the kext has no data");
            }
            w.Nlist(strx[i], 0x0F, sect, 0, value);
        }
        for (var i = 0; i < undefined.Count; i++)
        {
            w.Nlist(strx[defined.Count + i], 0x01, 0, 0, 0);
        }
        strtab.CopyTo(b, stroff);
        return b;
    }
}

/// <summary>Builds a fat (universal) file (FAT_MAGIC, big-endian) from thin slices, each aligned 2^12 (x86) or 2^14 (arm).</summary>
public static class MachOFatBuilder
{
    /// <summary>Concatenates <paramref name="thinSlices"/> in the given order behind a fat header.</summary>
    public static byte[] Build(IReadOnlyList<ReadOnlyMemory<byte>> thinSlices)
    {
        ArgumentNullException.ThrowIfNull(thinSlices);
        if (thinSlices.Count is 0 or > MachOFile.MaxFatArchitectures)
        {
            throw new ArgumentException($"a fat file holds 1..{MachOFile.MaxFatArchitectures} slices", nameof(thinSlices));
        }
        var headers = thinSlices.Select((s, i) =>
        {
            var file = MachOFile.FromBytes(s, $"slice {i}");
            if (file.IsFat)
            {
                throw new ArgumentException($"slice {i} is already fat", nameof(thinSlices));
            }
            return file.Slices[0];
        }).ToList();
        var offsets = new long[headers.Count];
        var aligns = new int[headers.Count];
        long pos = 8 + 20 * headers.Count;
        for (var i = 0; i < headers.Count; i++)
        {
            aligns[i] = (headers[i].CpuType & 0xFF) == 12 ? 14 : 12;
            pos = MachOLayout.Align(pos, 1L << aligns[i]);
            offsets[i] = pos;
            pos += thinSlices[i].Length;
        }
        var b = new byte[checked((int)pos)];
        BinaryPrimitives.WriteUInt32BigEndian(b, MachOFile.FatMagic);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(4), (uint)headers.Count);
        for (var i = 0; i < headers.Count; i++)
        {
            var e = b.AsSpan(8 + 20 * i);
            BinaryPrimitives.WriteInt32BigEndian(e, headers[i].CpuType);
            BinaryPrimitives.WriteUInt32BigEndian(e[4..], (uint)headers[i].CpuSubtype | ((uint)headers[i].CpuSubtypeCapabilities << 24));
            BinaryPrimitives.WriteUInt32BigEndian(e[8..], checked((uint)offsets[i]));
            BinaryPrimitives.WriteUInt32BigEndian(e[12..], (uint)thinSlices[i].Length);
            BinaryPrimitives.WriteUInt32BigEndian(e[16..], (uint)aligns[i]);
            thinSlices[i].Span.CopyTo(b.AsSpan((int)offsets[i]));
        }
        return b;
    }
}

/// <summary>
/// Builds an MH_FILESET (kernel-collection shape): __TEXT over the header, one LC_FILESET_ENTRY per embedded kext
/// (each at a page-aligned file offset, its own offsets relative to the fileset start), __PRELINK_INFO,__info with the
/// caller's plist bytes, and __LINKEDIT. Deterministic.
/// </summary>
public sealed class FilesetBuilder
{
    private readonly List<(string Id, Func<ulong, ulong, byte[]> Layout)> _entries = [];

    /// <summary>Starts a fileset for <paramref name="architecture"/>.</summary>
    public FilesetBuilder(MachOTargetArchitecture architecture) => Architecture = architecture;

    /// <summary>Target architecture; every entry must match it.</summary>
    public MachOTargetArchitecture Architecture { get; }
    /// <summary>Contents of __PRELINK_INFO,__info (an XML plist).</summary>
    public ReadOnlyMemory<byte> PrelinkInfo { get; init; }
    /// <summary>Virtual address of the fileset header; entries sit at VmBase + their file offset.</summary>
    public ulong VmBase { get; init; }

    /// <summary>Adds an entry whose LC_FILESET_ENTRY id is <paramref name="entryId"/>.</summary>
    public FilesetBuilder AddEntry(string entryId, KextBinaryBuilder kext)
    {
        ArgumentException.ThrowIfNullOrEmpty(entryId);
        ArgumentNullException.ThrowIfNull(kext);
        if (kext.Architecture != Architecture)
        {
            throw new ArgumentException($"entry {entryId} is {kext.Architecture}, the fileset is {Architecture}", nameof(kext));
        }
        _entries.Add((entryId, kext.Build));
        return this;
    }

    /// <summary>
    /// Adds an already-built thin 64-bit Mach-O (e.g. a kext's own slice) whose LC_FILESET_ENTRY id is
    /// <paramref name="entryId"/>. The bytes are copied and relocated as a kernel collection places them: every file
    /// offset in the load commands (segments, sections, relocations, symbol and string tables, LC_DYSYMTAB tables,
    /// LC_DYLD_INFO, linkedit-data commands) is shifted to the entry's position in the fileset, and segment, section and
    /// N_SECT symbol addresses slide so the lowest segment starts at the entry's vmaddr. Relocation entries and fixup
    /// chains are not applied. Load commands that carry offsets this builder does not know are refused.
    /// </summary>
    /// <exception cref="ArgumentException">Not a thin 64-bit Mach-O of this architecture, an MH_FILESET, or not relocatable.</exception>
    public FilesetBuilder AddEntry(string entryId, ReadOnlyMemory<byte> machO)
    {
        ArgumentException.ThrowIfNullOrEmpty(entryId);
        MachOSlice slice;
        try
        {
            var file = MachOFile.FromBytes(machO, entryId);
            if (file.IsFat)
            {
                throw new ArgumentException($"entry {entryId} is a fat file: pass the slice for {Architecture}", nameof(machO));
            }
            slice = file.Slices[0];
        }
        catch (MachOFormatException e)
        {
            throw new ArgumentException($"entry {entryId} is not a well-formed Mach-O: {e.Message}", nameof(machO), e);
        }
        var (cpu, sub) = MachOLayout.Cpu(Architecture);
        if (!slice.Is64Bit || (uint)slice.CpuType != cpu || (uint)slice.CpuSubtype != (sub & 0x00FFFFFFu))
        {
            throw new ArgumentException($"entry {entryId} is {slice.Architecture}, the fileset is {Architecture}", nameof(machO));
        }
        if (slice.FileType == MachOFileType.Fileset)
        {
            throw new ArgumentException($"entry {entryId} is itself an MH_FILESET", nameof(machO));
        }
        foreach (var command in slice.LoadCommands)
        {
            if (!MachORelocator.CanRelocate(command.Command))
            {
                throw new ArgumentException($"entry {entryId}: load command 0x{command.Command:x} cannot be relocated into a fileset", nameof(machO));
            }
        }
        var copy = machO.ToArray();
        var lowestVm = slice.Segments.Where(s => s.FileSize != 0 || s.VmSize != 0).Select(s => s.VmAddress).DefaultIfEmpty(0ul).Min();
        _entries.Add((entryId, (fileBase, vmBase) => MachORelocator.Relocate(copy, fileBase, unchecked(vmBase - lowestVm))));
        return this;
    }

    /// <summary>The fileset file.</summary>
    public byte[] Build()
    {
        var page = MachOLayout.PageSize(Architecture);
        var ids = _entries.Select(e => Encoding.UTF8.GetBytes(e.Id)).ToList();
        var entrySizes = ids.Select(id => (int)MachOLayout.Align(32 + id.Length + 1, 8)).ToList();
        var sizeofcmds = 72 + (72 + 80) + 72 + entrySizes.Sum();
        var ncmds = (uint)(3 + _entries.Count);
        var headerSeg = MachOLayout.Align(32 + sizeofcmds, page);
        long pos = headerSeg;
        var bodies = new List<(long Offset, byte[] Bytes)>();
        foreach (var (_, layout) in _entries)
        {
            var bytes = layout((ulong)pos, VmBase + (ulong)pos);
            bodies.Add((pos, bytes));
            pos = MachOLayout.Align(pos + bytes.Length, page);
        }
        var infoOff = pos;
        var infoSeg = MachOLayout.Align(PrelinkInfo.Length, page);
        var linkOff = infoOff + infoSeg;
        var b = new byte[checked((int)linkOff)];
        var w = new MachOLayout.Writer(b);
        var (cpu, sub) = MachOLayout.Cpu(Architecture);
        w.Header(cpu, sub, MachOFileType.Fileset, ncmds, (uint)sizeofcmds, MachOHeaderFlags.NoUndefs | MachOHeaderFlags.DyldLink);
        w.Segment("__TEXT", VmBase, (ulong)headerSeg, 0, (ulong)headerSeg, 5, 5, 0);
        w.Segment("__PRELINK_INFO", VmBase + (ulong)infoOff, (ulong)infoSeg, (ulong)infoOff, (ulong)infoSeg, 3, 3, 1);
        w.Section("__info", "__PRELINK_INFO", VmBase + (ulong)infoOff, (ulong)PrelinkInfo.Length, (uint)infoOff, 0, 0);
        w.Segment("__LINKEDIT", VmBase + (ulong)linkOff, 0, (ulong)linkOff, 0, 1, 1, 0);
        for (var i = 0; i < _entries.Count; i++)
        {
            var start = w.Position;
            w.U32(MachOLoadCommandType.FilesetEntry); w.U32((uint)entrySizes[i]);
            w.U64(VmBase + (ulong)bodies[i].Offset); w.U64((ulong)bodies[i].Offset); w.U32(32); w.U32(0);
            ids[i].CopyTo(b, w.Position);
            w.Position = start + entrySizes[i];
        }
        foreach (var (offset, bytes) in bodies)
        {
            bytes.CopyTo(b, offset);
        }
        PrelinkInfo.Span.CopyTo(b.AsSpan((int)infoOff));
        return b;
    }
}

/// <summary>Moves a thin 64-bit Mach-O to a file offset and virtual address inside a containing file (a fileset).</summary>
internal static class MachORelocator
{
    private const uint SegmentSplitInfo = 0x1E, FunctionStarts = 0x26, DataInCode = 0x29, DylibCodeSignDrs = 0x2B,
        LinkerOptimizationHint = 0x2E, AtomInfo = 0x36, DyldInfo = 0x22, DyldInfoOnly = 0x22 | MachOLoadCommandType.ReqDyld,
        SourceVersion = 0x2A, Rpath = 0x1C | MachOLoadCommandType.ReqDyld, LinkerOption = 0x2D, LoadDylinker = 0xE, IdDylinker = 0xF;

    /// <summary>True for the load commands <see cref="Relocate"/> knows: those without file offsets and those whose offsets it shifts.</summary>
    public static bool CanRelocate(uint command) => command switch
    {
        MachOLoadCommandType.Segment64 or MachOLoadCommandType.Symtab or MachOLoadCommandType.Dysymtab
            or MachOLoadCommandType.Uuid or MachOLoadCommandType.BuildVersion or MachOLoadCommandType.VersionMinMacOSX
            or MachOLoadCommandType.VersionMinIPhoneOS or MachOLoadCommandType.VersionMinTvOS or MachOLoadCommandType.VersionMinWatchOS
            or MachOLoadCommandType.LoadDylib or MachOLoadCommandType.LoadWeakDylib or MachOLoadCommandType.ReexportDylib
            or MachOLoadCommandType.IdDylib or MachOLoadCommandType.LazyLoadDylib or MachOLoadCommandType.LoadUpwardDylib
            or SourceVersion or Rpath or LinkerOption or LoadDylinker or IdDylinker or DyldInfo or DyldInfoOnly => true,
        _ => IsLinkEditData(command),
    };

    private static bool IsLinkEditData(uint command) => command is MachOLoadCommandType.CodeSignature or SegmentSplitInfo
        or FunctionStarts or DataInCode or DylibCodeSignDrs or LinkerOptimizationHint or AtomInfo
        or MachOLoadCommandType.DyldExportsTrie or MachOLoadCommandType.DyldChainedFixups;

    /// <summary>A relocated copy of <paramref name="machO"/> (already validated by <see cref="MachOSlice"/> and <see cref="CanRelocate"/>).</summary>
    public static byte[] Relocate(byte[] machO, ulong fileBase, ulong vmSlide)
    {
        var b = (byte[])machO.Clone();
        var span = b.AsSpan();
        var ncmds = ReadU32(span, 16);
        var pos = 32;
        for (var i = 0; i < ncmds; i++)
        {
            var cmd = ReadU32(span, pos);
            var size = (int)ReadU32(span, pos + 4);
            var c = span.Slice(pos, size);
            switch (cmd)
            {
                case MachOLoadCommandType.Segment64:
                    AddU64(c, 24, vmSlide);
                    AddU64(c, 40, fileBase);
                    var nsects = ReadU32(c, 64);
                    for (var s = 0; s < nsects; s++)
                    {
                        var sect = c.Slice(72 + s * 80, 80);
                        AddU64(sect, 32, vmSlide);
                        var type = ReadU32(sect, 64) & 0xFF;
                        if (ReadU32(sect, 48) != 0 && type is not (0x1 or 0xC or 0x12))
                        {
                            AddU32(sect, 48, fileBase);
                        }
                        if (ReadU32(sect, 60) != 0)
                        {
                            AddU32(sect, 56, fileBase);
                        }
                    }
                    break;
                case MachOLoadCommandType.Symtab:
                    var symoff = ReadU32(c, 8);
                    var nsyms = ReadU32(c, 12);
                    for (var s = 0; s < nsyms; s++)
                    {
                        var nlist = span.Slice((int)(symoff + s * 16), 16);
                        if ((nlist[4] & 0xE0) == 0 && (nlist[4] & 0x0E) == 0x0E)
                        {
                            AddU64(nlist, 8, vmSlide);
                        }
                    }
                    AddNonZeroU32(c, 8, fileBase);
                    AddNonZeroU32(c, 16, fileBase);
                    break;
                case MachOLoadCommandType.Dysymtab:
                    foreach (var field in (ReadOnlySpan<int>)[32, 40, 48, 56, 64, 72])
                    {
                        AddNonZeroU32(c, field, fileBase);
                    }
                    break;
                case DyldInfo or DyldInfoOnly:
                    for (var f = 8; f < 48; f += 8)
                    {
                        if (ReadU32(c, f + 4) != 0)
                        {
                            AddU32(c, f, fileBase);
                        }
                    }
                    break;
                default:
                    if (IsLinkEditData(cmd) && ReadU32(c, 12) != 0)
                    {
                        AddU32(c, 8, fileBase);
                    }
                    break;
            }
            pos += size;
        }
        return b;
    }

    private static uint ReadU32(ReadOnlySpan<byte> s, int at) => BinaryPrimitives.ReadUInt32LittleEndian(s[at..]);

    private static void AddU32(Span<byte> s, int at, ulong delta) =>
        BinaryPrimitives.WriteUInt32LittleEndian(s[at..], checked((uint)(BinaryPrimitives.ReadUInt32LittleEndian(s[at..]) + delta)));

    private static void AddNonZeroU32(Span<byte> s, int at, ulong delta)
    {
        if (BinaryPrimitives.ReadUInt32LittleEndian(s[at..]) != 0)
        {
            AddU32(s, at, delta);
        }
    }

    private static void AddU64(Span<byte> s, int at, ulong delta) =>
        BinaryPrimitives.WriteUInt64LittleEndian(s[at..], unchecked(BinaryPrimitives.ReadUInt64LittleEndian(s[at..]) + delta));
}

/// <summary>Shared layout helpers for the builders.</summary>
internal static class MachOLayout
{
    public static int PageSize(MachOTargetArchitecture a) => a == MachOTargetArchitecture.X86_64 ? 0x1000 : 0x4000;

    public static int Align(int value, int alignment) => checked((value + alignment - 1) & ~(alignment - 1));

    public static long Align(long value, long alignment) => checked((value + alignment - 1) & ~(alignment - 1));

    public static (uint CpuType, uint CpuSubtype) Cpu(MachOTargetArchitecture a) => a switch
    {
        MachOTargetArchitecture.X86_64 => (0x01000007u, 3u),
        MachOTargetArchitecture.Arm64 => (0x0100000Cu, 0u),
        _ => (0x0100000Cu, 0x80000002u),
    };

    /// <summary>Little-endian cursor over a zeroed buffer.</summary>
    public sealed class Writer(byte[] buffer)
    {
        public int Position { get; set; }

        public void U32(uint v)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(Position), v);
            Position += 4;
        }

        public void U64(ulong v)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(buffer.AsSpan(Position), v);
            Position += 8;
        }

        public void Name16(string name)
        {
            var bytes = Encoding.ASCII.GetBytes(name);
            if (bytes.Length > 16)
            {
                throw new ArgumentException($"name '{name}' exceeds 16 bytes");
            }
            bytes.CopyTo(buffer, Position);
            Position += 16;
        }

        public void Header(uint cpu, uint sub, MachOFileType type, uint ncmds, uint sizeofcmds, MachOHeaderFlags flags)
        {
            Position = 0;
            U32(MachOFile.MachMagic64); U32(cpu); U32(sub); U32((uint)type); U32(ncmds); U32(sizeofcmds); U32((uint)flags); U32(0);
        }

        public void Segment(string name, ulong vmaddr, ulong vmsize, ulong fileoff, ulong filesize, int maxprot, int initprot, uint nsects)
        {
            U32(MachOLoadCommandType.Segment64); U32(72 + 80 * nsects); Name16(name);
            U64(vmaddr); U64(vmsize); U64(fileoff); U64(filesize); U32((uint)maxprot); U32((uint)initprot); U32(nsects); U32(0);
        }

        public void Section(string sect, string seg, ulong addr, ulong size, uint offset, uint align, uint flags)
        {
            Name16(sect); Name16(seg); U64(addr); U64(size); U32(offset); U32(align); U32(0); U32(0); U32(flags); U32(0); U32(0); U32(0);
        }

        public void Uuid(Guid uuid)
        {
            U32(MachOLoadCommandType.Uuid); U32(24);
            uuid.TryWriteBytes(buffer.AsSpan(Position, 16), bigEndian: true, out _);
            Position += 16;
        }

        public void Nlist(uint strx, byte type, byte sect, ushort desc, ulong value)
        {
            U32(strx);
            buffer[Position] = type;
            buffer[Position + 1] = sect;
            BinaryPrimitives.WriteUInt16LittleEndian(buffer.AsSpan(Position + 2), desc);
            Position += 4;
            U64(value);
        }
    }
}

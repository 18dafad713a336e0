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
    private readonly List<(string Id, KextBinaryBuilder Kext)> _entries = [];

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
        _entries.Add((entryId, kext));
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
        foreach (var (_, kext) in _entries)
        {
            var bytes = kext.Build((ulong)pos, VmBase + (ulong)pos);
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

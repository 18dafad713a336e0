using System.Buffers.Binary;
using System.Text;

namespace KextTrust.Formats.MachO;

/// <summary>
/// One thin Mach-O image (a whole thin file, a fat slice, or a fileset entry) with its load commands parsed
/// and checked. Offsets inside load commands are relative to <see cref="Data"/>; errors report absolute file offsets.
/// </summary>
public sealed class MachOSlice
{
    private const int Nlist32Size = 12;
    private const int Nlist64Size = 16;

    private readonly string? _source;
    private readonly bool _isFilesetEntry;
    private readonly MachOBytesLifetime? _lifetime;

    // Where each undefined symbol's name lies in Data, in UndefinedSymbols order; the strings are decoded on first use.
    private readonly Utf8Range[] _undefined;
    private readonly bool _undefinedValidUtf8;
    private IReadOnlyList<string>? _undefinedNames;
    // Where each chained import's name lies in Data (ReadChainedFixups), for the undefined symbols of a slice without symbol table.
    private Utf8Range[]? _importNames;

    private readonly bool _symbolsRead;
    private readonly MachOSymbolTable? _symbolTable;
    private readonly MachODynamicSymbolTable? _dynamicSymbolTable;
    private readonly MachOChainedFixups? _chainedFixups;

    internal MachOSlice(string? source, ReadOnlyMemory<byte> data, long fileOffset, long headerOffset, bool isFilesetEntry, MachOBytesLifetime? lifetime,
        bool readSymbols = true)
    {
        _source = source;
        _symbolsRead = readSymbols;
        _isFilesetEntry = isFilesetEntry;
        _lifetime = lifetime;
        Data = data;
        FileOffset = fileOffset;
        Size = data.Length;
        HeaderOffset = headerOffset;
        var s = data.Span;
        var h = headerOffset;
        if (h + 4 > s.Length)
        {
            throw Fail(h, $"mach_header truncated: {s.Length - h} bytes where a 4-byte magic is needed");
        }
        var magic = U32(s, h);
        if (magic == MachOFile.MachMagic64)
        {
            Is64Bit = true;
        }
        else if (magic != MachOFile.MachMagic)
        {
            var hint = magic is 0xCEFAEDFE or 0xCFFAEDFE ? " (big-endian Mach-O is not supported)" : "";
            throw Fail(h, $"magic 0x{magic:x8} is not MH_MAGIC or MH_MAGIC_64{hint}");
        }
        var headerSize = Is64Bit ? 32 : 28;
        if (h + headerSize > s.Length)
        {
            throw Fail(h, $"mach_header{(Is64Bit ? "_64" : "")} truncated: needs {headerSize} bytes, {s.Length - h} present");
        }
        CpuType = (int)U32(s, h + 4);
        var rawSubtype = U32(s, h + 8);
        CpuSubtype = (int)(rawSubtype & ~0xFF000000u);
        CpuSubtypeCapabilities = (byte)(rawSubtype >> 24);
        FileType = (MachOFileType)U32(s, h + 12);
        NumberOfCommands = U32(s, h + 16);
        SizeOfCommands = U32(s, h + 20);
        Flags = (MachOHeaderFlags)U32(s, h + 24);
        Architecture = ArchitectureName(CpuType, CpuSubtype);
        if (isFilesetEntry && FileType == MachOFileType.Fileset)
        {
            throw Fail(h + 12, "fileset entry is itself an MH_FILESET: nested filesets are refused");
        }

        var cmdsStart = h + headerSize;
        if (SizeOfCommands > s.Length - cmdsStart)
        {
            throw Fail(h + 20, $"sizeofcmds {SizeOfCommands} runs past the end of the slice ({s.Length - cmdsStart} bytes after the header)");
        }
        if (NumberOfCommands > SizeOfCommands / 8)
        {
            throw Fail(h + 16, $"ncmds {NumberOfCommands} cannot fit in sizeofcmds {SizeOfCommands} (each command is at least 8 bytes)");
        }
        var cmdsEnd = cmdsStart + SizeOfCommands;
        var commands = new MachOLoadCommand[NumberOfCommands];
        var segments = new List<MachOSegment>();
        var dylibs = new List<MachODylib>();
        var versionMins = new List<MachOVersionMin>();
        var filesetEntries = new List<MachOFilesetEntry>();
        long symtabAt = -1, dysymtabAt = -1, fixupsAt = -1;
        var pos = cmdsStart;
        for (var i = 0; i < NumberOfCommands; i++)
        {
            if (cmdsEnd - pos < 8)
            {
                throw Fail(pos, $"load command {i} header runs past sizeofcmds");
            }
            var cmd = U32(s, pos);
            var size = U32(s, pos + 4);
            if (size < 8 || size % 4 != 0)
            {
                throw Fail(pos + 4, $"load command {i} (cmd 0x{cmd:x}) cmdsize {size} must be at least 8 and a multiple of 4");
            }
            if (size > cmdsEnd - pos)
            {
                throw Fail(pos + 4, $"load command {i} (cmd 0x{cmd:x}) cmdsize {size} runs past sizeofcmds (ends at {cmdsEnd - h})");
            }
            commands[i] = new MachOLoadCommand(cmd, size, FileOffset + pos, data.Slice((int)pos, (int)size));
            switch (cmd)
            {
                case MachOLoadCommandType.Segment:
                case MachOLoadCommandType.Segment64:
                    segments.Add(ReadSegment(s, pos, size, cmd == MachOLoadCommandType.Segment64));
                    break;
                case MachOLoadCommandType.Symtab:
                    Require(pos, size, 24, "LC_SYMTAB");
                    symtabAt = symtabAt < 0 ? pos : throw Fail(pos, "more than one LC_SYMTAB");
                    break;
                case MachOLoadCommandType.Dysymtab:
                    Require(pos, size, 80, "LC_DYSYMTAB");
                    dysymtabAt = dysymtabAt < 0 ? pos : throw Fail(pos, "more than one LC_DYSYMTAB");
                    break;
                case MachOLoadCommandType.Uuid:
                    Require(pos, size, 24, "LC_UUID");
                    Uuid = Uuid is null ? new Guid(s.Slice((int)pos + 8, 16), bigEndian: true) : throw Fail(pos, "more than one LC_UUID");
                    break;
                case MachOLoadCommandType.BuildVersion:
                    BuildVersion = BuildVersion is null ? ReadBuildVersion(s, pos, size) : throw Fail(pos, "more than one LC_BUILD_VERSION");
                    break;
                case MachOLoadCommandType.VersionMinMacOSX:
                case MachOLoadCommandType.VersionMinIPhoneOS:
                case MachOLoadCommandType.VersionMinTvOS:
                case MachOLoadCommandType.VersionMinWatchOS:
                    Require(pos, size, 16, "version_min_command");
                    versionMins.Add(new MachOVersionMin(cmd, cmd switch
                    {
                        MachOLoadCommandType.VersionMinMacOSX => MachOPlatform.MacOS,
                        MachOLoadCommandType.VersionMinIPhoneOS => MachOPlatform.IOS,
                        MachOLoadCommandType.VersionMinTvOS => MachOPlatform.TvOS,
                        _ => MachOPlatform.WatchOS,
                    }, new MachOVersion(U32(s, pos + 8)), new MachOVersion(U32(s, pos + 12))));
                    break;
                case MachOLoadCommandType.LoadDylib:
                case MachOLoadCommandType.LoadWeakDylib:
                case MachOLoadCommandType.ReexportDylib:
                case MachOLoadCommandType.IdDylib:
                case MachOLoadCommandType.LazyLoadDylib:
                case MachOLoadCommandType.LoadUpwardDylib:
                    Require(pos, size, 24, "dylib_command");
                    dylibs.Add(new MachODylib(cmd, LcString(s, pos, size, 8, 24, "dylib name"), U32(s, pos + 12),
                        new MachOVersion(U32(s, pos + 16)), new MachOVersion(U32(s, pos + 20))));
                    break;
                case MachOLoadCommandType.CodeSignature:
                    CodeSignature = CodeSignature is null ? ReadLinkEdit(s, pos, size, "LC_CODE_SIGNATURE") : throw Fail(pos, "more than one LC_CODE_SIGNATURE");
                    break;
                case MachOLoadCommandType.DyldChainedFixups:
                    fixupsAt = fixupsAt < 0 ? pos : throw Fail(pos, "more than one LC_DYLD_CHAINED_FIXUPS");
                    break;
                case MachOLoadCommandType.FilesetEntry:
                    filesetEntries.Add(ReadFilesetEntry(s, pos, size));
                    break;
            }
            pos += size;
        }
        LoadCommands = commands;
        Segments = segments;
        Dylibs = dylibs;
        VersionMins = versionMins;
        FilesetEntries = filesetEntries;
        if (!readSymbols)
        {
            _undefined = [];
            _undefinedValidUtf8 = true;
            _definedExternals = new Lazy<IReadOnlyList<MachOSymbol>>(() => []);
            return;
        }
        if (symtabAt >= 0)
        {
            _symbolTable = ReadSymtab(s, symtabAt);
        }
        if (dysymtabAt >= 0)
        {
            _dynamicSymbolTable = ReadDysymtab(s, dysymtabAt);
        }
        if (fixupsAt >= 0)
        {
            _chainedFixups = ReadChainedFixups(s, fixupsAt, U32(s, fixupsAt + 4));
        }
        (_undefined, _undefinedValidUtf8, _undefinedNames) = ReadUndefinedSymbols();
        _definedExternals = new Lazy<IReadOnlyList<MachOSymbol>>(ReadDefinedExternalSymbols, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>cputype (CPU_TYPE_*).</summary>
    public int CpuType { get; }
    /// <summary>cpusubtype with the capability bits (CPU_SUBTYPE_MASK) removed.</summary>
    public int CpuSubtype { get; }
    /// <summary>The capability bits of cpusubtype (its top byte, e.g. 0x80 = CPU_SUBTYPE_LIB64 / PTRAUTH_ABI).</summary>
    public byte CpuSubtypeCapabilities { get; }
    /// <summary>Architecture name as lipo/llvm name it: "x86_64", "arm64e", …; "cpu(N,M)" when unknown.</summary>
    public string Architecture { get; }
    /// <summary>mach_header.filetype.</summary>
    public MachOFileType FileType { get; }
    /// <summary>mach_header.flags.</summary>
    public MachOHeaderFlags Flags { get; }
    /// <summary>MH_MAGIC_64.</summary>
    public bool Is64Bit { get; }
    /// <summary>ncmds.</summary>
    public uint NumberOfCommands { get; }
    /// <summary>sizeofcmds.</summary>
    public uint SizeOfCommands { get; }
    /// <summary>Absolute file offset of <see cref="Data"/> (the base that load-command file offsets are relative to).</summary>
    public long FileOffset { get; }
    /// <summary>Length of <see cref="Data"/>.</summary>
    public long Size { get; }
    /// <summary>Offset of the mach_header inside <see cref="Data"/>: 0, except for a fileset entry (its fileoff).</summary>
    public long HeaderOffset { get; }
    /// <summary>The slice's bytes (a view into the file, no copy).</summary>
    public ReadOnlyMemory<byte> Data { get; }
    /// <summary>Every load command in order, unknown ones included.</summary>
    public IReadOnlyList<MachOLoadCommand> LoadCommands { get; }
    /// <summary>LC_SEGMENT / LC_SEGMENT_64 commands with their sections.</summary>
    public IReadOnlyList<MachOSegment> Segments { get; }
    /// <summary>LC_SYMTAB with its entries, or null.</summary>
    /// <exception cref="InvalidOperationException">The file was read without symbols (<see cref="MachOReadOptions.Symbols"/>).</exception>
    public MachOSymbolTable? SymbolTable => SymbolsRead(_symbolTable);
    /// <summary>LC_DYSYMTAB, or null.</summary>
    /// <exception cref="InvalidOperationException">The file was read without symbols (<see cref="MachOReadOptions.Symbols"/>).</exception>
    public MachODynamicSymbolTable? DynamicSymbolTable => SymbolsRead(_dynamicSymbolTable);
    /// <summary>LC_UUID, or null.</summary>
    public Guid? Uuid { get; }
    /// <summary>LC_UUID as llvm prints it (uppercase 8-4-4-4-12), or null.</summary>
    public string? UuidString => Uuid?.ToString("D").ToUpperInvariant();
    /// <summary>LC_BUILD_VERSION, or null.</summary>
    public MachOBuildVersion? BuildVersion { get; }
    /// <summary>LC_VERSION_MIN_* commands.</summary>
    public IReadOnlyList<MachOVersionMin> VersionMins { get; }
    /// <summary>Dylib commands (load, weak, reexport, id, lazy, upward).</summary>
    public IReadOnlyList<MachODylib> Dylibs { get; }
    /// <summary>LC_DYLD_CHAINED_FIXUPS header and imports, or null.</summary>
    /// <exception cref="InvalidOperationException">The file was read without symbols (<see cref="MachOReadOptions.Symbols"/>).</exception>
    public MachOChainedFixups? ChainedFixups => SymbolsRead(_chainedFixups);

    /// <summary>Whether the symbol table, dynamic symbol table and chained fixups were read (<see cref="MachOReadOptions.Symbols"/>).</summary>
    public bool HasSymbols => _symbolsRead;

    private T SymbolsRead<T>(T value) => _symbolsRead ? value
        : throw new InvalidOperationException($"{_source ?? "the Mach-O file"} was read without its symbol table and fixups (MachOReadOptions.Symbols = false)");
    /// <summary>LC_CODE_SIGNATURE location, or null.</summary>
    public MachOLinkEditData? CodeSignature { get; }
    /// <summary>The code signature blob bytes (a view of <see cref="Data"/>); empty without LC_CODE_SIGNATURE.</summary>
    public ReadOnlyMemory<byte> CodeSignatureData => CodeSignature is { } cs ? Data.Slice((int)cs.DataOffset, (int)cs.DataSize) : ReadOnlyMemory<byte>.Empty;
    /// <summary>LC_FILESET_ENTRY commands (MH_FILESET only).</summary>
    public IReadOnlyList<MachOFilesetEntry> FilesetEntries { get; }
    /// <summary>
    /// Names of undefined symbols (not stab, N_UNDF, value 0) sorted by byte order as llvm-nm -u prints them;
    /// when the symbol table has none, the distinct chained-fixup import names. Decoded on first use (the file must
    /// still be open then; the list stays valid after).
    /// </summary>
    /// <exception cref="InvalidOperationException">The file was read without symbols (<see cref="MachOReadOptions.Symbols"/>).</exception>
    public IReadOnlyList<string> UndefinedSymbols => SymbolsRead(_undefinedNames) ?? DecodeUndefinedSymbols();

    /// <summary>
    /// The names of <see cref="UndefinedSymbols"/> as their UTF-8 bytes in the file, in the same order, without
    /// decoding or copying them: views of the file's bytes, valid while it is open.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The file was disposed.</exception>
    /// <exception cref="InvalidOperationException">The file was read without symbols (<see cref="MachOReadOptions.Symbols"/>).</exception>
    public MachOSymbolNames UndefinedSymbolNames
    {
        get
        {
            SymbolsRead(0);
            _lifetime?.ThrowIfReleased(_source);
            return new MachOSymbolNames(Data.Span, _undefined, _undefinedValidUtf8);
        }
    }
    /// <summary>
    /// External (N_EXT) defined symbols (N_SECT, N_ABS, N_INDR, …), sorted by name in byte order; decoded on
    /// first use (the file must still be open).
    /// </summary>
    /// <exception cref="InvalidOperationException">The file was read without symbols (<see cref="MachOReadOptions.Symbols"/>).</exception>
    public IReadOnlyList<MachOSymbol> DefinedExternalSymbols => SymbolsRead(_definedExternals).Value;

    private readonly Lazy<IReadOnlyList<MachOSymbol>> _definedExternals;

    /// <summary>Opens one entry of this MH_FILESET as a nested slice sharing <see cref="Data"/>.</summary>
    public MachOSlice OpenFilesetEntry(MachOFilesetEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (!FilesetEntries.Contains(entry))
        {
            throw new ArgumentException("entry does not belong to this slice", nameof(entry));
        }
        if (_isFilesetEntry)
        {
            throw Fail(entry.CommandFileOffset - FileOffset, "fileset entry inside a fileset entry: nested filesets are refused");
        }
        return new MachOSlice(_source, Data, FileOffset, (long)entry.FileOffset, isFilesetEntry: true, _lifetime, _symbolsRead);
    }

    /// <summary>Architecture name for a cputype and masked cpusubtype.</summary>
    internal static string ArchitectureName(int cpuType, int cpuSubtype) => (cpuType, cpuSubtype) switch
    {
        (7, _) when cpuSubtype == 3 => "i386",
        (0x01000007, 3) => "x86_64",
        (0x01000007, 8) => "x86_64h",
        (0x0100000C, 0) or (0x0100000C, 1) => "arm64",
        (0x0100000C, 2) => "arm64e",
        (0x0200000C, 0) or (0x0200000C, 1) => "arm64_32",
        (12, 0) => "arm",
        (12, 5) => "armv4t",
        (12, 6) => "armv6",
        (12, 7) => "armv5",
        (12, 8) => "xscale",
        (12, 9) => "armv7",
        (12, 10) => "armv7f",
        (12, 11) => "armv7s",
        (12, 12) => "armv7k",
        (12, 13) => "armv8",
        (12, 14) => "armv6m",
        (12, 15) => "armv7m",
        (12, 16) => "armv7em",
        (18, _) => "ppc",
        (0x01000012, _) => "ppc64",
        _ => $"cpu({cpuType},{cpuSubtype})",
    };

    private MachOFormatException Fail(long offsetInData, string rule) => new(_source, FileOffset + offsetInData, rule);

    private static uint U32(ReadOnlySpan<byte> s, long at) => BinaryPrimitives.ReadUInt32LittleEndian(s.Slice((int)at, 4));

    private static ulong U64(ReadOnlySpan<byte> s, long at) => BinaryPrimitives.ReadUInt64LittleEndian(s.Slice((int)at, 8));

    private void Require(long pos, uint size, uint needed, string what)
    {
        if (size < needed)
        {
            throw Fail(pos + 4, $"{what} cmdsize {size} is smaller than the {needed}-byte structure");
        }
    }

    /// <summary>Checks that [offset, offset+length) lies inside Data; overflow-proof.</summary>
    private void CheckRange(ulong offset, ulong length, long reportAt, string what)
    {
        var limit = (ulong)Data.Length;
        if (offset > limit || length > limit - offset)
        {
            throw Fail(reportAt, $"{what} (offset {offset}, size {length}) lies outside the slice ({limit} bytes)");
        }
    }

    private static string FixedName(ReadOnlySpan<byte> s, long at)
    {
        var field = s.Slice((int)at, 16);
        var end = field.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? field : field[..end]);
    }

    /// <summary>Reads an lc_str: offset field at pos+fieldAt, string within the command, NUL-terminated.</summary>
    private string LcString(ReadOnlySpan<byte> s, long pos, uint size, int fieldAt, uint minOffset, string what)
    {
        var off = U32(s, pos + fieldAt);
        if (off < minOffset || off >= size)
        {
            throw Fail(pos + fieldAt, $"{what} offset {off} must be within the command after its {minOffset}-byte fixed part (cmdsize {size})");
        }
        var str = s.Slice((int)(pos + off), (int)(size - off));
        var end = str.IndexOf((byte)0);
        if (end < 0)
        {
            throw Fail(pos + off, $"{what} is not NUL-terminated within the command");
        }
        return Encoding.UTF8.GetString(str[..end]);
    }

    private MachOSegment ReadSegment(ReadOnlySpan<byte> s, long pos, uint size, bool is64)
    {
        var fixedSize = is64 ? 72u : 56u;
        var sectSize = is64 ? 80u : 68u;
        var what = is64 ? "LC_SEGMENT_64" : "LC_SEGMENT";
        Require(pos, size, fixedSize, what);
        var name = FixedName(s, pos + 8);
        ulong vmaddr, vmsize, fileoff, filesize;
        long p;
        if (is64)
        {
            vmaddr = U64(s, pos + 24); vmsize = U64(s, pos + 32); fileoff = U64(s, pos + 40); filesize = U64(s, pos + 48);
            p = pos + 56;
        }
        else
        {
            vmaddr = U32(s, pos + 24); vmsize = U32(s, pos + 28); fileoff = U32(s, pos + 32); filesize = U32(s, pos + 36);
            p = pos + 40;
        }
        var maxprot = (int)U32(s, p);
        var initprot = (int)U32(s, p + 4);
        var nsects = U32(s, p + 8);
        var flags = U32(s, p + 12);
        CheckRange(fileoff, filesize, is64 ? pos + 40 : pos + 32, $"segment {name} file range");
        if ((ulong)nsects * sectSize > size - fixedSize)
        {
            throw Fail(p + 8, $"segment {name} nsects {nsects} needs {(ulong)nsects * sectSize} bytes but cmdsize {size} leaves {size - fixedSize}");
        }
        var sections = new MachOSection[nsects];
        var at = pos + fixedSize;
        for (var i = 0; i < nsects; i++, at += sectSize)
        {
            var sect = FixedName(s, at);
            var seg = FixedName(s, at + 16);
            ulong addr, sz;
            long q;
            if (is64)
            {
                addr = U64(s, at + 32); sz = U64(s, at + 40); q = at + 48;
            }
            else
            {
                addr = U32(s, at + 32); sz = U32(s, at + 36); q = at + 40;
            }
            var section = new MachOSection(sect, seg, addr, sz, U32(s, q), U32(s, q + 4), U32(s, q + 8), U32(s, q + 12),
                U32(s, q + 16), U32(s, q + 20), U32(s, q + 24));
            if (!section.IsZeroFill && section.Offset != 0)
            {
                CheckRange(section.Offset, sz, q, $"section {seg},{sect} file range");
            }
            if (section.RelocationCount != 0)
            {
                CheckRange(section.RelocationOffset, (ulong)section.RelocationCount * 8, q + 8, $"section {seg},{sect} relocations");
            }
            sections[i] = section;
        }
        return new MachOSegment(name, vmaddr, vmsize, fileoff, filesize, maxprot, initprot, flags, sections);
    }

    private MachOBuildVersion ReadBuildVersion(ReadOnlySpan<byte> s, long pos, uint size)
    {
        Require(pos, size, 24, "LC_BUILD_VERSION");
        var ntools = U32(s, pos + 20);
        if ((ulong)ntools * 8 > size - 24)
        {
            throw Fail(pos + 20, $"LC_BUILD_VERSION ntools {ntools} does not fit cmdsize {size}");
        }
        var tools = new MachOBuildTool[ntools];
        for (var i = 0; i < ntools; i++)
        {
            tools[i] = new MachOBuildTool(U32(s, pos + 24 + i * 8), new MachOVersion(U32(s, pos + 28 + i * 8)));
        }
        return new MachOBuildVersion((MachOPlatform)U32(s, pos + 8), new MachOVersion(U32(s, pos + 12)), new MachOVersion(U32(s, pos + 16)), tools);
    }

    private MachOLinkEditData ReadLinkEdit(ReadOnlySpan<byte> s, long pos, uint size, string what)
    {
        Require(pos, size, 16, what);
        var cmd = U32(s, pos);
        var off = U32(s, pos + 8);
        var len = U32(s, pos + 12);
        CheckRange(off, len, pos + 8, $"{what} data");
        return new MachOLinkEditData(cmd, off, len);
    }

    private MachOFilesetEntry ReadFilesetEntry(ReadOnlySpan<byte> s, long pos, uint size)
    {
        Require(pos, size, 32, "LC_FILESET_ENTRY");
        if (FileType != MachOFileType.Fileset)
        {
            throw Fail(pos, "LC_FILESET_ENTRY in a file whose filetype is not MH_FILESET");
        }
        var vmaddr = U64(s, pos + 8);
        var fileoff = U64(s, pos + 16);
        var id = LcString(s, pos, size, 24, 32, "fileset entry id");
        if (fileoff == (ulong)HeaderOffset)
        {
            throw Fail(pos + 16, $"fileset entry {id} points at the fileset's own header: loop refused");
        }
        CheckRange(fileoff, 32, pos + 16, $"fileset entry {id} header");
        return new MachOFilesetEntry(vmaddr, fileoff, id, FileOffset + pos);
    }

    private MachOSymbolTable ReadSymtab(ReadOnlySpan<byte> s, long pos)
    {
        var symoff = U32(s, pos + 8);
        var nsyms = U32(s, pos + 12);
        var stroff = U32(s, pos + 16);
        var strsize = U32(s, pos + 20);
        var entrySize = Is64Bit ? Nlist64Size : Nlist32Size;
        CheckRange(symoff, (ulong)nsyms * (ulong)entrySize, pos + 8, "LC_SYMTAB symbol table");
        CheckRange(stroff, strsize, pos + 16, "LC_SYMTAB string table");
        // Validate every entry now, allocating nothing: a name is well formed when its index is inside the
        // string table and a NUL follows it, i.e. it is at or before the table's last NUL.
        var strtab = s.Slice((int)stroff, (int)strsize);
        var lastNul = strtab.LastIndexOf((byte)0);
        for (var i = 0; i < nsyms; i++)
        {
            long at = symoff + (long)i * entrySize;
            var strx = U32(s, at);
            if (strx == 0 && strtab.Length == 0)
            {
                continue;
            }
            if (strx >= strtab.Length)
            {
                throw Fail(at, $"nlist n_strx {strx} is outside the string table ({strtab.Length} bytes)");
            }
            if (strx > lastNul)
            {
                throw Fail(stroff + strx, $"symbol name at n_strx {strx} is not NUL-terminated within the string table");
            }
        }
        return new MachOSymbolTable(symoff, nsyms, stroff, strsize, () => DecodeSymbols(symoff, nsyms, stroff, strsize, static _ => true));
    }

    /// <summary>Decodes the entries <paramref name="keep"/> accepts (by raw n_type/n_value), names included.</summary>
    private List<MachOSymbol> DecodeSymbols(uint symoff, uint nsyms, uint stroff, uint strsize, Func<MachOSymbol, bool> keep)
    {
        _lifetime?.ThrowIfReleased(_source);
        var s = Data.Span;
        var entrySize = Is64Bit ? Nlist64Size : Nlist32Size;
        var strtab = s.Slice((int)stroff, (int)strsize);
        var symbols = new List<MachOSymbol>();
        Dictionary<uint, string>? names = null;
        for (var i = 0; i < nsyms; i++)
        {
            long at = symoff + (long)i * entrySize;
            var strx = U32(s, at);
            var type = s[(int)at + 4];
            var sect = s[(int)at + 5];
            var desc = BinaryPrimitives.ReadUInt16LittleEndian(s.Slice((int)at + 6, 2));
            var value = Is64Bit ? U64(s, at + 8) : U32(s, at + 8);
            var nameless = new MachOSymbol("", type, sect, desc, value);
            if (!keep(nameless))
            {
                continue;
            }
            names ??= new Dictionary<uint, string>();
            if (!names.TryGetValue(strx, out var name))
            {
                name = names[strx] = SymbolName(strtab, strx, at, stroff);
            }
            symbols.Add(nameless with { Name = name });
        }
        return symbols;
    }

    private string SymbolName(ReadOnlySpan<byte> strtab, uint strx, long entryAt, uint stroff)
    {
        if (strx == 0 && strtab.Length == 0)
        {
            return "";
        }
        if (strx >= strtab.Length)
        {
            throw Fail(entryAt, $"nlist n_strx {strx} is outside the string table ({strtab.Length} bytes)");
        }
        var rest = strtab[(int)strx..];
        var end = rest.IndexOf((byte)0);
        if (end < 0)
        {
            throw Fail(stroff + strx, $"symbol name at n_strx {strx} is not NUL-terminated within the string table");
        }
        return Encoding.UTF8.GetString(rest[..end]);
    }

    private MachODynamicSymbolTable ReadDysymtab(ReadOnlySpan<byte> s, long pos)
    {
        var f = new uint[18];
        for (var i = 0; i < 18; i++)
        {
            f[i] = U32(s, pos + 8 + i * 4);
        }
        var nsyms = (ulong)(_symbolTable?.SymbolCount ?? 0);
        string[] groups = ["local", "external defined", "undefined"];
        for (var g = 0; g < 3; g++)
        {
            if ((ulong)f[g * 2] + f[g * 2 + 1] > nsyms)
            {
                throw Fail(pos + 8 + g * 8, $"LC_DYSYMTAB {groups[g]} symbols {f[g * 2]}+{f[g * 2 + 1]} exceed the {nsyms} symbols of LC_SYMTAB");
            }
        }
        var modSize = Is64Bit ? 56ul : 52ul;
        (int Field, ulong Elem, string What)[] tables =
        [
            (6, 8, "table of contents"), (8, modSize, "module table"), (10, 4, "external reference table"),
            (12, 4, "indirect symbol table"), (14, 8, "external relocations"), (16, 8, "local relocations"),
        ];
        foreach (var (field, elem, what) in tables)
        {
            if (f[field + 1] != 0)
            {
                CheckRange(f[field], f[field + 1] * elem, pos + 8 + field * 4, $"LC_DYSYMTAB {what}");
            }
        }
        return new MachODynamicSymbolTable(f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11], f[12], f[13], f[14], f[15], f[16], f[17]);
    }

    private MachOChainedFixups ReadChainedFixups(ReadOnlySpan<byte> s, long pos, uint size)
    {
        var link = ReadLinkEdit(s, pos, size, "LC_DYLD_CHAINED_FIXUPS");
        var blob = s.Slice((int)link.DataOffset, (int)link.DataSize);
        long baseAt = link.DataOffset;
        if (blob.Length < 28)
        {
            throw Fail(baseAt, $"dyld_chained_fixups_header needs 28 bytes, the blob has {blob.Length}");
        }
        var version = U32(blob, 0);
        var startsOffset = U32(blob, 4);
        var importsOffset = U32(blob, 8);
        var symbolsOffset = U32(blob, 12);
        var importsCount = U32(blob, 16);
        var importsFormat = U32(blob, 20);
        var symbolsFormat = U32(blob, 24);
        var importSize = importsFormat switch
        {
            1 => 4u,
            2 => 8u,
            3 => 16u,
            _ => throw Fail(baseAt + 20, $"dyld_chained_fixups_header imports_format {importsFormat} is not 1, 2 or 3"),
        };
        if (symbolsFormat != 0)
        {
            throw Fail(baseAt + 24, $"dyld_chained_fixups_header symbols_format {symbolsFormat}: only 0 (uncompressed) is supported");
        }
        if (startsOffset > blob.Length)
        {
            throw Fail(baseAt + 4, $"starts_offset {startsOffset} lies outside the {blob.Length}-byte fixups blob");
        }
        if (importsOffset > blob.Length || (ulong)importsCount * importSize > (ulong)blob.Length - importsOffset)
        {
            throw Fail(baseAt + 8, $"imports table ({importsCount} × {importSize} bytes at {importsOffset}) lies outside the {blob.Length}-byte fixups blob");
        }
        if (symbolsOffset > blob.Length)
        {
            throw Fail(baseAt + 12, $"symbols_offset {symbolsOffset} lies outside the {blob.Length}-byte fixups blob");
        }
        var pool = blob[(int)symbolsOffset..];
        var imports = new MachOChainedImport[importsCount];
        var names = new Dictionary<uint, (string Name, Utf8Range At)>();
        var nameRanges = new Utf8Range[importsCount];
        for (var i = 0; i < importsCount; i++)
        {
            long at = importsOffset + (long)i * importSize;
            int ordinal;
            bool weak;
            uint nameOffset;
            long addend = 0;
            if (importsFormat == 3)
            {
                var v = U64(blob, at);
                var raw = (int)(v & 0xFFFF);
                ordinal = raw > 0xFFF0 ? (short)raw : raw;
                weak = ((v >> 16) & 1) != 0;
                nameOffset = (uint)(v >> 32);
                addend = (long)U64(blob, at + 8);
            }
            else
            {
                var v = U32(blob, at);
                var raw = (int)(v & 0xFF);
                ordinal = raw > 0xF0 ? (sbyte)raw : raw;
                weak = ((v >> 8) & 1) != 0;
                nameOffset = v >> 9;
                if (importsFormat == 2)
                {
                    addend = (int)U32(blob, at + 4);
                }
            }
            if (!names.TryGetValue(nameOffset, out var known))
            {
                if (nameOffset >= pool.Length)
                {
                    throw Fail(baseAt + at, $"chained import {i} name_offset {nameOffset} lies outside the {pool.Length}-byte symbol pool");
                }
                var rest = pool[(int)nameOffset..];
                var end = rest.IndexOf((byte)0);
                if (end < 0)
                {
                    throw Fail(baseAt + symbolsOffset + nameOffset, $"chained import {i} name is not NUL-terminated within the symbol pool");
                }
                var range = new Utf8Range((int)(baseAt + symbolsOffset + nameOffset), end);
                known = names[nameOffset] = (Encoding.UTF8.GetString(rest[..end]), range);
            }
            imports[i] = new MachOChainedImport(known.Name, ordinal, weak, addend);
            nameRanges[i] = known.At;
        }
        _importNames = nameRanges;
        return new MachOChainedFixups(version, startsOffset, importsOffset, symbolsOffset, importsCount, importsFormat, symbolsFormat, imports);
    }

    /// <summary>
    /// Locates the undefined symbols' names and sorts them: by their bytes when all are well-formed UTF-8 (the order of
    /// the decoded strings then), else by the decoded strings (U+FFFD for ill-formed bytes), which are then kept.
    /// </summary>
    private (Utf8Range[] Names, bool ValidUtf8, IReadOnlyList<string>? Decoded) ReadUndefinedSymbols()
    {
        var s = Data.Span;
        var valid = true;
        Utf8Range[] names = [];
        if (_symbolTable is { } st)
        {
            // Two passes over the validated nlist entries (count, then locate): no symbol records, no strings.
            var entrySize = Is64Bit ? Nlist64Size : Nlist32Size;
            var stroff = (int)st.StringOffset;
            var strtab = s.Slice(stroff, (int)st.StringSize);
            var count = 0;
            for (var i = 0; i < st.SymbolCount; i++)
            {
                count += IsUndefinedEntry(s, (int)(st.SymbolOffset + (long)i * entrySize)) ? 1 : 0;
            }
            names = count == 0 ? [] : new Utf8Range[count];
            for (int i = 0, n = 0; n < count; i++)
            {
                var at = (int)(st.SymbolOffset + (long)i * entrySize);
                if (!IsUndefinedEntry(s, at))
                {
                    continue;
                }
                var strx = (int)U32(s, at);
                if (strx == 0 && strtab.Length == 0)
                {
                    names[n++] = new Utf8Range(stroff, 0);
                    continue;
                }
                var name = strtab[strx..]; // in range and NUL-terminated: checked by ReadSymtab
                name = name[..name.IndexOf((byte)0)];
                valid = valid && System.Text.Unicode.Utf8.IsValid(name);
                names[n++] = new Utf8Range(stroff + strx, name.Length);
            }
        }
        if (names.Length == 0 && _chainedFixups is { } fx)
        {
            // The distinct import names (by their decoded strings, as before), already decoded by ReadChainedFixups.
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var kept = new List<Utf8Range>();
            var decoded = new List<string>();
            for (var i = 0; i < fx.Imports.Count; i++)
            {
                if (seen.Add(fx.Imports[i].Name))
                {
                    kept.Add(_importNames![i]);
                    decoded.Add(fx.Imports[i].Name);
                    valid = valid && System.Text.Unicode.Utf8.IsValid(_importNames[i].Of(s));
                }
            }
            return SortDecoded([.. kept], [.. decoded], valid);
        }
        if (!valid)
        {
            return SortDecoded(names, Decode(s, names), valid: false);
        }
        // Well-formed UTF-8: byte order is the order of the decoded strings (UTF-16 ordinal order but above U+D7FF).
        // ld writes undefined symbols sorted by name: check that first (n - 1 comparisons), sort only otherwise.
        if (!InByteOrder(s, names))
        {
            Array.Sort(names, new Utf8RangeOrder(Data));
        }
        return (names, true, null);
    }

    private static bool InByteOrder(ReadOnlySpan<byte> s, Utf8Range[] names)
    {
        for (var i = 1; i < names.Length; i++)
        {
            if (names[i - 1].Of(s).SequenceCompareTo(names[i].Of(s)) > 0)
            {
                return false;
            }
        }
        return true;
    }

    private static (Utf8Range[], bool, IReadOnlyList<string>?) SortDecoded(Utf8Range[] names, string[] decoded, bool valid)
    {
        var ascii = Array.TrueForAll(decoded, static d => System.Text.Ascii.IsValid(d));
        // Without surrogates, UTF-16 ordinal order is UTF-8 byte order (and the ordinal comparer is vectorized).
        Array.Sort(decoded, names, ascii ? StringComparer.Ordinal : Utf8Comparer);
        return (names, valid, decoded);
    }

    private bool IsUndefinedEntry(ReadOnlySpan<byte> s, int at) =>
        new MachOSymbol("", s[at + 4], 0, 0, Is64Bit ? U64(s, at + 8) : U32(s, at + 8)).IsUndefined;

    private IReadOnlyList<string> DecodeUndefinedSymbols()
    {
        _lifetime?.ThrowIfReleased(_source);
        var names = Decode(Data.Span, _undefined);
        return Interlocked.CompareExchange(ref _undefinedNames, names, null) ?? names;
    }

    /// <summary>The strings of <paramref name="names"/> (U+FFFD for ill-formed bytes).</summary>
    private static string[] Decode(ReadOnlySpan<byte> s, Utf8Range[] names)
    {
        var decoded = new string[names.Length];
        for (var i = 0; i < names.Length; i++)
        {
            decoded[i] = Encoding.UTF8.GetString(names[i].Of(s));
        }
        return decoded;
    }

    private static readonly IComparer<string> Utf8Comparer = Comparer<string>.Create(Utf8Order);

    private IReadOnlyList<MachOSymbol> ReadDefinedExternalSymbols()
    {
        if (_symbolTable is not { } st)
        {
            return [];
        }
        var defined = DecodeSymbols(st.SymbolOffset, st.SymbolCount, st.StringOffset, st.StringSize,
            static x => !x.IsDebug && x.IsExternal && x.Kind != MachOSymbolKind.Undefined && !x.IsUndefined);
        defined.Sort((a, b) => Utf8Order(a.Name, b.Name));
        return defined;
    }

    /// <summary>Orders strings by their UTF-8 bytes (llvm-nm's order); ordinal UTF-16 order differs only above U+D7FF.</summary>
    internal static int Utf8Order(string a, string b)
    {
        var n = Math.Min(a.Length, b.Length);
        for (var i = 0; i < n; i++)
        {
            char x = a[i], y = b[i];
            if (x != y)
            {
                if (char.IsSurrogate(x) != char.IsSurrogate(y) && x >= 0xD800 && y >= 0xD800)
                {
                    return char.IsSurrogate(x) ? 1 : -1;
                }
                return x.CompareTo(y);
            }
        }
        return a.Length.CompareTo(b.Length);
    }
}

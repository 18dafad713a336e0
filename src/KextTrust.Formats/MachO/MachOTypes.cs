using System.Globalization;

namespace KextTrust.Formats.MachO;

/// <summary>mach_header.filetype (loader.h MH_*).</summary>
public enum MachOFileType : uint
{
    /// <summary>MH_OBJECT: relocatable object file.</summary>
    Object = 0x1,
    /// <summary>MH_EXECUTE: demand paged executable.</summary>
    Execute = 0x2,
    /// <summary>MH_FVMLIB: fixed VM shared library.</summary>
    FixedVmLibrary = 0x3,
    /// <summary>MH_CORE: core file.</summary>
    Core = 0x4,
    /// <summary>MH_PRELOAD: preloaded executable.</summary>
    Preload = 0x5,
    /// <summary>MH_DYLIB: dynamically bound shared library.</summary>
    Dylib = 0x6,
    /// <summary>MH_DYLINKER: dynamic link editor.</summary>
    Dylinker = 0x7,
    /// <summary>MH_BUNDLE: dynamically bound bundle.</summary>
    Bundle = 0x8,
    /// <summary>MH_DYLIB_STUB: shared library stub for static linking.</summary>
    DylibStub = 0x9,
    /// <summary>MH_DSYM: companion file with only debug sections.</summary>
    Dsym = 0xA,
    /// <summary>MH_KEXT_BUNDLE: x86_64/arm64 kernel extension.</summary>
    KextBundle = 0xB,
    /// <summary>MH_FILESET: set of Mach-Os (kernel collection).</summary>
    Fileset = 0xC,
    /// <summary>MH_GPU_EXECUTE: GPU program.</summary>
    GpuExecute = 0xD,
    /// <summary>MH_GPU_DYLIB: GPU support functions.</summary>
    GpuDylib = 0xE,
}

/// <summary>mach_header.flags bits (loader.h MH_* flags).</summary>
[Flags]
public enum MachOHeaderFlags : uint
{
    /// <summary>No flags.</summary>
    None = 0,
    /// <summary>MH_NOUNDEFS: no undefined references.</summary>
    NoUndefs = 0x1,
    /// <summary>MH_INCRLINK.</summary>
    IncrLink = 0x2,
    /// <summary>MH_DYLDLINK: input for the dynamic linker.</summary>
    DyldLink = 0x4,
    /// <summary>MH_BINDATLOAD.</summary>
    BindAtLoad = 0x8,
    /// <summary>MH_PREBOUND.</summary>
    Prebound = 0x10,
    /// <summary>MH_SPLIT_SEGS.</summary>
    SplitSegs = 0x20,
    /// <summary>MH_LAZY_INIT.</summary>
    LazyInit = 0x40,
    /// <summary>MH_TWOLEVEL: two-level namespace bindings.</summary>
    TwoLevel = 0x80,
    /// <summary>MH_FORCE_FLAT.</summary>
    ForceFlat = 0x100,
    /// <summary>MH_NOMULTIDEFS.</summary>
    NoMultiDefs = 0x200,
    /// <summary>MH_NOFIXPREBINDING.</summary>
    NoFixPrebinding = 0x400,
    /// <summary>MH_PREBINDABLE.</summary>
    Prebindable = 0x800,
    /// <summary>MH_ALLMODSBOUND.</summary>
    AllModsBound = 0x1000,
    /// <summary>MH_SUBSECTIONS_VIA_SYMBOLS.</summary>
    SubsectionsViaSymbols = 0x2000,
    /// <summary>MH_CANONICAL.</summary>
    Canonical = 0x4000,
    /// <summary>MH_WEAK_DEFINES.</summary>
    WeakDefines = 0x8000,
    /// <summary>MH_BINDS_TO_WEAK.</summary>
    BindsToWeak = 0x10000,
    /// <summary>MH_ALLOW_STACK_EXECUTION.</summary>
    AllowStackExecution = 0x20000,
    /// <summary>MH_ROOT_SAFE.</summary>
    RootSafe = 0x40000,
    /// <summary>MH_SETUID_SAFE.</summary>
    SetuidSafe = 0x80000,
    /// <summary>MH_NO_REEXPORTED_DYLIBS.</summary>
    NoReexportedDylibs = 0x100000,
    /// <summary>MH_PIE.</summary>
    Pie = 0x200000,
    /// <summary>MH_DEAD_STRIPPABLE_DYLIB.</summary>
    DeadStrippableDylib = 0x400000,
    /// <summary>MH_HAS_TLV_DESCRIPTORS.</summary>
    HasTlvDescriptors = 0x800000,
    /// <summary>MH_NO_HEAP_EXECUTION.</summary>
    NoHeapExecution = 0x1000000,
    /// <summary>MH_APP_EXTENSION_SAFE.</summary>
    AppExtensionSafe = 0x2000000,
    /// <summary>MH_NLIST_OUTOFSYNC_WITH_DYLDINFO.</summary>
    NlistOutOfSyncWithDyldInfo = 0x4000000,
    /// <summary>MH_SIM_SUPPORT.</summary>
    SimSupport = 0x8000000,
    /// <summary>MH_DYLIB_IN_CACHE.</summary>
    DylibInCache = 0x80000000,
}

/// <summary>build_version_command.platform / version-min platform (loader.h PLATFORM_*).</summary>
public enum MachOPlatform : uint
{
    /// <summary>Unknown or not given.</summary>
    Unknown = 0,
    /// <summary>PLATFORM_MACOS.</summary>
    MacOS = 1,
    /// <summary>PLATFORM_IOS.</summary>
    IOS = 2,
    /// <summary>PLATFORM_TVOS.</summary>
    TvOS = 3,
    /// <summary>PLATFORM_WATCHOS.</summary>
    WatchOS = 4,
    /// <summary>PLATFORM_BRIDGEOS.</summary>
    BridgeOS = 5,
    /// <summary>PLATFORM_MACCATALYST.</summary>
    MacCatalyst = 6,
    /// <summary>PLATFORM_IOSSIMULATOR.</summary>
    IOSSimulator = 7,
    /// <summary>PLATFORM_TVOSSIMULATOR.</summary>
    TvOSSimulator = 8,
    /// <summary>PLATFORM_WATCHOSSIMULATOR.</summary>
    WatchOSSimulator = 9,
    /// <summary>PLATFORM_DRIVERKIT.</summary>
    DriverKit = 10,
    /// <summary>PLATFORM_VISIONOS.</summary>
    VisionOS = 11,
    /// <summary>PLATFORM_VISIONOSSIMULATOR.</summary>
    VisionOSSimulator = 12,
}

/// <summary>Load command numbers (loader.h LC_*) this library interprets or writes.</summary>
public static class MachOLoadCommandType
{
    /// <summary>LC_REQ_DYLD.</summary>
    public const uint ReqDyld = 0x80000000;
    /// <summary>LC_SEGMENT.</summary>
    public const uint Segment = 0x1;
    /// <summary>LC_SYMTAB.</summary>
    public const uint Symtab = 0x2;
    /// <summary>LC_DYSYMTAB.</summary>
    public const uint Dysymtab = 0xB;
    /// <summary>LC_LOAD_DYLIB.</summary>
    public const uint LoadDylib = 0xC;
    /// <summary>LC_ID_DYLIB.</summary>
    public const uint IdDylib = 0xD;
    /// <summary>LC_LOAD_WEAK_DYLIB.</summary>
    public const uint LoadWeakDylib = 0x18 | ReqDyld;
    /// <summary>LC_SEGMENT_64.</summary>
    public const uint Segment64 = 0x19;
    /// <summary>LC_UUID.</summary>
    public const uint Uuid = 0x1B;
    /// <summary>LC_CODE_SIGNATURE.</summary>
    public const uint CodeSignature = 0x1D;
    /// <summary>LC_REEXPORT_DYLIB.</summary>
    public const uint ReexportDylib = 0x1F | ReqDyld;
    /// <summary>LC_LAZY_LOAD_DYLIB.</summary>
    public const uint LazyLoadDylib = 0x20;
    /// <summary>LC_VERSION_MIN_MACOSX.</summary>
    public const uint VersionMinMacOSX = 0x24;
    /// <summary>LC_VERSION_MIN_IPHONEOS.</summary>
    public const uint VersionMinIPhoneOS = 0x25;
    /// <summary>LC_LOAD_UPWARD_DYLIB.</summary>
    public const uint LoadUpwardDylib = 0x23 | ReqDyld;
    /// <summary>LC_VERSION_MIN_TVOS.</summary>
    public const uint VersionMinTvOS = 0x2F;
    /// <summary>LC_VERSION_MIN_WATCHOS.</summary>
    public const uint VersionMinWatchOS = 0x30;
    /// <summary>LC_BUILD_VERSION.</summary>
    public const uint BuildVersion = 0x32;
    /// <summary>LC_DYLD_EXPORTS_TRIE.</summary>
    public const uint DyldExportsTrie = 0x33 | ReqDyld;
    /// <summary>LC_DYLD_CHAINED_FIXUPS.</summary>
    public const uint DyldChainedFixups = 0x34 | ReqDyld;
    /// <summary>LC_FILESET_ENTRY.</summary>
    public const uint FilesetEntry = 0x35 | ReqDyld;
}

/// <summary>A packed version (xxxx.yy.zz nibble encoding of loader.h: major 16 bits, minor 8, patch 8).</summary>
public readonly record struct MachOVersion(uint Raw)
{
    /// <summary>Major component (bits 31..16).</summary>
    public int Major => (int)(Raw >> 16);
    /// <summary>Minor component (bits 15..8).</summary>
    public int Minor => (int)((Raw >> 8) & 0xFF);
    /// <summary>Patch component (bits 7..0).</summary>
    public int Patch => (int)(Raw & 0xFF);

    /// <summary>Encodes a version.</summary>
    public static MachOVersion Create(int major, int minor, int patch = 0)
    {
        if ((uint)major > 0xFFFF || (uint)minor > 0xFF || (uint)patch > 0xFF)
        {
            throw new ArgumentOutOfRangeException(nameof(major), "version components must fit 16.8.8 bits");
        }
        return new MachOVersion(((uint)major << 16) | ((uint)minor << 8) | (uint)patch);
    }

    /// <summary>"x.y.z".</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Major}.{Minor}.{Patch}");

    /// <summary>As llvm-objdump prints it: "x.y" when the patch is 0, else "x.y.z".</summary>
    internal string ToShortString() => Patch == 0
        ? string.Create(CultureInfo.InvariantCulture, $"{Major}.{Minor}")
        : ToString();
}

/// <summary>One load command: cmd, cmdsize, absolute file offset and its raw bytes (a view, no copy).</summary>
public readonly record struct MachOLoadCommand(uint Command, uint Size, long FileOffset, ReadOnlyMemory<byte> Data);

/// <summary>section / section_64.</summary>
public sealed record MachOSection(
    string SectionName, string SegmentName, ulong Address, ulong Size, uint Offset, uint Align,
    uint RelocationOffset, uint RelocationCount, uint Flags, uint Reserved1, uint Reserved2)
{
    /// <summary>SECTION_TYPE (flags &amp; 0xff).</summary>
    public uint Type => Flags & 0xFF;

    /// <summary>True for S_ZEROFILL, S_GB_ZEROFILL and S_THREAD_LOCAL_ZEROFILL: no file bytes.</summary>
    public bool IsZeroFill => Type is 0x1 or 0xC or 0x12;
}

/// <summary>segment_command / segment_command_64 with its sections.</summary>
public sealed record MachOSegment(
    string Name, ulong VmAddress, ulong VmSize, ulong FileOffset, ulong FileSize,
    int MaxProtection, int InitProtection, uint Flags, IReadOnlyList<MachOSection> Sections);

/// <summary>The nlist n_type kind (n_type &amp; N_TYPE).</summary>
public enum MachOSymbolKind : byte
{
    /// <summary>N_UNDF.</summary>
    Undefined = 0x0,
    /// <summary>N_ABS.</summary>
    Absolute = 0x2,
    /// <summary>N_INDR.</summary>
    Indirect = 0xA,
    /// <summary>N_PBUD.</summary>
    PreboundUndefined = 0xC,
    /// <summary>N_SECT.</summary>
    Section = 0xE,
}

/// <summary>One nlist / nlist_64 entry with its name resolved from the string table.</summary>
public readonly record struct MachOSymbol(string Name, byte Type, byte Section, ushort Description, ulong Value)
{
    /// <summary>N_STAB bits set: a debugging entry.</summary>
    public bool IsDebug => (Type & 0xE0) != 0;
    /// <summary>N_EXT.</summary>
    public bool IsExternal => (Type & 0x01) != 0;
    /// <summary>N_PEXT.</summary>
    public bool IsPrivateExternal => (Type & 0x10) != 0;
    /// <summary>n_type &amp; N_TYPE.</summary>
    public MachOSymbolKind Kind => (MachOSymbolKind)(Type & 0x0E);
    /// <summary>Undefined as llvm-nm counts it: not a stab, N_UNDF, value 0 (a nonzero value is a common symbol).</summary>
    public bool IsUndefined => !IsDebug && Kind == MachOSymbolKind.Undefined && Value == 0;
    /// <summary>GET_LIBRARY_ORDINAL(n_desc): the two-level namespace library ordinal of an undefined symbol.</summary>
    public int LibraryOrdinal => (Description >> 8) & 0xFF;
}

/// <summary>
/// symtab_command. Every entry's string index is validated when the slice is parsed; the entries
/// themselves (with their names) are decoded only when <see cref="Symbols"/> is first read, so parsing a
/// large file allocates nothing for symbols the caller never asks for.
/// </summary>
public sealed class MachOSymbolTable
{
    private readonly Lazy<IReadOnlyList<MachOSymbol>> _symbols;

    internal MachOSymbolTable(uint symbolOffset, uint symbolCount, uint stringOffset, uint stringSize, Func<IReadOnlyList<MachOSymbol>> decode)
    {
        SymbolOffset = symbolOffset;
        SymbolCount = symbolCount;
        StringOffset = stringOffset;
        StringSize = stringSize;
        _symbols = new Lazy<IReadOnlyList<MachOSymbol>>(decode, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    public uint SymbolOffset { get; }
    public uint SymbolCount { get; }
    public uint StringOffset { get; }
    public uint StringSize { get; }

    /// <summary>All entries in file order (decoded on first use; the file must still be open).</summary>
    public IReadOnlyList<MachOSymbol> Symbols => _symbols.Value;
}

/// <summary>dysymtab_command.</summary>
public sealed record MachODynamicSymbolTable(
    uint LocalSymbolIndex, uint LocalSymbolCount, uint ExternalDefinedSymbolIndex, uint ExternalDefinedSymbolCount,
    uint UndefinedSymbolIndex, uint UndefinedSymbolCount, uint TocOffset, uint TocCount,
    uint ModuleTableOffset, uint ModuleTableCount, uint ExternalReferenceOffset, uint ExternalReferenceCount,
    uint IndirectSymbolOffset, uint IndirectSymbolCount, uint ExternalRelocationOffset, uint ExternalRelocationCount,
    uint LocalRelocationOffset, uint LocalRelocationCount);

/// <summary>build_tool_version.</summary>
public readonly record struct MachOBuildTool(uint Tool, MachOVersion Version);

/// <summary>build_version_command.</summary>
public sealed record MachOBuildVersion(MachOPlatform Platform, MachOVersion MinOS, MachOVersion Sdk, IReadOnlyList<MachOBuildTool> Tools);

/// <summary>version_min_command (LC_VERSION_MIN_MACOSX, _IPHONEOS, _TVOS, _WATCHOS).</summary>
public sealed record MachOVersionMin(uint Command, MachOPlatform Platform, MachOVersion Version, MachOVersion Sdk);

/// <summary>dylib_command (LC_LOAD_DYLIB, LC_LOAD_WEAK_DYLIB, LC_REEXPORT_DYLIB, LC_ID_DYLIB, …).</summary>
public sealed record MachODylib(uint Command, string Name, uint Timestamp, MachOVersion CurrentVersion, MachOVersion CompatibilityVersion);

/// <summary>linkedit_data_command: the location of a blob in __LINKEDIT, relative to the slice start.</summary>
public readonly record struct MachOLinkEditData(uint Command, uint DataOffset, uint DataSize);

/// <summary>One dyld_chained_import(_addend/_addend64) entry with its name from the symbol pool.</summary>
public readonly record struct MachOChainedImport(string Name, int LibraryOrdinal, bool IsWeakImport, long Addend);

/// <summary>dyld_chained_fixups_header and its imports table.</summary>
public sealed record MachOChainedFixups(
    uint FixupsVersion, uint StartsOffset, uint ImportsOffset, uint SymbolsOffset, uint ImportsCount,
    uint ImportsFormat, uint SymbolsFormat, IReadOnlyList<MachOChainedImport> Imports);

/// <summary>fileset_entry_command: an embedded Mach-O of an MH_FILESET; FileOffset is relative to the fileset start.</summary>
public sealed record MachOFilesetEntry(ulong VmAddress, ulong FileOffset, string EntryId, long CommandFileOffset);

namespace KextTrust.Formats.CodeSigning;

/// <summary>
/// A CodeDirectory (0xfade0c02) of any version from 0x20001 up to (and compatibly beyond) 0x20600:
/// header fields, identifier, team id, slot hashes, and the cdhash.
/// </summary>
public sealed class CodeDirectory : CodeSignatureBlob
{
    /// <summary>Earliest version accepted (<c>CS_SUPPORTSNONE</c>-era 0x20001).</summary>
    internal const uint EarliestVersion = 0x20001;
    /// <summary>Versions at or above this are incompatible (xnu <c>compatibilityLimit</c>).</summary>
    internal const uint CompatibilityLimit = 0x2F000;
    /// <summary>Version adding the scatter offset.</summary>
    internal const uint VersionScatter = 0x20100;
    /// <summary>Version adding the team id offset.</summary>
    internal const uint VersionTeam = 0x20200;
    /// <summary>Version adding the 64-bit code limit.</summary>
    internal const uint VersionCodeLimit64 = 0x20300;
    /// <summary>Version adding the executable-segment fields.</summary>
    internal const uint VersionExecSeg = 0x20400;
    /// <summary>Version adding runtime and pre-encrypt offset.</summary>
    internal const uint VersionRuntime = 0x20500;
    /// <summary>Version adding the linkage fields.</summary>
    internal const uint VersionLinkage = 0x20600;

    private CodeDirectory(uint slot, ReadOnlyMemory<byte> bytes)
        : base(slot, BlobMagic.CodeDirectory, bytes)
    {
    }

    /// <summary>Format version (e.g. 0x20400).</summary>
    public uint Version { get; private init; }
    /// <summary>CodeDirectory flags.</summary>
    public CodeDirectoryFlags Flags { get; private init; }
    /// <summary>Offset of code-slot 0's hash inside the blob.</summary>
    public uint HashOffset { get; private init; }
    /// <summary>Offset of the identifier string.</summary>
    public uint IdentOffset { get; private init; }
    /// <summary>The signing identifier.</summary>
    public string Identifier { get; private init; } = "";
    /// <summary>Number of special (negative) slots.</summary>
    public uint SpecialSlotCount { get; private init; }
    /// <summary>Number of code-page slots.</summary>
    public uint CodeSlotCount { get; private init; }
    /// <summary>The 32-bit code limit field.</summary>
    public uint CodeLimit { get; private init; }
    /// <summary>The 64-bit code limit field (0 when absent).</summary>
    public ulong CodeLimit64 { get; private init; }
    /// <summary>The code limit in effect: <see cref="CodeLimit64"/> when non-zero, else <see cref="CodeLimit"/>.</summary>
    public ulong EffectiveCodeLimit => CodeLimit64 != 0 ? CodeLimit64 : CodeLimit;
    /// <summary>Size of each slot hash in bytes.</summary>
    public byte HashSize { get; private init; }
    /// <summary>The hash algorithm of slots and cdhash.</summary>
    public CodeSigningHashType HashType { get; private init; }
    /// <summary>Platform identifier (non-zero for platform binaries).</summary>
    public byte Platform { get; private init; }
    /// <summary>log2 of the page size (0 = a single page covering everything).</summary>
    public byte PageSizeLog2 { get; private init; }
    /// <summary>The page size in bytes, or 0 for "infinite".</summary>
    public long PageSize => PageSizeLog2 == 0 ? 0 : 1L << PageSizeLog2;
    /// <summary>Scatter vector offset (0 when absent or pre-0x20100).</summary>
    public uint ScatterOffset { get; private init; }
    /// <summary>Team id string offset (0 when absent).</summary>
    public uint TeamOffset { get; private init; }
    /// <summary>The team identifier, when present.</summary>
    public string? TeamId { get; private init; }
    /// <summary>Executable segment base.</summary>
    public ulong ExecSegBase { get; private init; }
    /// <summary>Executable segment limit.</summary>
    public ulong ExecSegLimit { get; private init; }
    /// <summary>Executable segment flags.</summary>
    public ulong ExecSegFlags { get; private init; }
    /// <summary>Hardened-runtime version.</summary>
    public uint Runtime { get; private init; }
    /// <summary>Offset of pre-encryption hashes.</summary>
    public uint PreEncryptOffset { get; private init; }
    /// <summary>Linkage hash type (v0x20600).</summary>
    public byte LinkageHashType { get; private init; }
    /// <summary>Linkage application type (v0x20600).</summary>
    public byte LinkageApplicationType { get; private init; }
    /// <summary>Linkage application subtype (v0x20600).</summary>
    public ushort LinkageApplicationSubType { get; private init; }
    /// <summary>Linkage offset (v0x20600).</summary>
    public uint LinkageOffset { get; private init; }
    /// <summary>Linkage size (v0x20600).</summary>
    public uint LinkageSize { get; private init; }

    /// <summary>The stored hash of code page <paramref name="index"/>.</summary>
    internal ReadOnlyMemory<byte> GetCodeSlotHash(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)index, CodeSlotCount, nameof(index));
        return Bytes.Slice(checked((int)HashOffset + index * HashSize), HashSize);
    }

    /// <summary>The stored hash of special slot <paramref name="slot"/> (1 = Info.plist … 7 = DER entitlements), stored at hashOffset − slot × hashSize.</summary>
    public ReadOnlyMemory<byte> GetSpecialSlotHash(int slot)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(slot, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan((uint)slot, SpecialSlotCount, nameof(slot));
        return Bytes.Slice(checked((int)HashOffset - slot * HashSize), HashSize);
    }

    /// <summary>True when special slot <paramref name="slot"/> exists and is not all zeros.</summary>
    public bool HasSpecialSlotHash(int slot) =>
        slot >= 1 && (uint)slot <= SpecialSlotCount && GetSpecialSlotHash(slot).Span.ContainsAnyExcept((byte)0);

    /// <summary>The cdhash: the hash of this blob with its own algorithm, truncated to 20 bytes.</summary>
    public byte[] ComputeCdHash() => ComputeFullHash().AsSpan(0, CodeSigningHash.CdHashLength).ToArray();

    /// <summary>The untruncated digest of this blob with its own algorithm (as in the CMS hash-agility v2 attribute).</summary>
    public byte[] ComputeFullHash() => CodeSigningHash.ComputeFull(HashType, Bytes.Span);

    /// <summary>Parses a standalone CodeDirectory blob.</summary>
    public static CodeDirectory Parse(ReadOnlyMemory<byte> blob, string? sourceName) =>
        Parse(new BlobCursor(blob, sourceName, 0), CodeSignatureSlot.CodeDirectory);

    internal static CodeDirectory Parse(BlobCursor cur, uint slot)
    {
        var magic = cur.U32(0, "CodeDirectory magic");
        if (magic != BlobMagic.CodeDirectory)
        {
            throw cur.Fail(0, $"CodeDirectory magic 0x{magic:x8} is not 0x{BlobMagic.CodeDirectory:x8}");
        }
        var length = cur.U32(4, "CodeDirectory length");
        if (length > cur.Length)
        {
            throw cur.Fail(4, $"CodeDirectory length {length} exceeds the {cur.Length} bytes available");
        }
        var cd = cur.Sub(0, length, "CodeDirectory");
        var version = cd.U32(8, "CodeDirectory version");
        if (version < EarliestVersion || version >= CompatibilityLimit)
        {
            throw cd.Fail(8, $"CodeDirectory version 0x{version:x} is outside 0x{EarliestVersion:x}..0x{CompatibilityLimit - 1:x}");
        }
        long headerEnd = version >= VersionLinkage ? 108
            : version >= VersionRuntime ? 96
            : version >= VersionExecSeg ? 88
            : version >= VersionCodeLimit64 ? 64
            : version >= VersionTeam ? 52
            : version >= VersionScatter ? 48
            : 44;
        if (length < headerEnd)
        {
            throw cd.Fail(4, $"CodeDirectory length {length} is shorter than the {headerEnd}-byte header of version 0x{version:x}");
        }
        var flags = cd.U32(12, "flags");
        var hashOffset = cd.U32(16, "hashOffset");
        var identOffset = cd.U32(20, "identOffset");
        var nSpecial = cd.U32(24, "nSpecialSlots");
        var nCode = cd.U32(28, "nCodeSlots");
        var codeLimit = cd.U32(32, "codeLimit");
        var hashSize = cd.U8(36, "hashSize");
        var hashType = (CodeSigningHashType)cd.U8(37, "hashType");
        var platform = cd.U8(38, "platform");
        var pageSize = cd.U8(39, "pageSize");
        if (!CodeSigningHash.IsKnown(hashType))
        {
            throw cd.Fail(37, $"unknown hash type {(byte)hashType}");
        }
        if (hashSize != CodeSigningHash.SizeOf(hashType))
        {
            throw cd.Fail(36, $"hash size {hashSize} does not match hash type {hashType} ({CodeSigningHash.SizeOf(hashType)})");
        }
        if (pageSize != 0 && (pageSize < 9 || pageSize > 30))
        {
            throw cd.Fail(39, $"page size 2^{pageSize} is outside 2^9..2^30");
        }
        var specialStart = checked((long)hashOffset - (long)nSpecial * hashSize);
        var codeEnd = checked((long)hashOffset + (long)nCode * hashSize);
        if (specialStart < headerEnd || codeEnd > length)
        {
            throw cd.Fail(16, $"slot hashes [{specialStart}, {codeEnd}) are outside the CodeDirectory body [{headerEnd}, {length})");
        }
        if (identOffset < headerEnd || identOffset >= length)
        {
            throw cd.Fail(20, $"identOffset {identOffset} is outside [{headerEnd}, {length})");
        }
        var identifier = cd.CString(identOffset, "identifier");
        uint scatter = version >= VersionScatter ? cd.U32(44, "scatterOffset") : 0;
        uint teamOffset = version >= VersionTeam ? cd.U32(48, "teamOffset") : 0;
        string? team = null;
        if (teamOffset != 0)
        {
            if (teamOffset < headerEnd || teamOffset >= length)
            {
                throw cd.Fail(48, $"teamOffset {teamOffset} is outside [{headerEnd}, {length})");
            }
            team = cd.CString(teamOffset, "team identifier");
        }
        if (scatter != 0 && (scatter < headerEnd || scatter >= length))
        {
            throw cd.Fail(44, $"scatterOffset {scatter} is outside [{headerEnd}, {length})");
        }
        return new CodeDirectory(slot, cd.Memory)
        {
            Version = version,
            Flags = (CodeDirectoryFlags)flags,
            HashOffset = hashOffset,
            IdentOffset = identOffset,
            Identifier = identifier,
            SpecialSlotCount = nSpecial,
            CodeSlotCount = nCode,
            CodeLimit = codeLimit,
            HashSize = hashSize,
            HashType = hashType,
            Platform = platform,
            PageSizeLog2 = pageSize,
            ScatterOffset = scatter,
            TeamOffset = teamOffset,
            TeamId = team,
            CodeLimit64 = version >= VersionCodeLimit64 ? cd.U64(56, "codeLimit64") : 0,
            ExecSegBase = version >= VersionExecSeg ? cd.U64(64, "execSegBase") : 0,
            ExecSegLimit = version >= VersionExecSeg ? cd.U64(72, "execSegLimit") : 0,
            ExecSegFlags = version >= VersionExecSeg ? cd.U64(80, "execSegFlags") : 0,
            Runtime = version >= VersionRuntime ? cd.U32(88, "runtime") : 0,
            PreEncryptOffset = version >= VersionRuntime ? cd.U32(92, "preEncryptOffset") : 0,
            LinkageHashType = version >= VersionLinkage ? cd.U8(96, "linkageHashType") : (byte)0,
            LinkageApplicationType = version >= VersionLinkage ? cd.U8(97, "linkageApplicationType") : (byte)0,
            LinkageApplicationSubType = version >= VersionLinkage ? (ushort)(cd.U32(96, "linkage") & 0xffff) : (ushort)0,
            LinkageOffset = version >= VersionLinkage ? cd.U32(100, "linkageOffset") : 0,
            LinkageSize = version >= VersionLinkage ? cd.U32(104, "linkageSize") : 0,
        };
    }
}

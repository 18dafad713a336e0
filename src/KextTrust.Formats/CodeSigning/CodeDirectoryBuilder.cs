using System.Buffers.Binary;
using System.Text;

namespace KextTrust.Formats.CodeSigning;

/// <summary>
/// Builds a version 0x20400 CodeDirectory: identifier, team id, hash type, page size, code limit,
/// executable segment, flags, special-slot hashes (1..7) and the code-page hashes it computes from the
/// bytes given (the Mach-O up to the signature's offset).
/// </summary>
public sealed class CodeDirectoryBuilder
{
    /// <summary>The version emitted.</summary>
    public const uint Version = CodeDirectory.VersionExecSeg;

    private const int HeaderSize = 88;

    /// <summary>The signing identifier (required, no NUL).</summary>
    public required string Identifier { get; init; }

    /// <summary>The team identifier; null for none (e.g. ad-hoc).</summary>
    public string? TeamId { get; init; }

    /// <summary>Hash algorithm: SHA-256 (default), SHA-1, SHA-256-truncated or SHA-384.</summary>
    public CodeSigningHashType HashType { get; init; } = CodeSigningHashType.Sha256;

    /// <summary>log2 of the page size; 12 (4096) by default.</summary>
    public byte PageSizeLog2 { get; init; } = 12;

    /// <summary>Flags, e.g. <see cref="CodeDirectoryFlags.Adhoc"/> or none.</summary>
    public CodeDirectoryFlags Flags { get; init; }

    /// <summary>Platform byte (0 for third-party code).</summary>
    public byte Platform { get; init; }

    /// <summary>How many bytes of code are covered; null = all bytes passed to <see cref="Build"/>.</summary>
    public ulong? CodeLimit { get; init; }

    /// <summary>Executable segment base (file offset of __TEXT).</summary>
    public ulong ExecSegBase { get; init; }

    /// <summary>Executable segment limit (size of __TEXT).</summary>
    public ulong ExecSegLimit { get; init; }

    /// <summary>Executable segment flags (e.g. CS_EXECSEG_MAIN_BINARY 0x1).</summary>
    public ulong ExecSegFlags { get; init; }

    /// <summary>Special-slot hashes by slot number 1..7 (each of the hash type's size).</summary>
    public IReadOnlyDictionary<int, byte[]> SpecialSlotHashes { get; init; } = new Dictionary<int, byte[]>();

    /// <summary>Builds the CodeDirectory blob over <paramref name="code"/>.</summary>
    public byte[] Build(ReadOnlySpan<byte> code)
    {
        if (string.IsNullOrEmpty(Identifier) || Identifier.Contains('\0'))
        {
            throw new ArgumentException("identifier must be non-empty and contain no NUL", nameof(Identifier));
        }
        if (TeamId is not null && (TeamId.Length == 0 || TeamId.Contains('\0')))
        {
            throw new ArgumentException("team id must be non-empty and contain no NUL", nameof(TeamId));
        }
        if (PageSizeLog2 is < 9 or > 30)
        {
            throw new ArgumentOutOfRangeException(nameof(PageSizeLog2), PageSizeLog2, "page size must be 2^9..2^30");
        }
        var hashSize = CodeSigningHash.SizeOf(HashType);
        var limit = CodeLimit ?? (ulong)code.Length;
        if (limit > (ulong)code.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(CodeLimit), limit, $"code limit exceeds the {code.Length} bytes given");
        }
        var nSpecial = 0;
        foreach (var (slot, hash) in SpecialSlotHashes)
        {
            if (slot is < 1 or > 7)
            {
                throw new ArgumentOutOfRangeException(nameof(SpecialSlotHashes), slot, "special slots are 1..7");
            }
            if (hash.Length != hashSize)
            {
                throw new ArgumentException($"special slot {slot} hash is {hash.Length} bytes, expected {hashSize}", nameof(SpecialSlotHashes));
            }
            nSpecial = Math.Max(nSpecial, slot);
        }
        var pageSize = 1L << PageSizeLog2;
        var nCode = checked((int)(((long)limit + pageSize - 1) / pageSize));
        var ident = Encoding.UTF8.GetBytes(Identifier + "\0");
        var team = TeamId is null ? [] : Encoding.UTF8.GetBytes(TeamId + "\0");
        var identOffset = HeaderSize;
        var teamOffset = TeamId is null ? 0 : identOffset + ident.Length;
        var hashOffset = checked(identOffset + ident.Length + team.Length + nSpecial * hashSize);
        var length = checked(hashOffset + nCode * hashSize);
        var cd = new byte[length];
        var s = cd.AsSpan();
        BinaryPrimitives.WriteUInt32BigEndian(s, BlobMagic.CodeDirectory);
        BinaryPrimitives.WriteUInt32BigEndian(s[4..], (uint)length);
        BinaryPrimitives.WriteUInt32BigEndian(s[8..], Version);
        BinaryPrimitives.WriteUInt32BigEndian(s[12..], (uint)Flags);
        BinaryPrimitives.WriteUInt32BigEndian(s[16..], (uint)hashOffset);
        BinaryPrimitives.WriteUInt32BigEndian(s[20..], (uint)identOffset);
        BinaryPrimitives.WriteUInt32BigEndian(s[24..], (uint)nSpecial);
        BinaryPrimitives.WriteUInt32BigEndian(s[28..], (uint)nCode);
        BinaryPrimitives.WriteUInt32BigEndian(s[32..], limit <= uint.MaxValue ? (uint)limit : 0);
        s[36] = (byte)hashSize;
        s[37] = (byte)HashType;
        s[38] = Platform;
        s[39] = PageSizeLog2;
        // 40 spare2, 44 scatterOffset = 0
        BinaryPrimitives.WriteUInt32BigEndian(s[48..], (uint)teamOffset);
        // 52 spare3
        BinaryPrimitives.WriteUInt64BigEndian(s[56..], limit <= uint.MaxValue ? 0 : limit);
        BinaryPrimitives.WriteUInt64BigEndian(s[64..], ExecSegBase);
        BinaryPrimitives.WriteUInt64BigEndian(s[72..], ExecSegLimit);
        BinaryPrimitives.WriteUInt64BigEndian(s[80..], ExecSegFlags);
        ident.CopyTo(s[identOffset..]);
        team.CopyTo(s[(identOffset + ident.Length)..]);
        foreach (var (slot, hash) in SpecialSlotHashes)
        {
            hash.CopyTo(s[(hashOffset - slot * hashSize)..]);
        }
        for (var i = 0; i < nCode; i++)
        {
            var start = i * pageSize;
            var end = Math.Min(start + pageSize, (long)limit);
            var page = code[(int)start..(int)end];
            CodeSigningHash.ComputeSlot(HashType, page).CopyTo(s[(hashOffset + i * hashSize)..]);
        }
        return cd;
    }
}

/// <summary>
/// Assembles an embedded-signature SuperBlob: CodeDirectory in slot 0, requirements in 2, entitlements in 5,
/// DER entitlements in 7, alternate CodeDirectories from 0x1000, the CMS BlobWrapper in 0x10000.
/// </summary>
public sealed class EmbeddedSignatureBuilder
{
    /// <summary>The primary CodeDirectory blob (slot 0).</summary>
    public required byte[] CodeDirectory { get; init; }

    /// <summary>The requirement set blob (slot 2), or null.</summary>
    public byte[]? Requirements { get; init; }

    /// <summary>The XML entitlements blob (slot 5, already wrapped with <see cref="WrapEntitlements"/>), or null.</summary>
    public byte[]? Entitlements { get; init; }

    /// <summary>The DER entitlements blob (slot 7, already wrapped), or null.</summary>
    public byte[]? DerEntitlements { get; init; }

    /// <summary>Alternate CodeDirectory blobs, placed at 0x1000, 0x1001, … (at most five).</summary>
    public IReadOnlyList<byte[]> AlternateCodeDirectories { get; init; } = [];

    /// <summary>The DER CMS SignedData; null = no signature slot; empty = an empty wrapper (ad-hoc).</summary>
    public byte[]? Cms { get; init; }

    /// <summary>Wraps XML entitlements in a 0xfade7171 blob.</summary>
    internal static byte[] WrapEntitlements(ReadOnlySpan<byte> xml) => Wrap(BlobMagic.Entitlements, xml);

    /// <summary>Wraps DER entitlements in a 0xfade7172 blob.</summary>
    internal static byte[] WrapDerEntitlements(ReadOnlySpan<byte> der) => Wrap(BlobMagic.DerEntitlements, der);

    /// <summary>Wraps CMS bytes in a 0xfade0b01 BlobWrapper.</summary>
    internal static byte[] WrapCms(ReadOnlySpan<byte> cms) => Wrap(BlobMagic.BlobWrapper, cms);

    /// <summary>The special-slot hash of a blob (its whole bytes) for the given hash type.</summary>
    internal static byte[] SpecialSlotHash(CodeSigningHashType type, ReadOnlySpan<byte> blob) => CodeSigningHash.ComputeSlot(type, blob);

    private static byte[] Wrap(uint magic, ReadOnlySpan<byte> payload)
    {
        var blob = new byte[checked(8 + payload.Length)];
        BinaryPrimitives.WriteUInt32BigEndian(blob, magic);
        BinaryPrimitives.WriteUInt32BigEndian(blob.AsSpan(4), (uint)blob.Length);
        payload.CopyTo(blob.AsSpan(8));
        return blob;
    }

    /// <summary>Builds the SuperBlob bytes.</summary>
    public byte[] Build()
    {
        if (AlternateCodeDirectories.Count > 5)
        {
            throw new ArgumentException("at most five alternate CodeDirectories", nameof(AlternateCodeDirectories));
        }
        var parts = new List<(uint Slot, byte[] Blob)> { (CodeSignatureSlot.CodeDirectory, CodeDirectory) };
        if (Requirements is not null)
        {
            parts.Add((CodeSignatureSlot.Requirements, Requirements));
        }
        if (Entitlements is not null)
        {
            parts.Add((CodeSignatureSlot.Entitlements, Entitlements));
        }
        if (DerEntitlements is not null)
        {
            parts.Add((CodeSignatureSlot.DerEntitlements, DerEntitlements));
        }
        for (var i = 0; i < AlternateCodeDirectories.Count; i++)
        {
            parts.Add((CodeSignatureSlot.AlternateCodeDirectoryFirst + (uint)i, AlternateCodeDirectories[i]));
        }
        if (Cms is not null)
        {
            parts.Add((CodeSignatureSlot.Signature, WrapCms(Cms)));
        }
        var offset = checked(12 + 8 * parts.Count);
        var total = offset;
        foreach (var (_, blob) in parts)
        {
            total = checked(total + blob.Length);
        }
        var sb = new byte[total];
        BinaryPrimitives.WriteUInt32BigEndian(sb, BlobMagic.EmbeddedSignature);
        BinaryPrimitives.WriteUInt32BigEndian(sb.AsSpan(4), (uint)total);
        BinaryPrimitives.WriteUInt32BigEndian(sb.AsSpan(8), (uint)parts.Count);
        for (var i = 0; i < parts.Count; i++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(sb.AsSpan(12 + 8 * i), parts[i].Slot);
            BinaryPrimitives.WriteUInt32BigEndian(sb.AsSpan(16 + 8 * i), (uint)offset);
            parts[i].Blob.CopyTo(sb, offset);
            offset += parts[i].Blob.Length;
        }
        return sb;
    }
}

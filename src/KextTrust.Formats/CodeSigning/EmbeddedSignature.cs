namespace KextTrust.Formats.CodeSigning;

/// <summary>
/// An embedded code signature: the SuperBlob (0xfade0cc0) at LC_CODE_SIGNATURE and its blobs, each parsed
/// to its own type (CodeDirectory, alternates, requirements, entitlements, CMS; unknown kept raw).
/// </summary>
public sealed class EmbeddedSignature
{
    private EmbeddedSignature(ReadOnlyMemory<byte> bytes, IReadOnlyList<CodeSignatureBlob> blobs, string? source)
    {
        Bytes = bytes;
        Blobs = blobs;
        SourceName = source;
        CodeDirectory = blobs.OfType<CodeDirectory>().First(b => b.Slot == CodeSignatureSlot.CodeDirectory);
        AlternateCodeDirectories = blobs.OfType<CodeDirectory>().Where(b => b.Slot != CodeSignatureSlot.CodeDirectory).OrderBy(b => b.Slot).ToArray();
        Requirements = blobs.OfType<RequirementSet>().FirstOrDefault();
        Entitlements = blobs.OfType<EntitlementsBlob>().FirstOrDefault();
        DerEntitlements = blobs.OfType<DerEntitlementsBlob>().FirstOrDefault();
        Signature = blobs.OfType<CmsSignatureBlob>().FirstOrDefault();
    }

    /// <summary>The SuperBlob bytes (its declared length, without trailing padding).</summary>
    public ReadOnlyMemory<byte> Bytes { get; }

    /// <summary>The caller-given source label.</summary>
    public string? SourceName { get; }

    /// <summary>All blobs in index order.</summary>
    public IReadOnlyList<CodeSignatureBlob> Blobs { get; }

    /// <summary>The primary CodeDirectory (slot 0).</summary>
    public CodeDirectory CodeDirectory { get; }

    /// <summary>Alternate CodeDirectories (slots 0x1000–0x1004), by slot.</summary>
    public IReadOnlyList<CodeDirectory> AlternateCodeDirectories { get; }

    /// <summary>Every CodeDirectory: the primary first, then the alternates.</summary>
    public IReadOnlyList<CodeDirectory> AllCodeDirectories => [CodeDirectory, .. AlternateCodeDirectories];

    /// <summary>The requirement set (slot 2), when present.</summary>
    public RequirementSet? Requirements { get; }

    /// <summary>XML entitlements (slot 5), when present.</summary>
    public EntitlementsBlob? Entitlements { get; }

    /// <summary>DER entitlements (slot 7), when present.</summary>
    public DerEntitlementsBlob? DerEntitlements { get; }

    /// <summary>The CMS BlobWrapper (slot 0x10000), when present.</summary>
    public CmsSignatureBlob? Signature { get; }

    /// <summary>The blob in <paramref name="slot"/>, or null.</summary>
    public CodeSignatureBlob? Find(uint slot) => Blobs.FirstOrDefault(b => b.Slot == slot);

    /// <summary>Parses a SuperBlob; any rule broken throws <see cref="CodeSignatureFormatException"/>.</summary>
    public static EmbeddedSignature Parse(ReadOnlyMemory<byte> superBlob, string? sourceName)
    {
        var all = new BlobCursor(superBlob, sourceName, 0);
        var magic = all.U32(0, "SuperBlob magic");
        if (magic != BlobMagic.EmbeddedSignature)
        {
            throw all.Fail(0, $"SuperBlob magic 0x{magic:x8} is not 0x{BlobMagic.EmbeddedSignature:x8}");
        }
        var length = all.U32(4, "SuperBlob length");
        if (length < 12 || length > all.Length)
        {
            throw all.Fail(4, $"SuperBlob length {length} is outside 12..{all.Length}");
        }
        var sb = all.Sub(0, length, "SuperBlob");
        var count = sb.U32(8, "SuperBlob count");
        var indexEnd = checked(12L + 8L * count);
        if (indexEnd > length)
        {
            throw sb.Fail(8, $"SuperBlob count {count} needs {indexEnd} bytes of index but the blob has {length}");
        }
        var blobs = new List<CodeSignatureBlob>((int)count);
        var ranges = new List<(long Start, long End, int Index)>((int)count);
        var slots = new HashSet<uint>();
        for (var i = 0; i < count; i++)
        {
            long entry = 12 + 8L * i;
            var slot = sb.U32(entry, "blob index type");
            var offset = sb.U32(entry + 4, "blob index offset");
            if (!slots.Add(slot))
            {
                throw sb.Fail(entry, $"slot 0x{slot:x} appears twice in the index");
            }
            if (offset < indexEnd || offset > length - 8L)
            {
                throw sb.Fail(entry + 4, $"blob {i} offset {offset} is outside [{indexEnd}, {length - 8})");
            }
            var blobMagic = sb.U32(offset, "blob magic");
            var blobLength = sb.U32(offset + 4L, "blob length");
            if (blobLength < 8 || blobLength > length - (long)offset)
            {
                throw sb.Fail(offset + 4L, $"blob {i} length {blobLength} is outside 8..{length - (long)offset}");
            }
            ranges.Add((offset, offset + (long)blobLength, i));
            var cur = sb.Sub(offset, blobLength, $"blob {i}");
            blobs.Add(ParseBlob(cur, slot, blobMagic));
        }
        ranges.Sort((a, b) => a.Start.CompareTo(b.Start));
        for (var i = 1; i < ranges.Count; i++)
        {
            if (ranges[i].Start < ranges[i - 1].End)
            {
                throw sb.Fail(ranges[i].Start, $"blob {ranges[i].Index} overlaps blob {ranges[i - 1].Index}");
            }
        }
        if (!blobs.Any(b => b is CodeDirectory && b.Slot == CodeSignatureSlot.CodeDirectory))
        {
            throw sb.Fail(8, "no CodeDirectory in slot 0");
        }
        return new EmbeddedSignature(sb.Memory, blobs, sourceName);
    }

    private static CodeSignatureBlob ParseBlob(BlobCursor cur, uint slot, uint magic)
    {
        if (CodeSignatureSlot.IsCodeDirectory(slot))
        {
            if (magic != BlobMagic.CodeDirectory)
            {
                throw cur.Fail(0, $"slot 0x{slot:x} holds magic 0x{magic:x8}, not a CodeDirectory");
            }
            return CodeDirectory.Parse(cur, slot);
        }
        return (slot, magic) switch
        {
            (CodeSignatureSlot.Requirements, BlobMagic.RequirementSet) => RequirementSet.Parse(cur, slot),
            (CodeSignatureSlot.Entitlements, BlobMagic.Entitlements) => new EntitlementsBlob(slot, cur.Memory),
            (CodeSignatureSlot.DerEntitlements, BlobMagic.DerEntitlements) => new DerEntitlementsBlob(slot, cur.Memory),
            (CodeSignatureSlot.Signature, BlobMagic.BlobWrapper) => new CmsSignatureBlob(slot, cur.Memory),
            (CodeSignatureSlot.Requirements or CodeSignatureSlot.Entitlements or CodeSignatureSlot.DerEntitlements or CodeSignatureSlot.Signature, _) =>
                throw cur.Fail(0, $"slot 0x{slot:x} holds unexpected magic 0x{magic:x8}"),
            _ => new UnknownBlob(slot, magic, cur.Memory),
        };
    }
}

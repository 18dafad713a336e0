using System.Text;

namespace KextTrust.Formats.CodeSigning;

/// <summary>One blob of an embedded signature, with the slot it sits in and its raw bytes (header included).</summary>
public abstract class CodeSignatureBlob
{
    private protected CodeSignatureBlob(uint slot, uint magic, ReadOnlyMemory<byte> bytes)
    {
        Slot = slot;
        Magic = magic;
        Bytes = bytes;
    }

    /// <summary>The SuperBlob index type (slot) of this blob.</summary>
    public uint Slot { get; }

    /// <summary>The blob's magic.</summary>
    public uint Magic { get; }

    /// <summary>The whole blob, header included.</summary>
    public ReadOnlyMemory<byte> Bytes { get; }
}

/// <summary>A requirement set (0xfade0c01): typed requirements, each decompiled.</summary>
public sealed class RequirementSet : CodeSignatureBlob
{
    private RequirementSet(uint slot, ReadOnlyMemory<byte> bytes, IReadOnlyList<RequirementSetEntry> entries)
        : base(slot, BlobMagic.RequirementSet, bytes)
    {
        Entries = entries;
    }

    /// <summary>The requirements in index order.</summary>
    public IReadOnlyList<RequirementSetEntry> Entries { get; }

    /// <summary>The designated requirement, when present.</summary>
    public Requirement? Designated => Entries.FirstOrDefault(e => e.Type == RequirementType.Designated)?.Requirement;

    /// <summary>The set printed like <c>codesign -d -r-</c>: one <c>type =&gt; expression</c> line per requirement.</summary>
    public string ToText() => string.Join("\n", Entries.Select(e => $"{TypeName(e.Type)} => {e.Requirement.Text}"));

    /// <inheritdoc />
    public override string ToString() => ToText();

    /// <summary>The name codesign prints for a requirement type.</summary>
    public static string TypeName(RequirementType type) => type switch
    {
        RequirementType.Host => "host",
        RequirementType.Guest => "guest",
        RequirementType.Designated => "designated",
        RequirementType.Library => "library",
        RequirementType.Plugin => "plugin",
        _ => $"/* type {(uint)type} */",
    };

    /// <summary>Parses a requirement set blob.</summary>
    public static RequirementSet Parse(ReadOnlyMemory<byte> blob, string? sourceName) =>
        Parse(new BlobCursor(blob, sourceName, 0), CodeSignatureSlot.Requirements);

    internal static RequirementSet Parse(BlobCursor cur, uint slot)
    {
        var magic = cur.U32(0, "requirement set magic");
        if (magic != BlobMagic.RequirementSet)
        {
            throw cur.Fail(0, $"requirement set magic 0x{magic:x8} is not 0x{BlobMagic.RequirementSet:x8}");
        }
        var length = cur.U32(4, "requirement set length");
        if (length < 12 || length > cur.Length)
        {
            throw cur.Fail(4, $"requirement set length {length} is outside 12..{cur.Length}");
        }
        var set = cur.Sub(0, length, "requirement set");
        var count = set.U32(8, "requirement set count");
        var indexEnd = checked(12L + 8L * count);
        if (indexEnd > length)
        {
            throw set.Fail(8, $"requirement set count {count} does not fit the {length}-byte blob");
        }
        var entries = new List<RequirementSetEntry>((int)count);
        for (var i = 0; i < count; i++)
        {
            var type = set.U32(12 + 8 * i, "requirement type");
            var offset = set.U32(16 + 8 * i, "requirement offset");
            if (offset < indexEnd || offset > length - 8)
            {
                throw set.Fail(16 + 8 * i, $"requirement offset {offset} is outside {indexEnd}..{length - 8}");
            }
            var req = Requirement.Parse(set.Sub(offset, length - offset, "requirement"));
            entries.Add(new RequirementSetEntry((RequirementType)type, req));
        }
        return new RequirementSet(slot, set.Memory, entries);
    }
}

/// <summary>One requirement of a <see cref="RequirementSet"/>.</summary>
public sealed record RequirementSetEntry(RequirementType Type, Requirement Requirement);

/// <summary>XML entitlements (0xfade7171), kept as raw bytes and text.</summary>
public sealed class EntitlementsBlob : CodeSignatureBlob
{
    internal EntitlementsBlob(uint slot, ReadOnlyMemory<byte> bytes)
        : base(slot, BlobMagic.Entitlements, bytes)
    {
    }

    /// <summary>The XML property list bytes (after the 8-byte header).</summary>
    public ReadOnlyMemory<byte> Payload => Bytes[8..];

    /// <summary>The XML as text (UTF-8, invalid sequences replaced).</summary>
    public string Text => Encoding.UTF8.GetString(Payload.Span);
}

/// <summary>DER entitlements (0xfade7172), kept raw.</summary>
public sealed class DerEntitlementsBlob : CodeSignatureBlob
{
    internal DerEntitlementsBlob(uint slot, ReadOnlyMemory<byte> bytes)
        : base(slot, BlobMagic.DerEntitlements, bytes)
    {
    }

    /// <summary>The DER bytes (after the 8-byte header).</summary>
    public ReadOnlyMemory<byte> Payload => Bytes[8..];
}

/// <summary>The CMS signature BlobWrapper (0xfade0b01); empty for ad-hoc signatures.</summary>
public sealed class CmsSignatureBlob : CodeSignatureBlob
{
    internal CmsSignatureBlob(uint slot, ReadOnlyMemory<byte> bytes)
        : base(slot, BlobMagic.BlobWrapper, bytes)
    {
    }

    /// <summary>The DER CMS SignedData (after the 8-byte header).</summary>
    public ReadOnlyMemory<byte> CmsBytes => Bytes[8..];
}

/// <summary>A blob of a kind this library does not interpret, kept raw.</summary>
public sealed class UnknownBlob : CodeSignatureBlob
{
    internal UnknownBlob(uint slot, uint magic, ReadOnlyMemory<byte> bytes)
        : base(slot, magic, bytes)
    {
    }
}

using System.Formats.Asn1;

namespace KextTrust.Formats.Image4;

/// <summary>What an Image4 file holds, told by its magic string.</summary>
public enum Im4Kind
{
    /// <summary><c>IMG4</c>: payload, manifest and optional restore info.</summary>
    Img4,
    /// <summary><c>IM4P</c>: a payload alone.</summary>
    Payload,
    /// <summary><c>IM4M</c>: a manifest alone (an APTicket, a LocalPolicy).</summary>
    Manifest,
    /// <summary><c>IM4R</c>: restore info alone.</summary>
    RestoreInfo,
}

/// <summary>A decoded Image4 file of any of the four kinds; exactly the member of its <see cref="Kind"/> is set.</summary>
public sealed record Im4Document(Im4Kind Kind, Img4? Image = null, Im4Payload? Payload = null, Im4Manifest? Manifest = null, Im4Restore? RestoreInfo = null)
{
    /// <summary>
    /// Decodes a DER Image4 of whichever kind its magic (the first IA5String of the top SEQUENCE) names, strictly;
    /// <see cref="Image4FormatException"/> naming the offset and the rule on any defect or an unknown magic.
    /// </summary>
    public static Im4Document Decode(ReadOnlyMemory<byte> der, string? sourceName = null)
    {
        var cursor = new DerCursor(der, sourceName);
        var top = cursor.Enter(cursor.ReadSequence("Image4 top-level SEQUENCE"));
        var magicOffset = top.Position;
        var magic = top.ReadIA5String("Image4 magic");
        return magic switch
        {
            Img4.Magic => new(Im4Kind.Img4, Image: Img4.FromBytes(der, sourceName)),
            Im4Payload.Magic => new(Im4Kind.Payload, Payload: Im4Payload.FromBytes(der, sourceName)),
            Im4Manifest.Magic => new(Im4Kind.Manifest, Manifest: Im4Manifest.FromBytes(der, sourceName)),
            Im4Restore.Magic => new(Im4Kind.RestoreInfo, RestoreInfo: Im4Restore.FromBytes(der, sourceName)),
            _ => throw cursor.Error(magicOffset, $"unknown Image4 magic \"{DerCursor.Printable(magic)}\" (IMG4, IM4P, IM4M or IM4R)"),
        };
    }

    /// <summary>True when <paramref name="bytes"/> begin like a DER SEQUENCE (0x30), as every Image4 does.</summary>
    public static bool LooksLikeDer(ReadOnlySpan<byte> bytes) => bytes.Length > 0 && bytes[0] == 0x30;
}

using System.Formats.Asn1;

namespace KextTrust.Formats.Image4;

/// <summary>
/// A complete Image4 file: <c>SEQUENCE { "IMG4", IM4P, [0] EXPLICIT IM4M, [1] EXPLICIT IM4R OPTIONAL }</c>.
/// Equality is equality of the DER encodings.
/// </summary>
public sealed record Img4
{
    /// <summary>The magic string.</summary>
    public const string Magic = "IMG4";

    private static readonly Asn1Tag ManifestTag = new(TagClass.ContextSpecific, 0, isConstructed: true);
    private static readonly Asn1Tag RestoreTag = new(TagClass.ContextSpecific, 1, isConstructed: true);

    private readonly byte[] _encoded;

    /// <summary>Assembles an IMG4.</summary>
    public Img4(Im4Payload payload, Im4Manifest manifest, Im4Restore? restoreInfo = null)
    {
        Payload = payload ?? throw new ArgumentNullException(nameof(payload));
        Manifest = manifest ?? throw new ArgumentNullException(nameof(manifest));
        RestoreInfo = restoreInfo;
        var payloadDer = Payload.EncodedSpan;
        var writer = new AsnWriter(AsnEncodingRules.DER, Im4Payload.EncodingCapacity((long)payloadDer.Length + Manifest.EncodedSpan.Length));
        writer.PushSequence();
        writer.WriteCharacterString(UniversalTagNumber.IA5String, Magic);
        writer.WriteEncodedValue(payloadDer);
        writer.PushSequence(ManifestTag);
        writer.WriteEncodedValue(Manifest.EncodedSpan);
        writer.PopSequence(ManifestTag);
        if (RestoreInfo is not null)
        {
            writer.PushSequence(RestoreTag);
            RestoreInfo.Write(writer);
            writer.PopSequence(RestoreTag);
        }
        writer.PopSequence();
        _encoded = writer.Encode();
    }

    /// <summary>The payload (IM4P).</summary>
    public Im4Payload Payload { get; }

    /// <summary>The manifest (IM4M).</summary>
    public Im4Manifest Manifest { get; }

    /// <summary>The restore info (IM4R), or null.</summary>
    public Im4Restore? RestoreInfo { get; }

    /// <summary>The DER encoding.</summary>
    public byte[] Encode() => (byte[])_encoded.Clone();

    /// <summary>The DER encoding, without a copy.</summary>
    public ReadOnlyMemory<byte> Encoded => _encoded;

    /// <summary>Decodes a DER IMG4 strictly; <see cref="Image4FormatException"/> on any defect.</summary>
    public static Img4 FromBytes(ReadOnlyMemory<byte> der, string? sourceName = null) =>
        Im4Codec.DecodeTop(der, sourceName, Read);

    private static Img4 Read(DerCursor cursor)
    {
        var sequence = cursor.ReadSequence("IMG4");
        var c = cursor.Enter(sequence);
        c.ExpectMagic(Magic);
        var payload = Im4Payload.Read(c);
        var manifestWrapper = c.Enter(c.Read(ManifestTag, "IMG4 [0] manifest"));
        var manifest = Im4Manifest.Read(manifestWrapper);
        manifestWrapper.ExpectEnd("IMG4 [0] manifest");
        Im4Restore? restore = null;
        if (c.HasMore)
        {
            var restoreWrapper = c.Enter(c.Read(RestoreTag, "IMG4 [1] restore info"));
            restore = Im4Restore.Read(restoreWrapper);
            restoreWrapper.ExpectEnd("IMG4 [1] restore info");
        }
        c.ExpectEnd("IMG4");
        return new Img4(payload, manifest, restore);
    }

    /// <inheritdoc/>
    public bool Equals(Img4? other) => other is not null && _encoded.AsSpan().SequenceEqual(other._encoded);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Payload, _encoded.Length);
}

using System.Formats.Asn1;

namespace KextTrust.Formats.Image4;

/// <summary>The optional compression info of an IM4P: <c>SEQUENCE { INTEGER algorithm (1 = LZFSE), INTEGER uncompressedSize }</c>.</summary>
public sealed record Im4Compression(ulong Algorithm, ulong UncompressedSize)
{
    /// <summary>The algorithm number Apple uses for LZFSE.</summary>
    public const ulong Lzfse = 1;
}

/// <summary>
/// An Image4 payload: <c>SEQUENCE { "IM4P", IA5String type, IA5String description, OCTET STRING data,
/// OCTET STRING keybags OPTIONAL, SEQUENCE compression OPTIONAL, [0] EXPLICIT SEQUENCE { "PAYP",
/// SET { properties } } OPTIONAL }</c>. Holds copies of its bytes; equality is equality of the DER encodings.
/// </summary>
public sealed record Im4Payload
{
    /// <summary>The magic string.</summary>
    public const string Magic = "IM4P";

    private const string PropertiesMagic = "PAYP";
    private static readonly Asn1Tag PropertiesTag = new(TagClass.ContextSpecific, 0, isConstructed: true);

    private readonly ReadOnlyMemory<byte> _data;
    private readonly byte[]? _keybags;
    private readonly byte[] _encoded;

    /// <summary>
    /// Creates a payload. <paramref name="type"/> must be a 4CC; <paramref name="description"/> 7-bit ASCII.
    /// </summary>
    public Im4Payload(string type, string description, ReadOnlySpan<byte> data, byte[]? keybags = null,
        Im4Compression? compression = null, Im4PropertySet? properties = null)
    {
        Type = FourCC.Validate(type, nameof(type));
        Im4Codec.ValidateIA5(description, nameof(description));
        Description = description;
        _keybags = keybags is null ? null : (byte[])keybags.Clone();
        Compression = compression;
        Properties = properties;
        _encoded = EncodeCore(data);
        // The payload bytes are kept once, inside the encoding: a large payload (an AuxKC) is not held twice.
        var im4p = new AsnReader(_encoded, AsnEncodingRules.DER).ReadSequence();
        im4p.ReadEncodedValue();
        im4p.ReadEncodedValue();
        im4p.ReadEncodedValue();
        _data = im4p.TryReadPrimitiveOctetString(out var content) ? content
            : throw new InvalidOperationException("the IM4P encoding has no primitive payload OCTET STRING");
    }

    /// <summary>The payload type 4CC (e.g. <c>krnl</c>, <c>auxk</c>).</summary>
    public string Type { get; }

    /// <summary>The description string.</summary>
    public string Description { get; }

    /// <summary>The payload bytes.</summary>
    public ReadOnlyMemory<byte> Data => _data;

    /// <summary>The raw keybags OCTET STRING content, or null when absent.</summary>
    public ReadOnlyMemory<byte>? Keybags => _keybags is null ? (ReadOnlyMemory<byte>?)null : _keybags.AsMemory();

    /// <summary>The compression info, or null when absent.</summary>
    public Im4Compression? Compression { get; }

    /// <summary>The PAYP properties, or null when absent.</summary>
    public Im4PropertySet? Properties { get; }

    /// <summary>The DER encoding of the whole IM4P element.</summary>
    public byte[] Encode() => (byte[])_encoded.Clone();

    /// <summary>
    /// SHA-384 of the entire IM4P DER element (tag, length and content) — the value a manifest's
    /// object <c>DGST</c> property holds.
    /// </summary>
    public Sha384Digest ComputeDigest() => Sha384Digest.Compute(_encoded);

    /// <summary>Decodes a DER IM4P strictly; <see cref="Image4FormatException"/> on any defect.</summary>
    public static Im4Payload FromBytes(ReadOnlyMemory<byte> der, string? sourceName = null) =>
        Im4Codec.DecodeTop(der, sourceName, Read);

    internal static Im4Payload Read(DerCursor cursor)
    {
        var sequence = cursor.ReadSequence("IM4P");
        var c = cursor.Enter(sequence);
        c.ExpectMagic(Magic);
        var typeOffset = c.Position;
        var type = c.ReadIA5String("IM4P type");
        if (!FourCC.IsValid(type))
        {
            throw c.Error(typeOffset, $"IM4P type \"{DerCursor.Printable(type)}\" is not a four-character code");
        }
        var description = c.ReadIA5String("IM4P description");
        var data = c.ReadOctetString("IM4P payload");

        byte[]? keybags = null;
        Im4Compression? compression = null;
        Im4PropertySet? properties = null;
        if (c.PeekTag("IM4P keybags") == Asn1Tag.PrimitiveOctetString)
        {
            keybags = c.ReadOctetString("IM4P keybags").ToArray();
        }
        if (c.PeekTag("IM4P compression") == Asn1Tag.Sequence)
        {
            var info = c.Enter(c.ReadSequence("IM4P compression"));
            var algorithm = info.ReadUInt64("compression algorithm");
            var size = info.ReadUInt64("uncompressed size");
            info.ExpectEnd("IM4P compression");
            compression = new Im4Compression(algorithm, size);
        }
        if (c.PeekTag("IM4P properties") == PropertiesTag)
        {
            var wrapper = c.Enter(c.Read(PropertiesTag, "IM4P [0] properties"));
            var payp = wrapper.Enter(wrapper.ReadSequence("PAYP"));
            wrapper.ExpectEnd("IM4P [0] properties");
            payp.ExpectMagic(PropertiesMagic);
            properties = Im4Codec.ReadPropertySet(payp, "PAYP");
            payp.ExpectEnd("PAYP");
        }
        c.ExpectEnd("IM4P");
        return new Im4Payload(type, description, data.Span, keybags, compression, properties);
    }

    private byte[] EncodeCore(ReadOnlySpan<byte> data)
    {
        // Sized for the data up front: a large payload (an AuxKC) is then written once, not re-copied as the buffer grows.
        var writer = new AsnWriter(AsnEncodingRules.DER, EncodingCapacity(data.Length + (_keybags?.Length ?? 0)));
        Write(writer, data);
        return writer.Encode();
    }

    /// <summary>An upper bound of a DER encoding holding <paramref name="bytes"/> of octet strings and small fields.</summary>
    internal static int EncodingCapacity(long bytes) => (int)Math.Min(Array.MaxLength, bytes + 4096);

    /// <summary>The DER encoding of the whole IM4P element, without a copy.</summary>
    internal ReadOnlySpan<byte> EncodedSpan => _encoded;

    private void Write(AsnWriter writer, ReadOnlySpan<byte> data)
    {
        writer.PushSequence();
        writer.WriteCharacterString(UniversalTagNumber.IA5String, Magic);
        writer.WriteCharacterString(UniversalTagNumber.IA5String, Type);
        writer.WriteCharacterString(UniversalTagNumber.IA5String, Description);
        writer.WriteOctetString(data);
        if (_keybags is not null)
        {
            writer.WriteOctetString(_keybags);
        }
        if (Compression is not null)
        {
            writer.PushSequence();
            writer.WriteInteger(Compression.Algorithm);
            writer.WriteInteger(Compression.UncompressedSize);
            writer.PopSequence();
        }
        if (Properties is not null)
        {
            writer.PushSequence(PropertiesTag);
            writer.PushSequence();
            writer.WriteCharacterString(UniversalTagNumber.IA5String, PropertiesMagic);
            Properties.WriteSet(writer);
            writer.PopSequence();
            writer.PopSequence(PropertiesTag);
        }
        writer.PopSequence();
    }

    /// <inheritdoc/>
    public bool Equals(Im4Payload? other) => other is not null && _encoded.AsSpan().SequenceEqual(other._encoded);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Type, Description, _encoded.Length);
}

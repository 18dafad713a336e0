using System.Formats.Asn1;

namespace KextTrust.Formats.Image4;

/// <summary>
/// Image4 restore info: <c>SEQUENCE { "IM4R", SET { [PRIVATE 'BNCN'] SEQUENCE { "BNCN", OCTET STRING(8) }, … } }</c>.
/// <c>BNCN</c> (the 8-byte boot-nonce generator) is required. Value equality.
/// </summary>
public sealed record Im4Restore
{
    /// <summary>The magic string.</summary>
    public const string Magic = "IM4R";

    /// <summary>The boot-nonce property 4CC.</summary>
    internal const string BootNonceTag = "BNCN";

    /// <summary>Length of the boot-nonce generator.</summary>
    internal const int BootNonceLength = 8;

    /// <summary>Creates restore info; <see cref="ArgumentException"/> unless BNCN is an 8-byte OCTET STRING.</summary>
    public Im4Restore(Im4PropertySet properties)
    {
        ArgumentNullException.ThrowIfNull(properties);
        if (CheckBootNonce(properties) is { } problem)
        {
            throw new ArgumentException(problem, nameof(properties));
        }
        Properties = properties;
    }

    /// <summary>Restore info holding only <c>BNCN</c> = <paramref name="generator"/> (8 bytes).</summary>
    internal static Im4Restore WithBootNonce(ReadOnlySpan<byte> generator) =>
        new(new Im4PropertySet(new Im4Property(BootNonceTag, new Im4OctetString(generator))));

    /// <summary>The properties.</summary>
    public Im4PropertySet Properties { get; }

    /// <summary>The 8-byte boot-nonce generator (<c>BNCN</c>).</summary>
    public ReadOnlyMemory<byte> BootNonce => ((Im4OctetString)Properties.Find(BootNonceTag)!).Value;

    /// <summary>The DER encoding.</summary>
    public byte[] Encode()
    {
        var writer = new AsnWriter(AsnEncodingRules.DER);
        Write(writer);
        return writer.Encode();
    }

    internal void Write(AsnWriter writer)
    {
        writer.PushSequence();
        writer.WriteCharacterString(UniversalTagNumber.IA5String, Magic);
        Properties.WriteSet(writer);
        writer.PopSequence();
    }

    /// <summary>Decodes a DER IM4R strictly; <see cref="Image4FormatException"/> on any defect.</summary>
    public static Im4Restore FromBytes(ReadOnlyMemory<byte> der, string? sourceName = null) =>
        Im4Codec.DecodeTop(der, sourceName, Read);

    internal static Im4Restore Read(DerCursor cursor)
    {
        var sequence = cursor.ReadSequence("IM4R");
        var c = cursor.Enter(sequence);
        c.ExpectMagic(Magic);
        var setOffset = c.Position;
        var properties = Im4Codec.ReadPropertySet(c, "IM4R");
        c.ExpectEnd("IM4R");
        if (CheckBootNonce(properties) is { } problem)
        {
            throw c.Error(setOffset, problem);
        }
        return new Im4Restore(properties);
    }

    private static string? CheckBootNonce(Im4PropertySet properties) =>
        properties.Find(BootNonceTag) switch
        {
            null => "IM4R holds no BNCN",
            Im4OctetString { Value.Length: BootNonceLength } => null,
            Im4OctetString o => $"IM4R BNCN must be {BootNonceLength} bytes, found {o.Value.Length}",
            _ => "IM4R BNCN must be an OCTET STRING",
        };
}

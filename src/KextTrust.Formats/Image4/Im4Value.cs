using System.Formats.Asn1;

namespace KextTrust.Formats.Image4;

/// <summary>
/// The value of an Image4 property: one of <see cref="Im4Integer"/> (INTEGER, 0 … 2^64-1),
/// <see cref="Im4Boolean"/> (BOOLEAN), <see cref="Im4OctetString"/> (OCTET STRING) or
/// <see cref="Im4String"/> (IA5String). Immutable, with value equality.
/// </summary>
public abstract record Im4Value
{
    private protected Im4Value()
    {
    }

    internal abstract void Write(AsnWriter writer);
}

/// <summary>An INTEGER property value (unsigned, up to 64 bits; e.g. <c>ECID</c>, <c>sip0</c>).</summary>
public sealed record Im4Integer(ulong Value) : Im4Value
{
    internal override void Write(AsnWriter writer) => writer.WriteInteger(Value);
}

/// <summary>A BOOLEAN property value (e.g. <c>smb0</c>, <c>CPRO</c>).</summary>
public sealed record Im4Boolean(bool Value) : Im4Value
{
    internal override void Write(AsnWriter writer) => writer.WriteBoolean(Value);
}

/// <summary>An OCTET STRING property value (e.g. <c>DGST</c>, <c>lpnh</c>); holds its own copy of the bytes.</summary>
public sealed record Im4OctetString : Im4Value
{
    private readonly byte[] _value;

    /// <summary>Copies <paramref name="value"/>.</summary>
    public Im4OctetString(ReadOnlySpan<byte> value) => _value = value.ToArray();

    /// <summary>The bytes.</summary>
    public ReadOnlyMemory<byte> Value => _value;

    /// <inheritdoc/>
    public bool Equals(Im4OctetString? other) => other is not null && _value.AsSpan().SequenceEqual(other._value);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.AddBytes(_value);
        return hash.ToHashCode();
    }

    /// <inheritdoc/>
    public override string ToString() => $"Im4OctetString {{ {Convert.ToHexStringLower(_value)} }}";

    internal override void Write(AsnWriter writer) => writer.WriteOctetString(_value);
}

/// <summary>An IA5String property value (7-bit ASCII).</summary>
public sealed record Im4String : Im4Value
{
    /// <summary>Creates the value; <see cref="ArgumentException"/> if a character is outside 7-bit ASCII.</summary>
    public Im4String(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        foreach (var c in value)
        {
            if (c > 0x7F)
            {
                throw new ArgumentException("an IA5String holds 7-bit ASCII only", nameof(value));
            }
        }
        Value = value;
    }

    /// <summary>The text.</summary>
    public string Value { get; }

    internal override void Write(AsnWriter writer) => writer.WriteCharacterString(UniversalTagNumber.IA5String, Value);
}

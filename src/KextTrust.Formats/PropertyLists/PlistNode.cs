using System.Globalization;

namespace KextTrust.Formats.PropertyLists;

/// <summary>The type of a property-list node.</summary>
public enum PlistKind
{
    Dictionary,
    Array,
    String,
    Integer,
    Real,
    Boolean,
    Date,
    Data,
    Uid,
}

/// <summary>
/// An immutable property-list value. Equality is structural: two trees are equal when they hold
/// the same values (dictionaries compare as key sets, regardless of key order).
/// </summary>
public abstract class PlistNode : IEquatable<PlistNode>
{
    private protected PlistNode()
    {
    }

    /// <summary>Which node type this is.</summary>
    public abstract PlistKind Kind { get; }

    /// <summary>Structural equality with another node.</summary>
    public abstract bool Equals(PlistNode? other);

    /// <inheritdoc/>
    public sealed override bool Equals(object? obj) => obj is PlistNode n && Equals(n);

    /// <inheritdoc/>
    public abstract override int GetHashCode();

    /// <summary>Structural equality.</summary>
    public static bool operator ==(PlistNode? a, PlistNode? b) => a is null ? b is null : a.Equals(b);

    /// <summary>Structural inequality.</summary>
    public static bool operator !=(PlistNode? a, PlistNode? b) => !(a == b);

    /// <summary>The lower-case name of a kind as used in error messages ("string", "dictionary", …).</summary>
    public static string KindName(PlistKind kind) => kind switch
    {
        PlistKind.Dictionary => "dictionary",
        PlistKind.Array => "array",
        PlistKind.String => "string",
        PlistKind.Integer => "integer",
        PlistKind.Real => "real",
        PlistKind.Boolean => "boolean",
        PlistKind.Date => "date",
        PlistKind.Data => "data",
        PlistKind.Uid => "UID",
        _ => kind.ToString(),
    };
}

/// <summary>A Unicode string (<c>&lt;string&gt;</c>).</summary>
public sealed class PlistString(string value) : PlistNode
{
    /// <summary>The text.</summary>
    public string Value { get; } = value ?? throw new ArgumentNullException(nameof(value));

    /// <inheritdoc/>
    public override PlistKind Kind => PlistKind.String;

    /// <inheritdoc/>
    public override bool Equals(PlistNode? other) => other is PlistString s && string.Equals(Value, s.Value, StringComparison.Ordinal);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(PlistKind.String, string.GetHashCode(Value, StringComparison.Ordinal));

    /// <inheritdoc/>
    public override string ToString() => Value;
}

/// <summary>
/// An integer in the union of the signed and unsigned 64-bit ranges
/// (<see cref="long.MinValue"/> to <see cref="ulong.MaxValue"/>).
/// </summary>
public sealed class PlistInteger : PlistNode
{
    /// <summary>The smallest representable value.</summary>
    public static readonly Int128 MinValue = long.MinValue;

    /// <summary>The largest representable value.</summary>
    public static readonly Int128 MaxValue = ulong.MaxValue;

    /// <summary>A signed value.</summary>
    public PlistInteger(long value) => Value = value;

    /// <summary>An unsigned value.</summary>
    public PlistInteger(ulong value) => Value = value;

    /// <summary>A value that must lie in [<see cref="MinValue"/>, <see cref="MaxValue"/>].</summary>
    public PlistInteger(Int128 value)
    {
        if (value < MinValue || value > MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(value), value, "outside the signed and unsigned 64-bit ranges");
        }
        Value = value;
    }

    /// <summary>The exact value.</summary>
    public Int128 Value { get; }

    /// <summary>True when the value only fits an unsigned 64-bit integer (greater than <see cref="long.MaxValue"/>).</summary>
    public bool IsUnsigned64 => Value > long.MaxValue;

    /// <summary>The value as a signed 64-bit integer, or null when it is greater than <see cref="long.MaxValue"/>.</summary>
    public long? AsInt64 => Value <= long.MaxValue ? (long)Value : null;

    /// <summary>The value as an unsigned 64-bit integer, or null when it is negative.</summary>
    public ulong? AsUInt64 => Value >= 0 ? (ulong)Value : null;

    /// <inheritdoc/>
    public override PlistKind Kind => PlistKind.Integer;

    /// <inheritdoc/>
    public override bool Equals(PlistNode? other) => other is PlistInteger i && i.Value == Value;

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(PlistKind.Integer, Value);

    /// <inheritdoc/>
    public override string ToString() => Value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>A double-precision real. NaN equals NaN for structural equality.</summary>
public sealed class PlistReal(double value) : PlistNode
{
    /// <summary>The value.</summary>
    public double Value { get; } = value;

    /// <inheritdoc/>
    public override PlistKind Kind => PlistKind.Real;

    /// <inheritdoc/>
    public override bool Equals(PlistNode? other) => other is PlistReal r && r.Value.Equals(Value);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(PlistKind.Real, Value);

    /// <inheritdoc/>
    public override string ToString() => Value.ToString("R", CultureInfo.InvariantCulture);
}

/// <summary><c>&lt;true/&gt;</c> or <c>&lt;false/&gt;</c>.</summary>
public sealed class PlistBoolean : PlistNode
{
    /// <summary>The true value.</summary>
    public static readonly PlistBoolean True = new(true);

    /// <summary>The false value.</summary>
    public static readonly PlistBoolean False = new(false);

    private PlistBoolean(bool value) => Value = value;

    /// <summary>The shared instance for <paramref name="value"/>.</summary>
    public static PlistBoolean Of(bool value) => value ? True : False;

    /// <summary>The value.</summary>
    public bool Value { get; }

    /// <inheritdoc/>
    public override PlistKind Kind => PlistKind.Boolean;

    /// <inheritdoc/>
    public override bool Equals(PlistNode? other) => other is PlistBoolean b && b.Value == Value;

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(PlistKind.Boolean, Value);

    /// <inheritdoc/>
    public override string ToString() => Value ? "true" : "false";
}

/// <summary>
/// A point in time, in UTC. XML keeps whole seconds (<c>YYYY-MM-DDTHH:MM:SSZ</c>); binary keeps
/// seconds since 2001-01-01T00:00:00Z as a double.
/// </summary>
public sealed class PlistDate : PlistNode
{
    /// <summary>The binary property-list epoch, 2001-01-01T00:00:00Z.</summary>
    public static readonly DateTime Epoch = new(2001, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    /// <summary>A date; a local or unspecified <see cref="DateTime"/> is taken as UTC by ticks for unspecified and converted for local.</summary>
    public PlistDate(DateTime value) =>
        Value = value.Kind switch
        {
            DateTimeKind.Local => value.ToUniversalTime(),
            _ => DateTime.SpecifyKind(value, DateTimeKind.Utc),
        };

    /// <summary>A date from an offset-aware value.</summary>
    public PlistDate(DateTimeOffset value) => Value = value.UtcDateTime;

    /// <summary>The instant, with <see cref="DateTimeKind.Utc"/>.</summary>
    public DateTime Value { get; }

    /// <summary>Seconds since <see cref="Epoch"/>, as stored in binary property lists.</summary>
    public double SecondsSinceEpoch
    {
        get
        {
            // Whole seconds and the fraction separately, so whole-second dates convert exactly.
            var ticks = (Value - Epoch).Ticks;
            return (ticks / TimeSpan.TicksPerSecond) + ((ticks % TimeSpan.TicksPerSecond) / (double)TimeSpan.TicksPerSecond);
        }
    }

    /// <inheritdoc/>
    public override PlistKind Kind => PlistKind.Date;

    /// <inheritdoc/>
    public override bool Equals(PlistNode? other) => other is PlistDate d && d.Value.Ticks == Value.Ticks;

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(PlistKind.Date, Value.Ticks);

    /// <inheritdoc/>
    public override string ToString() => Value.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}

/// <summary>Opaque bytes (<c>&lt;data&gt;</c>). The bytes are copied on construction.</summary>
public sealed class PlistData : PlistNode
{
    private readonly byte[] _bytes;

    /// <summary>Copies <paramref name="bytes"/>.</summary>
    public PlistData(ReadOnlySpan<byte> bytes) => _bytes = bytes.ToArray();

    /// <summary>The bytes.</summary>
    public ReadOnlySpan<byte> Span => _bytes;

    /// <summary>The bytes.</summary>
    public ReadOnlyMemory<byte> Memory => _bytes;

    /// <summary>Number of bytes.</summary>
    public int Length => _bytes.Length;

    /// <summary>A fresh copy of the bytes.</summary>
    public byte[] ToArray() => (byte[])_bytes.Clone();

    /// <inheritdoc/>
    public override PlistKind Kind => PlistKind.Data;

    /// <inheritdoc/>
    public override bool Equals(PlistNode? other) => other is PlistData d && d._bytes.AsSpan().SequenceEqual(_bytes);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var h = new HashCode();
        h.Add(PlistKind.Data);
        h.AddBytes(_bytes);
        return h.ToHashCode();
    }

    /// <inheritdoc/>
    public override string ToString() => Convert.ToBase64String(_bytes);
}

/// <summary>
/// A keyed-archiver object reference (binary marker 0x8), 32 bits wide as in CoreFoundation.
/// XML has no UID element: it is written,
/// as Apple does, as <c>&lt;dict&gt;&lt;key&gt;CF$UID&lt;/key&gt;&lt;integer&gt;N&lt;/integer&gt;&lt;/dict&gt;</c>,
/// and such a one-key dictionary is read back as a UID.
/// </summary>
public sealed class PlistUid(uint value) : PlistNode
{
    /// <summary>The key of the one-key dictionary that stands for a UID in XML.</summary>
    public const string XmlKey = "CF$UID";

    /// <summary>The reference.</summary>
    public uint Value { get; } = value;

    /// <inheritdoc/>
    public override PlistKind Kind => PlistKind.Uid;

    /// <inheritdoc/>
    public override bool Equals(PlistNode? other) => other is PlistUid u && u.Value == Value;

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(PlistKind.Uid, Value);

    /// <inheritdoc/>
    public override string ToString() => $"UID({Value})";
}

using System.Collections;
using System.Formats.Asn1;

namespace KextTrust.Formats.Image4;

/// <summary>
/// One Image4 property: <c>[PRIVATE fourcc] EXPLICIT SEQUENCE { IA5String fourcc, value }</c>.
/// </summary>
public sealed record Im4Property
{
    /// <summary>Creates the property; <see cref="ArgumentException"/> for an invalid 4CC.</summary>
    public Im4Property(string fourCC, Im4Value value)
    {
        FourCC = Image4.FourCC.Validate(fourCC, nameof(fourCC));
        Value = value ?? throw new ArgumentNullException(nameof(value));
    }

    /// <summary>The property's four-character code (also its tag number).</summary>
    public string FourCC { get; }

    /// <summary>The property's value.</summary>
    public Im4Value Value { get; }

    internal void Write(AsnWriter writer)
    {
        Im4Codec.PushTagged(writer, FourCC);
        Value.Write(writer);
        Im4Codec.PopTagged(writer, FourCC);
    }
}

/// <summary>
/// An immutable set of properties with unique 4CCs, kept in DER order (ascending tag number), as
/// held in a <c>SET</c> (MANP, an object's properties, PAYP, IM4R). Value equality.
/// </summary>
public sealed class Im4PropertySet : IReadOnlyList<Im4Property>, IEquatable<Im4PropertySet>
{
    private readonly Im4Property[] _items;

    /// <summary>An empty set.</summary>
    public static Im4PropertySet Empty { get; } = new([]);

    /// <summary>Creates the set; <see cref="ArgumentException"/> if two properties share a 4CC.</summary>
    public Im4PropertySet(IEnumerable<Im4Property> properties)
    {
        ArgumentNullException.ThrowIfNull(properties);
        var items = properties.ToArray();
        Array.Sort(items, static (a, b) => Image4.FourCC.ToUInt32(a.FourCC).CompareTo(Image4.FourCC.ToUInt32(b.FourCC)));
        for (var i = 1; i < items.Length; i++)
        {
            if (items[i].FourCC == items[i - 1].FourCC)
            {
                throw new ArgumentException($"duplicate property '{items[i].FourCC}'", nameof(properties));
            }
        }
        _items = items;
    }

    /// <summary>Creates the set from the given properties.</summary>
    public Im4PropertySet(params Im4Property[] properties)
        : this((IEnumerable<Im4Property>)properties)
    {
    }

    /// <inheritdoc/>
    public int Count => _items.Length;

    /// <inheritdoc/>
    public Im4Property this[int index] => _items[index];

    /// <summary>The value of the property with this 4CC, or null.</summary>
    public Im4Value? Find(string fourCC)
    {
        foreach (var p in _items)
        {
            if (p.FourCC == fourCC)
            {
                return p.Value;
            }
        }
        return null;
    }

    /// <summary>True if a property with this 4CC is present.</summary>
    public bool Contains(string fourCC) => Find(fourCC) is not null;

    /// <inheritdoc/>
    public IEnumerator<Im4Property> GetEnumerator() => ((IEnumerable<Im4Property>)_items).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <inheritdoc/>
    public bool Equals(Im4PropertySet? other) => other is not null && _items.SequenceEqual(other._items);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as Im4PropertySet);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (var p in _items)
        {
            hash.Add(p);
        }
        return hash.ToHashCode();
    }

    /// <inheritdoc/>
    public override string ToString() => "{ " + string.Join(", ", _items.Select(p => $"{p.FourCC}={p.Value}")) + " }";

    internal void WriteSet(AsnWriter writer)
    {
        writer.PushSetOf();
        foreach (var p in _items)
        {
            p.Write(writer);
        }
        writer.PopSetOf();
    }
}

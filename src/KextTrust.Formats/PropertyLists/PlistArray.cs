using System.Collections;
using System.Collections.Immutable;

namespace KextTrust.Formats.PropertyLists;

/// <summary>An ordered list of values (<c>&lt;array&gt;</c>; binary sets are read as arrays).</summary>
public sealed class PlistArray : PlistNode, IReadOnlyList<PlistNode>
{
    /// <summary>The empty array.</summary>
    public static readonly PlistArray Empty = new(ImmutableArray<PlistNode>.Empty);

    /// <summary>An array of <paramref name="items"/>, in order.</summary>
    public PlistArray(IEnumerable<PlistNode> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        Items = [.. items];
        foreach (var item in Items)
        {
            ArgumentNullException.ThrowIfNull(item, nameof(items));
        }
    }

    /// <summary>An array of <paramref name="items"/>, in order.</summary>
    public PlistArray(params PlistNode[] items)
        : this((IEnumerable<PlistNode>)items)
    {
    }

    private PlistArray(ImmutableArray<PlistNode> items) => Items = items;

    internal static PlistArray Wrap(ImmutableArray<PlistNode> items, bool distinct = false) => items.IsEmpty && !distinct ? Empty : new PlistArray(items);

    /// <summary>The elements.</summary>
    public ImmutableArray<PlistNode> Items { get; }

    /// <summary>Number of elements.</summary>
    public int Count => Items.Length;

    /// <summary>The element at <paramref name="index"/>.</summary>
    public PlistNode this[int index] => Items[index];

    /// <inheritdoc/>
    public override PlistKind Kind => PlistKind.Array;

    /// <inheritdoc/>
    public override bool Equals(PlistNode? other)
    {
        if (ReferenceEquals(this, other))
        {
            return true;
        }
        if (other is not PlistArray a || a.Count != Count)
        {
            return false;
        }
        for (var i = 0; i < Count; i++)
        {
            if (!Items[i].Equals(a.Items[i]))
            {
                return false;
            }
        }
        return true;
    }

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var h = new HashCode();
        h.Add(PlistKind.Array);
        h.Add(Count);
        foreach (var item in Items)
        {
            h.Add(item.GetHashCode());
        }
        return h.ToHashCode();
    }

    /// <inheritdoc/>
    public IEnumerator<PlistNode> GetEnumerator() => ((IEnumerable<PlistNode>)Items).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <inheritdoc/>
    public override string ToString() => $"array[{Count}]";
}

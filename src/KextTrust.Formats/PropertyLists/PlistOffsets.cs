namespace KextTrust.Formats.PropertyLists;

/// <summary>
/// Where the values of one parsed XML property list start in its bytes, so that a caller that checks the
/// plist's contents (a receipt, a kernel collection's prelink info) can name the byte offset of the value that
/// broke its rule. Filled by <see cref="PropertyList.ParseXml(ReadOnlySpan{byte}, string?, out PlistOffsets)"/>;
/// containers are told apart by reference (that parse gives every container, empty ones too, its own instance).
/// </summary>
public sealed class PlistOffsets
{
    private readonly Dictionary<PlistNode, long> _starts = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<PlistNode, long[]> _children = new(ReferenceEqualityComparer.Instance);

    internal PlistOffsets()
    {
    }

    internal void Record(PlistNode container, long start, long[] childStarts)
    {
        _starts[container] = start;
        _children[container] = childStarts;
    }

    /// <summary>The offset of the root value's start tag.</summary>
    public long Root { get; internal set; } = -1;

    /// <summary>The offset of a dictionary's or array's start tag; −1 for a node that is not a container of this parse.</summary>
    public long Of(PlistNode container) => _starts.TryGetValue(container, out var at) ? at : -1;

    /// <summary>
    /// The offset of the value stored under <paramref name="key"/>; the dictionary's own offset when the key is
    /// absent (the rule broken is then the dictionary's); −1 for a dictionary that is not of this parse.
    /// </summary>
    public long Of(PlistDictionary dictionary, string key)
    {
        ArgumentNullException.ThrowIfNull(dictionary);
        var i = dictionary.IndexOf(key);
        return i >= 0 && _children.TryGetValue(dictionary, out var starts) ? starts[i] : Of(dictionary);
    }

    /// <summary>The offset of item <paramref name="index"/>; the array's own offset when out of range; −1 for an array not of this parse.</summary>
    public long Of(PlistArray array, int index)
    {
        ArgumentNullException.ThrowIfNull(array);
        return _children.TryGetValue(array, out var starts) && (uint)index < (uint)starts.Length ? starts[index] : Of(array);
    }
}

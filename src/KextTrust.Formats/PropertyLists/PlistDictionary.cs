using System.Collections;
using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;

namespace KextTrust.Formats.PropertyLists;

/// <summary>
/// A string-keyed dictionary that keeps the key order of its source and looks keys up in O(1).
/// Typed getters (<see cref="GetString"/>, <see cref="TryGet{T}"/>, …) return null or false when
/// the key is absent or holds another type; the <c>Require…</c> variants throw
/// <see cref="PropertyListFormatException"/> naming the key.
/// </summary>
public sealed class PlistDictionary : PlistNode, IReadOnlyList<KeyValuePair<string, PlistNode>>
{
    /// <summary>The empty dictionary.</summary>
    public static readonly PlistDictionary Empty = new(ImmutableArray<KeyValuePair<string, PlistNode>>.Empty, new Dictionary<string, int>(0, StringComparer.Ordinal));

    private readonly Dictionary<string, int> _index;

    /// <summary>A dictionary of <paramref name="entries"/> in order; a repeated key throws <see cref="ArgumentException"/>.</summary>
    public PlistDictionary(IEnumerable<KeyValuePair<string, PlistNode>> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        Entries = [.. entries];
        _index = new Dictionary<string, int>(Entries.Length, StringComparer.Ordinal);
        for (var i = 0; i < Entries.Length; i++)
        {
            var (key, value) = Entries[i];
            ArgumentNullException.ThrowIfNull(key, nameof(entries));
            ArgumentNullException.ThrowIfNull(value, nameof(entries));
            if (!_index.TryAdd(key, i))
            {
                throw new ArgumentException($"duplicate key '{key}'", nameof(entries));
            }
        }
    }

    /// <summary>A dictionary of (key, value) pairs in order.</summary>
    public PlistDictionary(params (string Key, PlistNode Value)[] entries)
        : this(entries.Select(e => KeyValuePair.Create(e.Key, e.Value)))
    {
    }

    private PlistDictionary(ImmutableArray<KeyValuePair<string, PlistNode>> entries, Dictionary<string, int> index)
    {
        Entries = entries;
        _index = index;
    }

    /// <summary>Used by the readers, which have already rejected duplicate keys.</summary>
    internal static PlistDictionary Wrap(ImmutableArray<KeyValuePair<string, PlistNode>> entries, Dictionary<string, int> index, bool distinct = false) =>
        entries.IsEmpty && !distinct ? Empty : new PlistDictionary(entries, index);

    /// <summary>The position of <paramref name="key"/> in <see cref="Entries"/>, or −1.</summary>
    public int IndexOf(string key) => _index.TryGetValue(key, out var i) ? i : -1;

    /// <summary>The entries, in source order.</summary>
    public ImmutableArray<KeyValuePair<string, PlistNode>> Entries { get; }

    /// <summary>The keys, in source order.</summary>
    public IEnumerable<string> Keys => Entries.Select(e => e.Key);

    /// <summary>Number of entries.</summary>
    public int Count => Entries.Length;

    /// <summary>The entry at position <paramref name="index"/> in source order.</summary>
    public KeyValuePair<string, PlistNode> this[int index] => Entries[index];

    /// <summary>The value of <paramref name="key"/>, or null when absent.</summary>
    public PlistNode? this[string key] => _index.TryGetValue(key, out var i) ? Entries[i].Value : null;

    /// <summary>Whether <paramref name="key"/> is present.</summary>
    public bool ContainsKey(string key) => _index.ContainsKey(key);

    /// <summary>The value of <paramref name="key"/> when present.</summary>
    public bool TryGetValue(string key, [NotNullWhen(true)] out PlistNode? value)
    {
        if (_index.TryGetValue(key, out var i))
        {
            value = Entries[i].Value;
            return true;
        }
        value = null;
        return false;
    }

    /// <summary>The value of <paramref name="key"/> when present and of type <typeparamref name="T"/>.</summary>
    public bool TryGet<T>(string key, [NotNullWhen(true)] out T? value)
        where T : PlistNode
    {
        value = this[key] as T;
        return value is not null;
    }

    /// <summary>The value of <paramref name="key"/> when present and of type <typeparamref name="T"/>, else null.</summary>
    public T? Get<T>(string key)
        where T : PlistNode => this[key] as T;

    /// <summary>The string value of <paramref name="key"/>, or null.</summary>
    public string? GetString(string key) => Get<PlistString>(key)?.Value;

    /// <summary>The boolean value of <paramref name="key"/>, or null.</summary>
    public bool? GetBoolean(string key) => Get<PlistBoolean>(key)?.Value;

    /// <summary>The integer value of <paramref name="key"/> when it fits a signed 64-bit integer, or null.</summary>
    public long? GetInt64(string key) => Get<PlistInteger>(key)?.AsInt64;

    /// <summary>The dictionary value of <paramref name="key"/>, or null.</summary>
    public PlistDictionary? GetDictionary(string key) => Get<PlistDictionary>(key);

    /// <summary>The array value of <paramref name="key"/>, or null.</summary>
    public PlistArray? GetArray(string key) => Get<PlistArray>(key);

    /// <summary>The data value of <paramref name="key"/>, or null.</summary>
    public PlistData? GetData(string key) => Get<PlistData>(key);

    /// <summary>The value of <paramref name="key"/>; throws when absent or not a <typeparamref name="T"/>.</summary>
    public T Require<T>(string key)
        where T : PlistNode
    {
        var node = this[key] ?? throw new PropertyListFormatException(null, -1, $"required key '{key}' is missing");
        if (node is T t)
        {
            return t;
        }
        var expected = typeof(T) == typeof(PlistNode) ? "value" : PlistNode.KindName(KindOf(typeof(T)));
        throw new PropertyListFormatException(null, -1, $"key '{key}' holds a {PlistNode.KindName(node.Kind)}, expected a {expected}");
    }

    /// <summary>The string value of <paramref name="key"/>; throws when absent or of another type.</summary>
    public string RequireString(string key) => Require<PlistString>(key).Value;

    /// <summary>The boolean value of <paramref name="key"/>; throws when absent or of another type.</summary>
    public bool RequireBoolean(string key) => Require<PlistBoolean>(key).Value;

    /// <summary>The signed 64-bit value of <paramref name="key"/>; throws when absent, of another type or too large.</summary>
    public long RequireInt64(string key) =>
        Require<PlistInteger>(key).AsInt64 ?? throw new PropertyListFormatException(null, -1, $"key '{key}' holds an integer above the signed 64-bit range");

    /// <summary>The dictionary value of <paramref name="key"/>; throws when absent or of another type.</summary>
    public PlistDictionary RequireDictionary(string key) => Require<PlistDictionary>(key);

    /// <summary>The array value of <paramref name="key"/>; throws when absent or of another type.</summary>
    public PlistArray RequireArray(string key) => Require<PlistArray>(key);

    private static PlistKind KindOf(Type t) =>
        t == typeof(PlistDictionary) ? PlistKind.Dictionary
        : t == typeof(PlistArray) ? PlistKind.Array
        : t == typeof(PlistString) ? PlistKind.String
        : t == typeof(PlistInteger) ? PlistKind.Integer
        : t == typeof(PlistReal) ? PlistKind.Real
        : t == typeof(PlistBoolean) ? PlistKind.Boolean
        : t == typeof(PlistDate) ? PlistKind.Date
        : t == typeof(PlistData) ? PlistKind.Data
        : PlistKind.Uid;

    /// <inheritdoc/>
    public override PlistKind Kind => PlistKind.Dictionary;

    /// <summary>Equal when both hold the same keys with equal values, in any order.</summary>
    public override bool Equals(PlistNode? other)
    {
        if (ReferenceEquals(this, other))
        {
            return true;
        }
        if (other is not PlistDictionary d || d.Count != Count)
        {
            return false;
        }
        foreach (var (key, value) in Entries)
        {
            if (!d.TryGetValue(key, out var theirs) || !value.Equals(theirs))
            {
                return false;
            }
        }
        return true;
    }

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var sum = 0;
        foreach (var (key, value) in Entries)
        {
            sum += HashCode.Combine(string.GetHashCode(key, StringComparison.Ordinal), value.GetHashCode());
        }
        return HashCode.Combine(PlistKind.Dictionary, Count, sum);
    }

    /// <inheritdoc/>
    public IEnumerator<KeyValuePair<string, PlistNode>> GetEnumerator() => ((IEnumerable<KeyValuePair<string, PlistNode>>)Entries).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <inheritdoc/>
    public override string ToString() => $"dict[{Count}]";
}

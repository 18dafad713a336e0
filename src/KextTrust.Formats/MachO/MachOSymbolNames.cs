using System.Collections;
using System.Text;

namespace KextTrust.Formats.MachO;

/// <summary>Where one name lies in a slice's bytes (already bounds-checked by the parser).</summary>
internal readonly record struct Utf8Range(int Start, int Length)
{
    public ReadOnlySpan<byte> Of(ReadOnlySpan<byte> data) => data.Slice(Start, Length);
}

/// <summary>Orders ranges of one buffer by their bytes (memcmp order, a prefix first).</summary>
internal sealed class Utf8RangeOrder(ReadOnlyMemory<byte> data) : IComparer<Utf8Range>
{
    public int Compare(Utf8Range x, Utf8Range y)
    {
        var s = data.Span;
        return x.Of(s).SequenceCompareTo(y.Of(s));
    }
}

/// <summary>
/// Symbol names as UTF-8 bytes viewed in a Mach-O file (no string per name): <see cref="MachOSlice.UndefinedSymbolNames"/>.
/// Valid while the file is open; <see cref="ToList"/> copies them out.
/// </summary>
public readonly ref struct MachOSymbolNames
{
    private readonly ReadOnlySpan<byte> _data;
    private readonly Utf8Range[] _names;

    internal MachOSymbolNames(ReadOnlySpan<byte> data, Utf8Range[] names, bool isValidUtf8)
    {
        _data = data;
        _names = names;
        IsValidUtf8 = isValidUtf8;
    }

    /// <summary>The number of names.</summary>
    public int Count => _names.Length;

    /// <summary>
    /// True when every name is well-formed UTF-8: each then decodes to the string of the same index without
    /// replacement characters, and the names are in byte order. (Decoding always gives that string, with U+FFFD for
    /// ill-formed bytes.)
    /// </summary>
    public bool IsValidUtf8 { get; }

    /// <summary>The bytes of one name (no terminating NUL).</summary>
    public ReadOnlySpan<byte> this[int index] => _names[index].Of(_data);

    /// <summary>Enumerates the names in order.</summary>
    public Enumerator GetEnumerator() => new(this);

    /// <summary>Copies the names into a list of their own (one buffer), valid after the file is closed.</summary>
    public Utf8StringList ToList()
    {
        var total = 0;
        foreach (var r in _names)
        {
            total += r.Length;
        }
        var bytes = total == 0 ? [] : GC.AllocateUninitializedArray<byte>(total);
        var ends = _names.Length == 0 ? [] : new int[_names.Length];
        var at = 0;
        for (var i = 0; i < _names.Length; i++)
        {
            var name = this[i];
            name.CopyTo(bytes.AsSpan(at));
            at += name.Length;
            ends[i] = at;
        }
        return new Utf8StringList(bytes, ends, IsValidUtf8);
    }

    /// <summary>Enumerator over <see cref="MachOSymbolNames"/>.</summary>
    public ref struct Enumerator
    {
        private readonly MachOSymbolNames _names;
        private int _index;

        internal Enumerator(MachOSymbolNames names)
        {
            _names = names;
            _index = -1;
        }

        /// <summary>The current name.</summary>
        public readonly ReadOnlySpan<byte> Current => _names[_index];

        /// <summary>Advances to the next name.</summary>
        public bool MoveNext() => ++_index < _names.Count;
    }
}

/// <summary>
/// A read-only list of strings kept as their UTF-8 bytes in one buffer: each string is decoded when read (with U+FFFD
/// for ill-formed bytes, like <see cref="Encoding.UTF8"/>), and <see cref="Utf8"/> gives the bytes themselves.
/// </summary>
public sealed class Utf8StringList : IReadOnlyList<string>
{
    private readonly byte[] _bytes;
    private readonly int[] _ends;

    internal Utf8StringList(byte[] bytes, int[] ends, bool isValidUtf8)
    {
        _bytes = bytes;
        _ends = ends;
        IsValidUtf8 = isValidUtf8;
    }

    /// <summary>True when every item is well-formed UTF-8 (decoding it replaces nothing).</summary>
    public bool IsValidUtf8 { get; }

    /// <inheritdoc/>
    public int Count => _ends.Length;

    /// <inheritdoc/>
    public string this[int index] => Encoding.UTF8.GetString(Utf8(index));

    /// <summary>The UTF-8 bytes of one item.</summary>
    public ReadOnlySpan<byte> Utf8(int index)
    {
        var start = index == 0 ? 0 : _ends[index - 1];
        return _bytes.AsSpan(start, _ends[index] - start);
    }

    /// <inheritdoc/>
    public IEnumerator<string> GetEnumerator()
    {
        for (var i = 0; i < _ends.Length; i++)
        {
            yield return this[i];
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

using System.Formats.Asn1;

namespace KextTrust.Formats.Image4;

/// <summary>One DER element located in the input: absolute offsets of the element and its content.</summary>
internal readonly record struct DerElement(Asn1Tag Tag, int Offset, int Length, int ContentOffset, int ContentLength);

/// <summary>
/// A strict DER reader over a window of the input that reports every failure as an
/// <see cref="Image4FormatException"/> with the absolute byte offset. Built on the static
/// <see cref="AsnDecoder"/> in <see cref="AsnEncodingRules.DER"/> mode, which rejects indefinite
/// and non-minimal lengths, non-minimal integers and tags, non-canonical booleans and constructed
/// strings.
/// </summary>
internal sealed class DerCursor
{
    private const AsnEncodingRules Rules = AsnEncodingRules.DER;

    private readonly ReadOnlyMemory<byte> _input;
    private readonly int _end;
    private int _position;

    public DerCursor(ReadOnlyMemory<byte> input, string? source)
        : this(input, source, 0, input.Length)
    {
    }

    private DerCursor(ReadOnlyMemory<byte> input, string? source, int start, int end)
    {
        _input = input;
        Source = source;
        _position = start;
        _end = end;
    }

    public string? Source { get; }

    public int Position => _position;

    public bool HasMore => _position < _end;

    public Image4FormatException Error(long offset, string rule, Exception? inner = null) => new(Source, offset, rule, inner);

    /// <summary>The whole encoding (identifier, length, content) of an element.</summary>
    public ReadOnlyMemory<byte> Encoded(DerElement element) => _input.Slice(element.Offset, element.Length);

    /// <summary>The content octets of an element.</summary>
    public ReadOnlyMemory<byte> Content(DerElement element) => _input.Slice(element.ContentOffset, element.ContentLength);

    /// <summary>A cursor over the content of a constructed element.</summary>
    public DerCursor Enter(DerElement element) =>
        new(_input, Source, element.ContentOffset, element.ContentOffset + element.ContentLength);

    /// <summary>An independent cursor at the same position over the same window.</summary>
    public DerCursor Fork() => new(_input, Source, _position, _end);

    /// <summary>The tag of the next element, or null at the end of this window.</summary>
    public Asn1Tag? PeekTag(string what)
    {
        if (!HasMore)
        {
            return null;
        }
        return ReadHeader(what, advance: false).Tag;
    }

    /// <summary>Reads the next element of any tag.</summary>
    public DerElement Read(string what)
    {
        if (!HasMore)
        {
            throw Error(_position, $"{what} is missing (end of data)");
        }
        return ReadHeader(what, advance: true);
    }

    /// <summary>Reads the next element and requires its tag (class, number and constructed bit).</summary>
    public DerElement Read(Asn1Tag expected, string what)
    {
        var start = _position;
        var element = Read(what);
        if (element.Tag != expected)
        {
            throw Error(start, $"{what}: expected tag {Describe(expected)}, found {Describe(element.Tag)}");
        }
        return element;
    }

    public DerElement ReadSequence(string what) => Read(Asn1Tag.Sequence, what);

    public DerElement ReadSet(string what) => Read(Asn1Tag.SetOf, what);

    public string ReadIA5String(string what)
    {
        var element = Read(new Asn1Tag(UniversalTagNumber.IA5String), what);
        try
        {
            return AsnDecoder.ReadCharacterString(Encoded(element).Span, Rules, UniversalTagNumber.IA5String, out _);
        }
        catch (AsnContentException e)
        {
            throw Error(element.Offset, $"{what}: invalid IA5String ({e.Message})", e);
        }
    }

    /// <summary>Reads an IA5String that must equal <paramref name="magic"/>.</summary>
    public void ExpectMagic(string magic)
    {
        var start = _position;
        var found = ReadIA5String($"magic \"{magic}\"");
        if (found != magic)
        {
            throw Error(start, $"expected magic \"{magic}\", found \"{Printable(found)}\"");
        }
    }

    public ulong ReadUInt64(string what) => DecodeUInt64(Read(Asn1Tag.Integer, what), what);

    public ulong DecodeUInt64(DerElement element, string what)
    {
        try
        {
            if (!AsnDecoder.TryReadUInt64(Encoded(element).Span, Rules, out var value, out _))
            {
                throw Error(element.Offset, $"{what}: INTEGER is negative or larger than 64 bits");
            }
            return value;
        }
        catch (AsnContentException e)
        {
            throw Error(element.Offset, $"{what}: invalid INTEGER ({e.Message})", e);
        }
    }

    public bool DecodeBoolean(DerElement element, string what)
    {
        try
        {
            return AsnDecoder.ReadBoolean(Encoded(element).Span, Rules, out _);
        }
        catch (AsnContentException e)
        {
            throw Error(element.Offset, $"{what}: invalid BOOLEAN ({e.Message})", e);
        }
    }

    public ReadOnlyMemory<byte> ReadOctetString(string what) => DecodeOctetString(Read(Asn1Tag.PrimitiveOctetString, what), what);

    public ReadOnlyMemory<byte> DecodeOctetString(DerElement element, string what)
    {
        try
        {
            if (!AsnDecoder.TryReadPrimitiveOctetString(Encoded(element).Span, Rules, out _, out _))
            {
                throw Error(element.Offset, $"{what}: OCTET STRING must be primitive in DER");
            }
        }
        catch (AsnContentException e)
        {
            throw Error(element.Offset, $"{what}: invalid OCTET STRING ({e.Message})", e);
        }
        return Content(element);
    }

    public string DecodeIA5String(DerElement element, string what)
    {
        try
        {
            return AsnDecoder.ReadCharacterString(Encoded(element).Span, Rules, UniversalTagNumber.IA5String, out _);
        }
        catch (AsnContentException e)
        {
            throw Error(element.Offset, $"{what}: invalid IA5String ({e.Message})", e);
        }
    }

    /// <summary>Fails unless this window has been read completely.</summary>
    public void ExpectEnd(string what)
    {
        if (HasMore)
        {
            throw Error(_position, $"unexpected data after the last field of {what}");
        }
    }

    /// <summary>
    /// Fails unless the encodings of a SET's elements are in ascending DER order (X.690 §11.6:
    /// compared as octet strings, the shorter padded with trailing zero octets).
    /// </summary>
    public void CheckSetOrder(DerElement previous, DerElement current, string what)
    {
        if (CompareSetOrder(Encoded(previous).Span, Encoded(current).Span) > 0)
        {
            throw Error(current.Offset, $"{what}: SET elements are not in DER (ascending) order");
        }
    }

    private static int CompareSetOrder(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        var common = Math.Min(a.Length, b.Length);
        var c = a[..common].SequenceCompareTo(b[..common]);
        if (c != 0)
        {
            return c;
        }
        var rest = a.Length > b.Length ? a[common..] : b[common..];
        var sign = a.Length > b.Length ? 1 : -1;
        return rest.ContainsAnyExcept((byte)0) ? sign : 0;
    }

    private DerElement ReadHeader(string what, bool advance)
    {
        var span = _input.Span[_position.._end];
        Asn1Tag tag;
        int contentOffset, contentLength, consumed;
        try
        {
            tag = AsnDecoder.ReadEncodedValue(span, Rules, out contentOffset, out contentLength, out consumed);
        }
        catch (AsnContentException e)
        {
            throw Error(_position, $"{what}: not a valid DER element ({e.Message})", e);
        }
        var element = new DerElement(tag, _position, consumed, _position + contentOffset, contentLength);
        if (advance)
        {
            _position += consumed;
        }
        return element;
    }

    public static string Describe(Asn1Tag tag)
    {
        var form = tag.IsConstructed ? "constructed" : "primitive";
        if (tag.TagClass == TagClass.Private && FourCC.FromUInt32((uint)tag.TagValue) is { } fourcc)
        {
            return $"[PRIVATE '{fourcc}'] ({form})";
        }
        if (tag.TagClass == TagClass.Universal)
        {
            var name = (UniversalTagNumber)tag.TagValue switch
            {
                UniversalTagNumber.Sequence => "SEQUENCE",
                UniversalTagNumber.Set => "SET",
                var n => n.ToString(),
            };
            return $"{name} ({form})";
        }
        return $"[{tag.TagClass} {tag.TagValue}] ({form})";
    }

    public static string Printable(string text)
    {
        var chars = text.Take(64).Select(c => c is >= ' ' and <= '~' ? c : '?').ToArray();
        return new string(chars) + (text.Length > 64 ? "…" : "");
    }
}

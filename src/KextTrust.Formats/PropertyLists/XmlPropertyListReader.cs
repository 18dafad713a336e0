using System.Buffers;
using System.Collections.Immutable;
using System.Globalization;
using System.Text;
using System.Text.Unicode;

namespace KextTrust.Formats.PropertyLists;

/// <summary>
/// A strict scanner for Apple's XML property-list dialect over UTF-8 bytes. It skips the XML
/// declaration, processing instructions, comments and the DOCTYPE without interpreting them
/// (no entity is ever declared or resolved beyond the five predefined ones and character
/// references). Every error carries the byte offset where it was found.
/// </summary>
internal ref struct XmlPropertyListReader
{
    internal const int MaxDepth = 512;

    private readonly ReadOnlySpan<byte> _s;
    private readonly string? _source;
    private readonly StringBuilder _text;
    private readonly PlistOffsets? _offsets;
    private int _pos;

    private XmlPropertyListReader(ReadOnlySpan<byte> s, string? source, PlistOffsets? offsets)
    {
        _s = s;
        _source = source;
        _offsets = offsets;
        _text = new StringBuilder();
        _pos = 0;
    }

    /// <summary>Parses a document; with <paramref name="offsets"/>, records where every value starts.</summary>
    public static PlistNode Parse(ReadOnlySpan<byte> bytes, string? source, PlistOffsets? offsets)
    {
        var reader = new XmlPropertyListReader(bytes, source, offsets);
        return reader.ParseDocument();
    }

    private readonly PropertyListFormatException Fail(long offset, string rule) => new(_source, offset, rule);

    private readonly bool AtEnd => _pos >= _s.Length;

    private readonly bool At(ReadOnlySpan<byte> literal) => _s[_pos..].StartsWith(literal);

    private PlistNode ParseDocument()
    {
        if (_s.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]))
        {
            _pos = 3;
        }
        else if (_s.StartsWith((ReadOnlySpan<byte>)[0xFE, 0xFF]) || _s.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xFE]))
        {
            throw Fail(0, "UTF-16 XML property lists are not supported (expected UTF-8)");
        }
        SkipProlog();
        if (AtEnd)
        {
            throw Fail(_pos, "no <plist> root element");
        }
        var rootOffset = _pos;
        var root = ReadStartTag(out var selfClosing);
        if (!root.SequenceEqual("plist"u8))
        {
            throw Fail(rootOffset, $"the root element must be <plist>, found <{Name(root)}>");
        }
        if (selfClosing)
        {
            throw Fail(rootOffset, "<plist> must hold exactly one value, it is empty");
        }
        SkipSpaceAndComments();
        if (AtEnd)
        {
            throw Fail(rootOffset, "unclosed <plist>");
        }
        if (At("</"u8))
        {
            throw Fail(_pos, "<plist> must hold exactly one value, it is empty");
        }
        if (_offsets is not null)
        {
            _offsets.Root = _pos;
        }
        var value = ParseValue(1);
        SkipSpaceAndComments();
        if (AtEnd)
        {
            throw Fail(rootOffset, "unclosed <plist>");
        }
        if (!At("</"u8))
        {
            throw Fail(_pos, "<plist> must hold exactly one value, found a second one");
        }
        ReadEndTag("plist"u8, rootOffset);
        SkipMisc(allowDeclaration: false, allowDoctype: false);
        if (!AtEnd)
        {
            throw Fail(_pos, "content after the root element");
        }
        return value;
    }

    private void SkipProlog() => SkipMisc(allowDeclaration: true, allowDoctype: true);

    private void SkipMisc(bool allowDeclaration, bool allowDoctype)
    {
        var seenDoctype = false;
        while (true)
        {
            SkipSpace();
            if (AtEnd)
            {
                return;
            }
            if (At("<?xml"u8) && _pos + 5 < _s.Length && IsSpace(_s[_pos + 5]))
            {
                if (!allowDeclaration)
                {
                    throw Fail(_pos, "misplaced XML declaration");
                }
                allowDeclaration = false;
                SkipPast("?>"u8, "unterminated XML declaration");
            }
            else if (At("<?"u8))
            {
                allowDeclaration = false;
                SkipPast("?>"u8, "unterminated processing instruction");
            }
            else if (At("<!--"u8))
            {
                allowDeclaration = false;
                SkipComment();
            }
            else if (At("<!DOCTYPE"u8))
            {
                if (!allowDoctype || seenDoctype)
                {
                    throw Fail(_pos, "misplaced or repeated DOCTYPE");
                }
                allowDeclaration = false;
                seenDoctype = true;
                SkipDoctype();
            }
            else
            {
                return;
            }
        }
    }

    private void SkipDoctype()
    {
        var start = _pos;
        _pos += 9;
        var bracket = 0;
        while (_pos < _s.Length)
        {
            var b = _s[_pos];
            if (b is (byte)'"' or (byte)'\'')
            {
                var close = _s[(_pos + 1)..].IndexOf(b);
                if (close < 0)
                {
                    break;
                }
                _pos += close + 2;
                continue;
            }
            if (b == (byte)'[')
            {
                bracket++;
            }
            else if (b == (byte)']')
            {
                bracket--;
            }
            else if (b == (byte)'>' && bracket <= 0)
            {
                _pos++;
                return;
            }
            _pos++;
        }
        throw Fail(start, "unterminated DOCTYPE");
    }

    private void SkipPast(ReadOnlySpan<byte> terminator, string rule)
    {
        var start = _pos;
        var i = _s[_pos..].IndexOf(terminator);
        if (i < 0)
        {
            throw Fail(start, rule);
        }
        _pos += i + terminator.Length;
    }

    private void SkipComment()
    {
        var start = _pos;
        _pos += 4;
        var i = _s[_pos..].IndexOf("-->"u8);
        if (i < 0)
        {
            _pos = start;
            throw Fail(start, "unterminated comment");
        }
        _pos += i + 3;
    }

    private static bool IsSpace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n';

    private void SkipSpace()
    {
        while (_pos < _s.Length && IsSpace(_s[_pos]))
        {
            _pos++;
        }
    }

    private void SkipSpaceAndComments()
    {
        while (true)
        {
            SkipSpace();
            if (!AtEnd && At("<!--"u8))
            {
                SkipComment();
                continue;
            }
            return;
        }
    }

    private static bool IsNameByte(byte b) =>
        b is (>= (byte)'a' and <= (byte)'z') or (>= (byte)'A' and <= (byte)'Z') or (>= (byte)'0' and <= (byte)'9')
            or (byte)'-' or (byte)'_' or (byte)':' or (byte)'.' or >= 0x80;

    private static string Name(ReadOnlySpan<byte> name) => Encoding.UTF8.GetString(name);

    /// <summary>Reads <c>&lt;name attr="v"…&gt;</c> or <c>&lt;name …/&gt;</c>; attributes are checked for syntax and ignored.</summary>
    private ReadOnlySpan<byte> ReadStartTag(out bool selfClosing)
    {
        var start = _pos;
        if (AtEnd || _s[_pos] != (byte)'<' || (_pos + 1 < _s.Length && _s[_pos + 1] is (byte)'/' or (byte)'!' or (byte)'?'))
        {
            throw Fail(start, AtEnd ? "unexpected end of input, expected an element" : "expected an element");
        }
        _pos++;
        var nameStart = _pos;
        while (_pos < _s.Length && IsNameByte(_s[_pos]))
        {
            _pos++;
        }
        if (_pos == nameStart)
        {
            throw Fail(start, "expected an element name after '<'");
        }
        var name = _s[nameStart.._pos];
        while (true)
        {
            var hadSpace = _pos < _s.Length && IsSpace(_s[_pos]);
            SkipSpace();
            if (AtEnd)
            {
                throw Fail(start, $"unterminated tag <{Name(name)}>");
            }
            if (At("/>"u8))
            {
                _pos += 2;
                selfClosing = true;
                return name;
            }
            if (_s[_pos] == (byte)'>')
            {
                _pos++;
                selfClosing = false;
                return name;
            }
            if (!hadSpace || !IsNameByte(_s[_pos]))
            {
                throw Fail(_pos, $"malformed attribute in <{Name(name)}>");
            }
            while (_pos < _s.Length && IsNameByte(_s[_pos]))
            {
                _pos++;
            }
            SkipSpace();
            if (AtEnd || _s[_pos] != (byte)'=')
            {
                throw Fail(_pos, $"attribute without '=' in <{Name(name)}>");
            }
            _pos++;
            SkipSpace();
            if (AtEnd || _s[_pos] is not ((byte)'"' or (byte)'\''))
            {
                throw Fail(_pos, $"attribute value must be quoted in <{Name(name)}>");
            }
            var quote = _s[_pos];
            var close = _s[(_pos + 1)..].IndexOfAny(quote, (byte)'<');
            if (close < 0 || _s[_pos + 1 + close] != quote)
            {
                throw Fail(_pos, $"unterminated attribute value in <{Name(name)}>");
            }
            _pos += close + 2;
        }
    }

    private void ReadEndTag(ReadOnlySpan<byte> name, int openOffset)
    {
        if (AtEnd)
        {
            throw Fail(openOffset, $"unclosed <{Name(name)}>");
        }
        var start = _pos;
        if (!At("</"u8))
        {
            throw Fail(start, $"expected </{Name(name)}>");
        }
        _pos += 2;
        var nameStart = _pos;
        while (_pos < _s.Length && IsNameByte(_s[_pos]))
        {
            _pos++;
        }
        var found = _s[nameStart.._pos];
        if (!found.SequenceEqual(name))
        {
            throw Fail(start, $"mismatched end tag </{Name(found)}>, expected </{Name(name)}>");
        }
        SkipSpace();
        if (AtEnd || _s[_pos] != (byte)'>')
        {
            throw Fail(start, $"unterminated end tag </{Name(name)}>");
        }
        _pos++;
    }

    private PlistNode ParseValue(int depth)
    {
        var start = _pos;
        if (depth > MaxDepth)
        {
            throw Fail(start, $"nesting deeper than {MaxDepth} levels");
        }
        var name = ReadStartTag(out var selfClosing);
        if (name.SequenceEqual("dict"u8))
        {
            return !selfClosing ? ParseDict(depth, start)
                : _offsets is null ? PlistDictionary.Empty
                : Located(PlistDictionary.Wrap([], new Dictionary<string, int>(0, StringComparer.Ordinal), distinct: true), start, null);
        }
        if (name.SequenceEqual("array"u8))
        {
            return !selfClosing ? ParseArray(depth, start)
                : _offsets is null ? PlistArray.Empty
                : Located(PlistArray.Wrap([], distinct: true), start, null);
        }
        if (name.SequenceEqual("true"u8) || name.SequenceEqual("false"u8))
        {
            var value = name[0] == (byte)'t';
            if (!selfClosing)
            {
                SkipSpace();
                ReadEndTag(name, start);
            }
            return PlistBoolean.Of(value);
        }
        if (name.SequenceEqual("string"u8))
        {
            return new PlistString(ReadContent(selfClosing, "string"u8, start));
        }
        if (name.SequenceEqual("integer"u8))
        {
            return ParseInteger(ReadContent(selfClosing, "integer"u8, start), start);
        }
        if (name.SequenceEqual("real"u8))
        {
            return ParseReal(ReadContent(selfClosing, "real"u8, start), start);
        }
        if (name.SequenceEqual("date"u8))
        {
            return ParseDate(ReadContent(selfClosing, "date"u8, start), start);
        }
        if (name.SequenceEqual("data"u8))
        {
            return ParseData(ReadContent(selfClosing, "data"u8, start), start);
        }
        if (name.SequenceEqual("key"u8))
        {
            throw Fail(start, "<key> outside a dictionary or without a value");
        }
        throw Fail(start, $"unknown element <{Name(name)}>");
    }

    private string ReadContent(bool selfClosing, ReadOnlySpan<byte> name, int openOffset)
    {
        if (selfClosing)
        {
            return "";
        }
        var text = ReadText(name, openOffset);
        ReadEndTag(name, openOffset);
        return text;
    }

    /// <summary>Records a container's offset and its values' offsets when offsets are being kept.</summary>
    private readonly PlistNode Located(PlistNode container, long start, List<long>? childStarts)
    {
        _offsets?.Record(container, start, childStarts is null ? [] : [.. childStarts]);
        return container;
    }

    private PlistNode ParseArray(int depth, int openOffset)
    {
        var items = ImmutableArray.CreateBuilder<PlistNode>();
        var starts = _offsets is null ? null : new List<long>();
        while (true)
        {
            SkipSpaceAndComments();
            if (AtEnd)
            {
                throw Fail(openOffset, "unclosed <array>");
            }
            if (At("</"u8))
            {
                ReadEndTag("array"u8, openOffset);
                return Located(PlistArray.Wrap(items.DrainToImmutable(), _offsets is not null), openOffset, starts);
            }
            starts?.Add(_pos);
            items.Add(ParseValue(depth + 1));
        }
    }

    private PlistNode ParseDict(int depth, int openOffset)
    {
        var entries = ImmutableArray.CreateBuilder<KeyValuePair<string, PlistNode>>();
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        var starts = _offsets is null ? null : new List<long>();
        while (true)
        {
            SkipSpaceAndComments();
            if (AtEnd)
            {
                throw Fail(openOffset, "unclosed <dict>");
            }
            if (At("</"u8))
            {
                ReadEndTag("dict"u8, openOffset);
                break;
            }
            var keyOffset = _pos;
            var tag = ReadStartTag(out var selfClosing);
            if (!tag.SequenceEqual("key"u8))
            {
                throw Fail(keyOffset, $"expected <key> in <dict>, found <{Name(tag)}>");
            }
            var key = ReadContent(selfClosing, "key"u8, keyOffset);
            SkipSpaceAndComments();
            if (AtEnd)
            {
                throw Fail(openOffset, "unclosed <dict>");
            }
            if (At("</"u8) || At("<key"u8))
            {
                throw Fail(keyOffset, $"<key>{key}</key> has no value");
            }
            starts?.Add(_pos);
            var value = ParseValue(depth + 1);
            if (!index.TryAdd(key, entries.Count))
            {
                throw Fail(keyOffset, $"duplicate key '{key}'");
            }
            entries.Add(KeyValuePair.Create(key, value));
        }
        if (entries.Count == 1 && entries[0].Key == PlistUid.XmlKey && entries[0].Value is PlistInteger uid && uid.Value >= 0 && uid.Value <= uint.MaxValue)
        {
            return new PlistUid((uint)uid.Value);
        }
        return Located(PlistDictionary.Wrap(entries.DrainToImmutable(), index, _offsets is not null), openOffset, starts);
    }

    /// <summary>Reads character data up to the next end tag: entities, character references, CDATA and comments.</summary>
    private string ReadText(ReadOnlySpan<byte> name, int openOffset)
    {
        _text.Clear();
        var runStart = _pos;
        while (_pos < _s.Length)
        {
            var b = _s[_pos];
            if (b == (byte)'<')
            {
                AppendUtf8(runStart, _pos);
                if (At("</"u8))
                {
                    return _text.ToString();
                }
                if (At("<![CDATA["u8))
                {
                    var cdataStart = _pos;
                    var end = _s[(_pos + 9)..].IndexOf("]]>"u8);
                    if (end < 0)
                    {
                        throw Fail(cdataStart, "unterminated CDATA section");
                    }
                    AppendUtf8(_pos + 9, _pos + 9 + end);
                    _pos += 9 + end + 3;
                }
                else if (At("<!--"u8))
                {
                    SkipComment();
                }
                else
                {
                    throw Fail(_pos, $"unexpected markup inside <{Name(name)}>");
                }
                runStart = _pos;
            }
            else if (b == (byte)'&')
            {
                AppendUtf8(runStart, _pos);
                ReadEntity();
                runStart = _pos;
            }
            else
            {
                _pos++;
            }
        }
        throw Fail(openOffset, $"unclosed <{Name(name)}>");
    }

    private void AppendUtf8(int from, int to)
    {
        if (to <= from)
        {
            return;
        }
        var bytes = _s[from..to];
        var chars = ArrayPool<char>.Shared.Rent(bytes.Length);
        try
        {
            var status = Utf8.ToUtf16(bytes, chars, out var read, out var written, replaceInvalidSequences: false);
            if (status != OperationStatus.Done)
            {
                throw Fail(from + read, "invalid UTF-8");
            }
            _text.Append(chars, 0, written);
        }
        finally
        {
            ArrayPool<char>.Shared.Return(chars);
        }
    }

    private void ReadEntity()
    {
        var start = _pos;
        var rest = _s[(_pos + 1)..];
        var semi = rest[..Math.Min(rest.Length, 12)].IndexOf((byte)';');
        if (semi < 0)
        {
            throw Fail(start, "unterminated entity reference");
        }
        var body = rest[..semi];
        _pos += semi + 2;
        if (body.SequenceEqual("lt"u8))
        {
            _text.Append('<');
        }
        else if (body.SequenceEqual("gt"u8))
        {
            _text.Append('>');
        }
        else if (body.SequenceEqual("amp"u8))
        {
            _text.Append('&');
        }
        else if (body.SequenceEqual("quot"u8))
        {
            _text.Append('"');
        }
        else if (body.SequenceEqual("apos"u8))
        {
            _text.Append('\'');
        }
        else if (body.Length >= 2 && body[0] == (byte)'#')
        {
            var hex = body[1] is (byte)'x' or (byte)'X';
            var digits = body[(hex ? 2 : 1)..];
            var value = 0;
            var ok = digits.Length > 0;
            foreach (var d in digits)
            {
                var v = HexValue(d);
                if (v < 0 || (!hex && v > 9))
                {
                    ok = false;
                    break;
                }
                value = (value * (hex ? 16 : 10)) + v;
                if (value > 0x10FFFF)
                {
                    ok = false;
                    break;
                }
            }
            if (!ok || !Rune.IsValid(value))
            {
                throw Fail(start, "invalid character reference");
            }
            _text.Append(new Rune(value).ToString());
        }
        else
        {
            throw Fail(start, $"unknown entity &{Name(body)};");
        }
    }

    private static int HexValue(byte b) => b switch
    {
        >= (byte)'0' and <= (byte)'9' => b - '0',
        >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
        _ => -1,
    };

    private readonly PlistInteger ParseInteger(string text, int offset)
    {
        var s = text.AsSpan().Trim(" \t\r\n");
        var negative = false;
        if (s.Length > 0 && s[0] is '-' or '+')
        {
            negative = s[0] == '-';
            s = s[1..];
        }
        var radix = 10;
        if (s.Length > 2 && s[0] == '0' && s[1] is 'x' or 'X')
        {
            radix = 16;
            s = s[2..];
        }
        if (s.Length == 0)
        {
            throw Fail(offset, $"<integer> holds no digits: '{text}'");
        }
        Int128 magnitude = 0;
        Int128 limit = negative ? -(Int128)long.MinValue : ulong.MaxValue;
        foreach (var c in s)
        {
            var v = c < 128 ? HexValue((byte)c) : -1;
            if (v < 0 || v >= radix)
            {
                throw Fail(offset, $"<integer> is not a number: '{text}'");
            }
            magnitude = (magnitude * radix) + v;
            if (magnitude > limit)
            {
                throw Fail(offset, $"<integer> {text} is outside the signed and unsigned 64-bit ranges");
            }
        }
        return new PlistInteger(negative ? -magnitude : magnitude);
    }

    private readonly PlistReal ParseReal(string text, int offset)
    {
        var s = text.AsSpan().Trim(" \t\r\n");
        var lower = s.ToString().ToLowerInvariant();
        switch (lower)
        {
            case "nan":
                return new PlistReal(double.NaN);
            case "inf" or "+inf" or "infinity" or "+infinity":
                return new PlistReal(double.PositiveInfinity);
            case "-inf" or "-infinity":
                return new PlistReal(double.NegativeInfinity);
        }
        foreach (var c in s)
        {
            if (c is not ((>= '0' and <= '9') or '+' or '-' or '.' or 'e' or 'E'))
            {
                throw Fail(offset, $"<real> is not a number: '{text}'");
            }
        }
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
        {
            throw Fail(offset, $"<real> is not a number: '{text}'");
        }
        return new PlistReal(value);
    }

    private readonly PlistDate ParseDate(string text, int offset)
    {
        var s = text.AsSpan().Trim(" \t\r\n");
        // YYYY-MM-DDTHH:MM:SSZ
        if (s.Length != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z')
        {
            throw Fail(offset, $"<date> must be YYYY-MM-DDTHH:MM:SSZ, found '{text}'");
        }
        static int Num(ReadOnlySpan<char> d)
        {
            var v = 0;
            foreach (var c in d)
            {
                if (c is < '0' or > '9')
                {
                    return -1;
                }
                v = (v * 10) + (c - '0');
            }
            return v;
        }
        int year = Num(s[..4]), month = Num(s[5..7]), day = Num(s[8..10]), hour = Num(s[11..13]), minute = Num(s[14..16]), second = Num(s[17..19]);
        if (year < 1 || month < 1 || month > 12 || day < 1 || day > DateTime.DaysInMonth(year, month) || hour is < 0 or > 23 || minute is < 0 or > 59 || second is < 0 or > 59)
        {
            throw Fail(offset, $"<date> is not a valid date: '{text}'");
        }
        return new PlistDate(new DateTime(year, month, day, hour, minute, second, DateTimeKind.Utc));
    }

    private readonly PlistData ParseData(string text, int offset)
    {
        var compact = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            if (c is not (' ' or '\t' or '\r' or '\n'))
            {
                compact.Append(c);
            }
        }
        var chars = compact.ToString();
        var buffer = new byte[(chars.Length / 4 * 3) + 3];
        if (chars.Length % 4 != 0 || !Convert.TryFromBase64String(chars, buffer, out var written))
        {
            throw Fail(offset, "<data> is not valid base64");
        }
        return new PlistData(buffer.AsSpan(0, written));
    }
}

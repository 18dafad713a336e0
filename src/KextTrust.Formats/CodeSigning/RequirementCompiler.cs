using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace KextTrust.Formats.CodeSigning;

/// <summary>
/// The requirement text could not be compiled: names the text's source, the UTF-8 byte offset in the text where the
/// problem was found (<see cref="Position"/> is the same place as a character index) and the rule.
/// </summary>
public sealed class RequirementSyntaxException : KextTrustFormatException
{
    /// <summary>Creates the exception for a problem at character <paramref name="position"/> of <paramref name="text"/>.</summary>
    public RequirementSyntaxException(string? source, string text, int position, string rule)
        : base("code requirement", source, Encoding.UTF8.GetByteCount(text.AsSpan(0, Math.Clamp(position, 0, text.Length))), rule)
    {
        Position = position;
    }

    /// <summary>Character index in the text where the problem was found.</summary>
    public int Position { get; }
}

/// <summary>
/// Compiles the requirement language (the text <c>codesign -r</c> accepts and <see cref="Requirement.Text"/>
/// prints) to requirement blobs. <c>and</c>/<c>or</c> chains nest to the right, as Apple's signer emits them;
/// <c>and</c> binds tighter than <c>or</c>; <c>!</c> tighter than both.
/// </summary>
public static class RequirementCompiler
{
    /// <summary>The source named by errors when the caller names none.</summary>
    public const string DefaultSource = "requirement text";

    /// <summary>Compiles one expression to a requirement blob (0xfade0c00, expression form).</summary>
    /// <exception cref="RequirementSyntaxException">The text is not a requirement; names <paramref name="source"/> and the byte offset.</exception>
    public static byte[] Compile(string expression, string? source = DefaultSource)
    {
        ArgumentNullException.ThrowIfNull(expression);
        return Compile(expression, 0, expression.Length, source);
    }

    /// <summary>Compiles <paramref name="length"/> characters of <paramref name="text"/> from <paramref name="start"/>; errors give offsets in the whole text.</summary>
    private static byte[] Compile(string text, int start, int length, string? source)
    {
        var p = new Parser(text, start, length, source);
        var body = new List<byte>();
        p.OrExpr(body, 0);
        p.ExpectEnd();
        var blob = new byte[checked(12 + body.Count)];
        BinaryPrimitives.WriteUInt32BigEndian(blob, BlobMagic.Requirement);
        BinaryPrimitives.WriteUInt32BigEndian(blob.AsSpan(4), (uint)blob.Length);
        BinaryPrimitives.WriteUInt32BigEndian(blob.AsSpan(8), Requirement.ExpressionKind);
        body.CopyTo(blob, 12);
        return blob;
    }

    /// <summary>Compiles a set, e.g. <c>designated =&gt; identifier "x" and anchor apple generic</c>, one requirement per line.</summary>
    /// <exception cref="RequirementSyntaxException">A line is not a requirement; names <paramref name="source"/> and the byte offset in the whole text.</exception>
    public static byte[] CompileSet(string text, string? source = DefaultSource)
    {
        ArgumentNullException.ThrowIfNull(text);
        var entries = new List<(RequirementType, byte[])>();
        for (var lineStart = 0; lineStart <= text.Length;)
        {
            var lineEnd = text.IndexOf('\n', lineStart);
            lineEnd = lineEnd < 0 ? text.Length : lineEnd;
            var rawLine = text[lineStart..lineEnd];
            var lineAt = lineStart + (rawLine.Length - rawLine.TrimStart().Length);
            lineStart = lineEnd + 1;
            var line = rawLine.Trim();
            if (line.Length == 0)
            {
                continue;
            }
            var arrow = line.IndexOf("=>", StringComparison.Ordinal);
            if (arrow < 0)
            {
                throw new RequirementSyntaxException(source, text, lineAt, $"expected 'type => expression' in line '{line}'");
            }
            var typeName = line[..arrow].Trim();
            var type = typeName switch
            {
                "host" => RequirementType.Host,
                "guest" => RequirementType.Guest,
                "designated" => RequirementType.Designated,
                "library" => RequirementType.Library,
                "plugin" => RequirementType.Plugin,
                _ => throw new RequirementSyntaxException(source, text, lineAt, $"unknown requirement type '{typeName}'"),
            };
            entries.Add((type, Compile(text, lineAt + arrow + 2, line.Length - arrow - 2, source)));
        }
        return BuildSet(entries);
    }

    /// <summary>Assembles a requirement set blob (0xfade0c01) from compiled requirement blobs.</summary>
    public static byte[] BuildSet(IReadOnlyList<(RequirementType Type, byte[] Requirement)> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var header = checked(12 + 8 * entries.Count);
        var total = header;
        foreach (var (_, r) in entries)
        {
            total = checked(total + r.Length);
        }
        var blob = new byte[total];
        BinaryPrimitives.WriteUInt32BigEndian(blob, BlobMagic.RequirementSet);
        BinaryPrimitives.WriteUInt32BigEndian(blob.AsSpan(4), (uint)total);
        BinaryPrimitives.WriteUInt32BigEndian(blob.AsSpan(8), (uint)entries.Count);
        var offset = header;
        for (var i = 0; i < entries.Count; i++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(blob.AsSpan(12 + 8 * i), (uint)entries[i].Type);
            BinaryPrimitives.WriteUInt32BigEndian(blob.AsSpan(16 + 8 * i), (uint)offset);
            entries[i].Requirement.CopyTo(blob, offset);
            offset += entries[i].Requirement.Length;
        }
        return blob;
    }

    private enum TokenKind { Word, String, Hash, Hex, Timestamp, Punct, End }

    private readonly record struct Token(TokenKind Kind, string Text, byte[] Bytes, int Position);

    private sealed class Parser
    {
        private readonly List<Token> _tokens;
        private readonly string _text;
        private readonly int _start;
        private readonly string? _source;
        private int _i;

        /// <summary>Parses <paramref name="length"/> characters of <paramref name="text"/> from <paramref name="start"/>.</summary>
        public Parser(string text, int start, int length, string? source)
        {
            _text = text;
            _start = start;
            _source = source;
            _tokens = Tokenize(text.Substring(start, length));
        }

        /// <summary>An error at <paramref name="position"/> of the parsed part, placed in the whole text.</summary>
        private RequirementSyntaxException Fail(int position, string rule) => new(_source, _text, _start + position, rule);

        private Token Peek => _tokens[_i];

        private Token Next() => _tokens[_i++];

        private bool IsWord(string w) => Peek.Kind == TokenKind.Word && Peek.Text == w;

        private bool IsPunct(string p) => Peek.Kind == TokenKind.Punct && Peek.Text == p;

        private void Expect(string punct)
        {
            if (!IsPunct(punct))
            {
                throw Fail(Peek.Position, $"expected '{punct}', found '{Peek.Text}'");
            }
            _i++;
        }

        public void ExpectEnd()
        {
            if (Peek.Kind != TokenKind.End)
            {
                throw Fail(Peek.Position, $"unexpected '{Peek.Text}'");
            }
        }

        private static void Op(List<byte> o, uint value)
        {
            Span<byte> b = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(b, value);
            o.AddRange(b.ToArray());
        }

        private static void Data(List<byte> o, ReadOnlySpan<byte> data)
        {
            Op(o, (uint)data.Length);
            o.AddRange(data.ToArray());
            for (var pad = data.Length; pad % 4 != 0; pad++)
            {
                o.Add(0);
            }
        }

        private const int MaxDepth = Requirement.MaxDepth;

        public void OrExpr(List<byte> o, int depth)
        {
            Guard(depth);
            var first = new List<byte>();
            AndExpr(first, depth + 1);
            if (IsWord("or"))
            {
                _i++;
                Op(o, (uint)RequirementOpcode.Or);
                o.AddRange(first);
                OrExpr(o, depth + 1);
            }
            else
            {
                o.AddRange(first);
            }
        }

        private void AndExpr(List<byte> o, int depth)
        {
            Guard(depth);
            var first = new List<byte>();
            Primary(first, depth + 1);
            if (IsWord("and"))
            {
                _i++;
                Op(o, (uint)RequirementOpcode.And);
                o.AddRange(first);
                AndExpr(o, depth + 1);
            }
            else
            {
                o.AddRange(first);
            }
        }

        private void Guard(int depth)
        {
            if (depth > MaxDepth * 4)
            {
                throw Fail(Peek.Position, "expression nests too deeply");
            }
        }

        private void Primary(List<byte> o, int depth)
        {
            Guard(depth);
            var t = Peek;
            if (IsPunct("("))
            {
                _i++;
                // (name) with a non-keyword single value is a named code requirement.
                if ((Peek.Kind is TokenKind.String || (Peek.Kind == TokenKind.Word && !IsKeyword(Peek.Text)))
                    && _tokens[_i + 1].Kind == TokenKind.Punct && _tokens[_i + 1].Text == ")")
                {
                    var name = Next();
                    _i++;
                    Op(o, (uint)RequirementOpcode.NamedCode);
                    Data(o, ValueBytes(name));
                    return;
                }
                OrExpr(o, depth + 1);
                Expect(")");
                return;
            }
            if (IsPunct("!"))
            {
                _i++;
                Op(o, (uint)RequirementOpcode.Not);
                Primary(o, depth + 1);
                return;
            }
            if (t.Kind != TokenKind.Word)
            {
                throw Fail(t.Position, $"expected an expression, found '{t.Text}'");
            }
            _i++;
            switch (t.Text)
            {
                case "always":
                case "true":
                    Op(o, (uint)RequirementOpcode.True);
                    return;
                case "never":
                case "false":
                    Op(o, (uint)RequirementOpcode.False);
                    return;
                case "identifier":
                    if (IsPunct("="))
                    {
                        _i++;
                    }
                    Op(o, (uint)RequirementOpcode.Ident);
                    Data(o, Value());
                    return;
                case "cdhash":
                    Op(o, (uint)RequirementOpcode.CDHash);
                    Data(o, Value());
                    return;
                case "platform":
                {
                    Expect("=");
                    var n = Next();
                    if (n.Kind != TokenKind.Word || !int.TryParse(n.Text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var platform))
                    {
                        throw Fail(n.Position, "platform needs an integer");
                    }
                    Op(o, (uint)RequirementOpcode.Platform);
                    Op(o, unchecked((uint)platform));
                    return;
                }
                case "notarized":
                    Op(o, (uint)RequirementOpcode.Notarized);
                    return;
                case "legacy":
                    Op(o, (uint)RequirementOpcode.LegacyDevID);
                    return;
                case "info":
                    Bracketed(o, RequirementOpcode.InfoKeyField, slot: null);
                    return;
                case "entitlement":
                    Bracketed(o, RequirementOpcode.EntitlementField, slot: null);
                    return;
                case "anchor":
                    if (IsWord("apple"))
                    {
                        _i++;
                        if (IsWord("generic"))
                        {
                            _i++;
                            Op(o, (uint)RequirementOpcode.AppleGenericAnchor);
                        }
                        else if (Peek.Kind is TokenKind.Word or TokenKind.String && !IsWord("and") && !IsWord("or"))
                        {
                            Op(o, (uint)RequirementOpcode.NamedAnchor);
                            Data(o, ValueBytes(Next()));
                        }
                        else
                        {
                            Op(o, (uint)RequirementOpcode.AppleAnchor);
                        }
                        return;
                    }
                    if (IsWord("trusted"))
                    {
                        _i++;
                        Op(o, (uint)RequirementOpcode.TrustedCerts);
                        return;
                    }
                    CertificateTail(o, -1);
                    return;
                case "certificate":
                case "cert":
                {
                    var s = Next();
                    int slot = s.Text switch
                    {
                        "leaf" => 0,
                        "anchor" or "root" => -1,
                        _ when s.Kind == TokenKind.Word && int.TryParse(s.Text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n) => n,
                        _ => throw Fail(s.Position, $"expected a certificate slot, found '{s.Text}'"),
                    };
                    CertificateTail(o, slot);
                    return;
                }
                default:
                    throw Fail(t.Position, $"unknown keyword '{t.Text}'");
            }
        }

        private void CertificateTail(List<byte> o, int slot)
        {
            if (IsPunct("="))
            {
                _i++;
                Op(o, (uint)RequirementOpcode.AnchorHash);
                Op(o, unchecked((uint)slot));
                Data(o, Value());
                return;
            }
            if (IsWord("trusted"))
            {
                _i++;
                Op(o, (uint)RequirementOpcode.TrustedCert);
                Op(o, unchecked((uint)slot));
                return;
            }
            Bracketed(o, RequirementOpcode.CertField, slot);
        }

        private void Bracketed(List<byte> o, RequirementOpcode op, int? slot)
        {
            Expect("[");
            var keyToken = Next();
            if (keyToken.Kind is not (TokenKind.Word or TokenKind.String))
            {
                throw Fail(keyToken.Position, "expected a key");
            }
            var key = keyToken.Text;
            Expect("]");
            byte[] keyBytes = Encoding.UTF8.GetBytes(key);
            if (op == RequirementOpcode.CertField)
            {
                foreach (var (prefix, specific) in new[] { ("field.", RequirementOpcode.CertGeneric), ("policy.", RequirementOpcode.CertPolicy), ("timestamp.", RequirementOpcode.CertFieldDate) })
                {
                    if (key.StartsWith(prefix, StringComparison.Ordinal))
                    {
                        op = specific;
                        try
                        {
                            keyBytes = RequirementText.EncodeOid(key[prefix.Length..]);
                        }
                        catch (Exception e) when (e is ArgumentException or FormatException or System.Security.Cryptography.CryptographicException)
                        {
                            throw Fail(keyToken.Position, $"'{key[prefix.Length..]}' is not a dotted OID");
                        }
                        break;
                    }
                }
            }
            Op(o, (uint)op);
            if (slot is { } s)
            {
                Op(o, unchecked((uint)s));
            }
            Data(o, keyBytes);
            MatchTail(o);
        }

        private void MatchTail(List<byte> o)
        {
            if (IsWord("exists"))
            {
                _i++;
                Op(o, (uint)RequirementMatchOperation.Exists);
                return;
            }
            if (IsWord("absent"))
            {
                _i++;
                Op(o, (uint)RequirementMatchOperation.Absent);
                return;
            }
            if (Peek.Kind != TokenKind.Punct || Peek.Text is "(" or ")" or "!")
            {
                Op(o, (uint)RequirementMatchOperation.Exists);
                return;
            }
            var op = Next();
            if (Peek.Kind == TokenKind.Timestamp)
            {
                var when = Next();
                var dateOp = op.Text switch
                {
                    "=" => RequirementMatchOperation.On,
                    "<" => RequirementMatchOperation.Before,
                    ">" => RequirementMatchOperation.After,
                    "<=" => RequirementMatchOperation.OnOrBefore,
                    ">=" => RequirementMatchOperation.OnOrAfter,
                    _ => throw Fail(op.Position, $"'{op.Text}' cannot compare a timestamp"),
                };
                Op(o, (uint)dateOp);
                long seconds;
                try
                {
                    seconds = RequirementText.ParseTimestamp(when.Text);
                }
                catch (FormatException)
                {
                    throw Fail(when.Position, $"bad timestamp '{when.Text}'");
                }
                var b = new byte[8];
                BinaryPrimitives.WriteInt64BigEndian(b, seconds);
                o.AddRange(b);
                return;
            }
            switch (op.Text)
            {
                case "=":
                {
                    var leadingStar = IsPunct("*");
                    if (leadingStar)
                    {
                        _i++;
                    }
                    var value = Value();
                    var trailingStar = !leadingStar && IsPunct("*");
                    if (trailingStar)
                    {
                        _i++;
                    }
                    Op(o, (uint)(leadingStar ? RequirementMatchOperation.EndsWith : trailingStar ? RequirementMatchOperation.BeginsWith : RequirementMatchOperation.Equal));
                    Data(o, value);
                    return;
                }
                case "~": Op(o, (uint)RequirementMatchOperation.Contains); break;
                case "<": Op(o, (uint)RequirementMatchOperation.LessThan); break;
                case ">": Op(o, (uint)RequirementMatchOperation.GreaterThan); break;
                case "<=": Op(o, (uint)RequirementMatchOperation.LessEqual); break;
                case ">=": Op(o, (uint)RequirementMatchOperation.GreaterEqual); break;
                default: throw Fail(op.Position, $"unexpected '{op.Text}' in a match");
            }
            Data(o, Value());
        }

        private byte[] Value()
        {
            var t = Next();
            if (t.Kind is TokenKind.Word or TokenKind.String or TokenKind.Hash or TokenKind.Hex)
            {
                return ValueBytes(t);
            }
            throw Fail(t.Position, $"expected a value, found '{t.Text}'");
        }

        private static byte[] ValueBytes(Token t) => t.Kind is TokenKind.Hash or TokenKind.Hex ? t.Bytes : Encoding.UTF8.GetBytes(t.Text);

        private static bool IsKeyword(string w) => w is "always" or "never" or "true" or "false" or "notarized" or "legacy";

        private static bool IsWordChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' or '/' or '$' or '+';

        private List<Token> Tokenize(string s)
        {
            var list = new List<Token>();
            var i = 0;
            while (true)
            {
                while (i < s.Length && char.IsWhiteSpace(s[i]))
                {
                    i++;
                }
                if (i + 1 < s.Length && s[i] == '/' && s[i + 1] == '*')
                {
                    var end = s.IndexOf("*/", i + 2, StringComparison.Ordinal);
                    if (end < 0)
                    {
                        throw Fail(i, "unterminated comment");
                    }
                    i = end + 2;
                    continue;
                }
                if (i >= s.Length)
                {
                    list.Add(new Token(TokenKind.End, "<end>", [], i));
                    return list;
                }
                var start = i;
                var c = s[i];
                if (c == 'H' && i + 1 < s.Length && s[i + 1] == '"')
                {
                    var end = s.IndexOf('"', i + 2);
                    if (end < 0)
                    {
                        throw Fail(i, "unterminated hash");
                    }
                    list.Add(new Token(TokenKind.Hash, s[start..(end + 1)], Hex(s[(i + 2)..end], i), start));
                    i = end + 1;
                }
                else if (c == '0' && i + 1 < s.Length && s[i + 1] == 'x')
                {
                    i += 2;
                    while (i < s.Length && char.IsAsciiHexDigit(s[i]))
                    {
                        i++;
                    }
                    list.Add(new Token(TokenKind.Hex, s[start..i], Hex(s[(start + 2)..i], start), start));
                }
                else if (c == '"')
                {
                    var sb = new StringBuilder();
                    i++;
                    while (true)
                    {
                        if (i >= s.Length)
                        {
                            throw Fail(start, "unterminated string");
                        }
                        if (s[i] == '\\' && i + 1 < s.Length)
                        {
                            sb.Append(s[i + 1]);
                            i += 2;
                            continue;
                        }
                        if (s[i] == '"')
                        {
                            i++;
                            break;
                        }
                        sb.Append(s[i++]);
                    }
                    list.Add(new Token(TokenKind.String, sb.ToString(), [], start));
                }
                else if (c == '<' && i + 1 < s.Length && char.IsAsciiDigit(s[i + 1]) && list.Count > 0 && list[^1].Kind == TokenKind.Punct)
                {
                    var end = s.IndexOf('>', i);
                    if (end < 0)
                    {
                        throw Fail(i, "unterminated timestamp");
                    }
                    list.Add(new Token(TokenKind.Timestamp, s[(i + 1)..end], [], start));
                    i = end + 1;
                }
                else if (IsWordChar(c))
                {
                    while (i < s.Length && IsWordChar(s[i]))
                    {
                        i++;
                    }
                    list.Add(new Token(TokenKind.Word, s[start..i], [], start));
                }
                else if ((c is '<' or '>') && i + 1 < s.Length && s[i + 1] == '=')
                {
                    list.Add(new Token(TokenKind.Punct, s.Substring(i, 2), [], start));
                    i += 2;
                }
                else if (c is '(' or ')' or '[' or ']' or '=' or '~' or '<' or '>' or '!' or '*')
                {
                    list.Add(new Token(TokenKind.Punct, c.ToString(), [], start));
                    i++;
                }
                else
                {
                    throw Fail(i, $"unexpected character '{c}'");
                }
            }
        }

        private byte[] Hex(string hex, int position)
        {
            try
            {
                return Convert.FromHexString(hex);
            }
            catch (FormatException)
            {
                throw Fail(position, $"bad hex '{hex}'");
            }
        }
    }
}

using System.Buffers.Binary;
using System.Formats.Asn1;
using System.Globalization;
using System.Text;

namespace KextTrust.Formats.CodeSigning;

/// <summary>Requirement expression opcodes (Security framework <c>requirement.h</c>).</summary>
public enum RequirementOpcode : uint
{
    /// <summary>never</summary>
    False = 0,
    /// <summary>always</summary>
    True = 1,
    /// <summary>identifier "x"</summary>
    Ident = 2,
    /// <summary>anchor apple</summary>
    AppleAnchor = 3,
    /// <summary>certificate N = H"hash"</summary>
    AnchorHash = 4,
    /// <summary>legacy info[key] = value</summary>
    InfoKey = 5,
    /// <summary>a and b</summary>
    And = 6,
    /// <summary>a or b</summary>
    Or = 7,
    /// <summary>cdhash H"…"</summary>
    CDHash = 8,
    /// <summary>! a</summary>
    Not = 9,
    /// <summary>info[key] match</summary>
    InfoKeyField = 10,
    /// <summary>certificate N[name] match</summary>
    CertField = 11,
    /// <summary>certificate N trusted</summary>
    TrustedCert = 12,
    /// <summary>anchor trusted</summary>
    TrustedCerts = 13,
    /// <summary>certificate N[field.OID] match</summary>
    CertGeneric = 14,
    /// <summary>anchor apple generic</summary>
    AppleGenericAnchor = 15,
    /// <summary>entitlement[key] match</summary>
    EntitlementField = 16,
    /// <summary>certificate N[policy.OID] match</summary>
    CertPolicy = 17,
    /// <summary>anchor apple NAME</summary>
    NamedAnchor = 18,
    /// <summary>(NAME)</summary>
    NamedCode = 19,
    /// <summary>platform = N</summary>
    Platform = 20,
    /// <summary>notarized</summary>
    Notarized = 21,
    /// <summary>certificate N[timestamp.OID] match</summary>
    CertFieldDate = 22,
    /// <summary>legacy</summary>
    LegacyDevID = 23,
}

/// <summary>Requirement match operations.</summary>
public enum RequirementMatchOperation : uint
{
    /// <summary>exists</summary>
    Exists = 0,
    /// <summary>= value</summary>
    Equal = 1,
    /// <summary>~ value</summary>
    Contains = 2,
    /// <summary>= value*</summary>
    BeginsWith = 3,
    /// <summary>= *value</summary>
    EndsWith = 4,
    /// <summary>&lt; value</summary>
    LessThan = 5,
    /// <summary>&gt; value</summary>
    GreaterThan = 6,
    /// <summary>&lt;= value</summary>
    LessEqual = 7,
    /// <summary>&gt;= value</summary>
    GreaterEqual = 8,
    /// <summary>= timestamp</summary>
    On = 9,
    /// <summary>&lt; timestamp</summary>
    Before = 10,
    /// <summary>&gt; timestamp</summary>
    After = 11,
    /// <summary>&lt;= timestamp</summary>
    OnOrBefore = 12,
    /// <summary>&gt;= timestamp</summary>
    OnOrAfter = 13,
    /// <summary>absent</summary>
    Absent = 14,
}

/// <summary>Requirement types inside a requirement set.</summary>
public enum RequirementType : uint
{
    /// <summary>host</summary>
    Host = 1,
    /// <summary>guest</summary>
    Guest = 2,
    /// <summary>designated</summary>
    Designated = 3,
    /// <summary>library</summary>
    Library = 4,
    /// <summary>plugin</summary>
    Plugin = 5,
}

/// <summary>
/// One code requirement blob (0xfade0c00): its kind, raw bytes and the expression decompiled to the
/// text <c>codesign -d -r-</c> prints.
/// </summary>
public sealed class Requirement
{
    /// <summary>The expression form kind (1).</summary>
    public const uint ExpressionKind = 1;

    /// <summary>The maximal nesting depth accepted when decompiling.</summary>
    public const int MaxDepth = 256;

    internal const uint OpFlagMask = 0xC0000000;
    internal const uint OpGenericFalse = 0x80000000;
    internal const uint OpGenericSkip = 0x40000000;

    private Requirement(uint kind, ReadOnlyMemory<byte> bytes, string text)
    {
        Kind = kind;
        Bytes = bytes;
        Text = text;
    }

    /// <summary>The blob's kind field (1 = expression form).</summary>
    public uint Kind { get; }

    /// <summary>The whole blob, header included.</summary>
    public ReadOnlyMemory<byte> Bytes { get; }

    /// <summary>The decompiled expression.</summary>
    public string Text { get; }

    /// <inheritdoc />
    public override string ToString() => Text;

    /// <summary>Parses and decompiles a requirement blob.</summary>
    public static Requirement Parse(ReadOnlyMemory<byte> blob, string? sourceName) => Parse(new BlobCursor(blob, sourceName, 0));

    internal static Requirement Parse(BlobCursor cur)
    {
        var magic = cur.U32(0, "requirement magic");
        if (magic != BlobMagic.Requirement)
        {
            throw cur.Fail(0, $"requirement magic 0x{magic:x8} is not 0x{BlobMagic.Requirement:x8}");
        }
        var length = cur.U32(4, "requirement length");
        if (length < 12 || length > cur.Length)
        {
            throw cur.Fail(4, $"requirement length {length} is outside 12..{cur.Length}");
        }
        var body = cur.Sub(0, length, "requirement");
        var kind = body.U32(8, "requirement kind");
        if (kind != ExpressionKind)
        {
            throw body.Fail(8, $"requirement kind {kind} is not the expression form (1)");
        }
        var dumper = new Dumper(body, 12);
        dumper.Expr(Level.Top, 0);
        return new Requirement(kind, body.Memory, dumper.Text);
    }

    private enum Level { Primary = 0, And = 1, Or = 2, Top = 3 }

    private sealed class Dumper
    {
        private readonly BlobCursor _cur;
        private readonly StringBuilder _sb = new();
        private long _pos;

        public Dumper(BlobCursor cur, long start)
        {
            _cur = cur;
            _pos = start;
        }

        public string Text => _sb.ToString();

        private uint U32()
        {
            var v = _cur.U32(_pos, "requirement operand");
            _pos += 4;
            return v;
        }

        private ReadOnlyMemory<byte> Data()
        {
            var len = U32();
            var data = _cur.Slice(_pos, len, "requirement data");
            var padded = checked((len + 3L) & ~3L);
            _cur.Require(_pos, padded, "requirement data padding");
            _pos += padded;
            return data;
        }

        public void Expr(Level level, int depth)
        {
            if (depth > MaxDepth)
            {
                throw _cur.Fail(_pos, $"requirement nesting exceeds {MaxDepth}");
            }
            var at = _pos;
            var raw = U32();
            var op = raw & ~OpFlagMask;
            switch ((RequirementOpcode)op)
            {
                case RequirementOpcode.False: _sb.Append("never"); break;
                case RequirementOpcode.True: _sb.Append("always"); break;
                case RequirementOpcode.Ident: _sb.Append("identifier "); AppendData(Data(), false); break;
                case RequirementOpcode.AppleAnchor: _sb.Append("anchor apple"); break;
                case RequirementOpcode.AppleGenericAnchor: _sb.Append("anchor apple generic"); break;
                case RequirementOpcode.AnchorHash: _sb.Append("certificate"); CertSlot(); _sb.Append(" = "); AppendHash(Data()); break;
                case RequirementOpcode.InfoKey: _sb.Append("info["); AppendData(Data(), true); _sb.Append("] = "); AppendData(Data(), false); break;
                case RequirementOpcode.And:
                case RequirementOpcode.Or:
                {
                    var mine = op == (uint)RequirementOpcode.And ? Level.And : Level.Or;
                    if (level < mine) _sb.Append('(');
                    Expr(mine, depth + 1);
                    _sb.Append(mine == Level.And ? " and " : " or ");
                    Expr(mine, depth + 1);
                    if (level < mine) _sb.Append(')');
                    break;
                }
                case RequirementOpcode.Not: _sb.Append("! "); Expr(Level.Primary, depth + 1); break;
                case RequirementOpcode.CDHash: _sb.Append("cdhash "); AppendHash(Data()); break;
                case RequirementOpcode.InfoKeyField: _sb.Append("info["); AppendData(Data(), true); _sb.Append(']'); Match(); break;
                case RequirementOpcode.EntitlementField: _sb.Append("entitlement["); AppendData(Data(), true); _sb.Append(']'); Match(); break;
                case RequirementOpcode.CertField: _sb.Append("certificate"); CertSlot(); _sb.Append('['); AppendData(Data(), true); _sb.Append(']'); Match(); break;
                case RequirementOpcode.CertGeneric: _sb.Append("certificate"); CertSlot(); _sb.Append("[field."); AppendOid(); _sb.Append(']'); Match(); break;
                case RequirementOpcode.CertPolicy: _sb.Append("certificate"); CertSlot(); _sb.Append("[policy."); AppendOid(); _sb.Append(']'); Match(); break;
                case RequirementOpcode.CertFieldDate: _sb.Append("certificate"); CertSlot(); _sb.Append("[timestamp."); AppendOid(); _sb.Append(']'); Match(); break;
                case RequirementOpcode.TrustedCert: _sb.Append("certificate"); CertSlot(); _sb.Append(" trusted"); break;
                case RequirementOpcode.TrustedCerts: _sb.Append("anchor trusted"); break;
                case RequirementOpcode.NamedAnchor: _sb.Append("anchor apple "); AppendData(Data(), false); break;
                case RequirementOpcode.NamedCode: _sb.Append('('); AppendData(Data(), false); _sb.Append(')'); break;
                case RequirementOpcode.Platform: _sb.Append("platform = ").Append(unchecked((int)U32()).ToString(CultureInfo.InvariantCulture)); break;
                case RequirementOpcode.Notarized: _sb.Append("notarized"); break;
                case RequirementOpcode.LegacyDevID: _sb.Append("legacy"); break;
                default:
                    if ((raw & OpGenericFalse) != 0)
                    {
                        _sb.Append(CultureInfo.InvariantCulture, $"never /* opcode {op} */");
                    }
                    else if ((raw & OpGenericSkip) != 0)
                    {
                        _sb.Append(CultureInfo.InvariantCulture, $"always /* opcode {op} */");
                    }
                    else
                    {
                        throw _cur.Fail(at, $"unknown requirement opcode {raw} (0x{raw:x})");
                    }
                    break;
            }
        }

        private void CertSlot()
        {
            var slot = unchecked((int)U32());
            _sb.Append(slot switch
            {
                -1 => " anchor",
                0 => " leaf",
                _ => " " + slot.ToString(CultureInfo.InvariantCulture),
            });
        }

        private void Match()
        {
            var at = _pos;
            var op = U32();
            switch ((RequirementMatchOperation)op)
            {
                case RequirementMatchOperation.Exists: _sb.Append(" /* exists */"); break;
                case RequirementMatchOperation.Absent: _sb.Append(" absent "); break;
                case RequirementMatchOperation.Equal: _sb.Append(" = "); AppendData(Data(), false); break;
                case RequirementMatchOperation.Contains: _sb.Append(" ~ "); AppendData(Data(), false); break;
                case RequirementMatchOperation.BeginsWith: _sb.Append(" = "); AppendData(Data(), false); _sb.Append('*'); break;
                case RequirementMatchOperation.EndsWith: _sb.Append(" = *"); AppendData(Data(), false); break;
                case RequirementMatchOperation.LessThan: _sb.Append(" < "); AppendData(Data(), false); break;
                case RequirementMatchOperation.GreaterThan: _sb.Append(" > "); AppendData(Data(), false); break;
                case RequirementMatchOperation.LessEqual: _sb.Append(" <= "); AppendData(Data(), false); break;
                case RequirementMatchOperation.GreaterEqual: _sb.Append(" >= "); AppendData(Data(), false); break;
                case RequirementMatchOperation.On: _sb.Append(" = "); Timestamp(); break;
                case RequirementMatchOperation.Before: _sb.Append(" < "); Timestamp(); break;
                case RequirementMatchOperation.After: _sb.Append(" > "); Timestamp(); break;
                case RequirementMatchOperation.OnOrBefore: _sb.Append(" <= "); Timestamp(); break;
                case RequirementMatchOperation.OnOrAfter: _sb.Append(" >= "); Timestamp(); break;
                default: throw _cur.Fail(at, $"unknown requirement match operation {op}");
            }
        }

        private void Timestamp()
        {
            var seconds = unchecked((long)_cur.U64(_pos, "requirement timestamp"));
            _pos += 8;
            _sb.Append('<').Append(RequirementText.FormatTimestamp(seconds)).Append('>');
        }

        private void AppendOid()
        {
            var at = _pos;
            var data = Data();
            var dotted = RequirementText.TryDecodeOid(data.Span);
            if (dotted is null)
            {
                throw _cur.Fail(at, "certificate field OID is not a valid DER object identifier body");
            }
            _sb.Append(dotted);
        }

        private void AppendHash(ReadOnlyMemory<byte> data) =>
            _sb.Append("H\"").Append(Convert.ToHexStringLower(data.Span)).Append('"');

        private void AppendData(ReadOnlyMemory<byte> data, bool dotOkay) => _sb.Append(RequirementText.FormatData(data.Span, dotOkay));
    }
}

/// <summary>Text helpers shared by the requirement decompiler and compiler.</summary>
internal static class RequirementText
{
    private static readonly DateTime CfEpoch = new(2001, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    public static string FormatTimestamp(long cfSeconds)
    {
        // CFAbsoluteTime: seconds since 2001-01-01 UTC; clamp-free formatting of the representable range.
        var maxForward = (long)(DateTime.MaxValue - CfEpoch).TotalSeconds;
        var maxBack = (long)(CfEpoch - DateTime.MinValue).TotalSeconds;
        if (cfSeconds > maxForward || cfSeconds < -maxBack)
        {
            return cfSeconds.ToString(CultureInfo.InvariantCulture);
        }
        return CfEpoch.AddSeconds(cfSeconds).ToString("yyyy-MM-dd HH:mm:ss '+0000'", CultureInfo.InvariantCulture);
    }

    public static long ParseTimestamp(string text)
    {
        if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var raw))
        {
            return raw;
        }
        var when = DateTime.ParseExact(text, "yyyy-MM-dd HH:mm:ss '+0000'", CultureInfo.InvariantCulture,
            DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal);
        return (long)(when - CfEpoch).TotalSeconds;
    }

    private static bool IsAlnum(byte c) => c is >= (byte)'0' and <= (byte)'9' or >= (byte)'a' and <= (byte)'z' or >= (byte)'A' and <= (byte)'Z';

    /// <summary>Apple's reqdumper rules: bare when simple, quoted when printable, 0x-hex when binary.</summary>
    public static string FormatData(ReadOnlySpan<byte> data, bool dotOkay)
    {
        var mode = 0; // 0 simple, 1 printable, 2 binary
        for (var n = 0; n < data.Length; n++)
        {
            var c = data[n];
            if (IsAlnum(c) || (c == (byte)'.' && dotOkay))
            {
                if (n == 0 && c is >= (byte)'0' and <= (byte)'9')
                {
                    mode = Math.Max(mode, 1);
                }
            }
            else if (c is >= 0x21 and <= 0x7e or (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\v' or (byte)'\f' or (byte)'\r')
            {
                mode = Math.Max(mode, 1);
            }
            else
            {
                mode = 2;
                break;
            }
        }
        if (mode == 0 && (data.Length == 0 || IsKeyword(data)))
        {
            mode = 1;
        }
        switch (mode)
        {
            case 0:
                return Encoding.ASCII.GetString(data);
            case 1:
            {
                var sb = new StringBuilder(data.Length + 2).Append('"');
                foreach (var c in data)
                {
                    if (c is (byte)'\\' or (byte)'"')
                    {
                        sb.Append('\\');
                    }
                    sb.Append((char)c);
                }
                return sb.Append('"').ToString();
            }
            default:
                return "0x" + Convert.ToHexStringLower(data);
        }
    }

    private static readonly string[] Keywords =
    [
        "exists", "absent", "and", "or", "always", "never", "true", "false", "identifier", "anchor", "apple", "generic",
        "certificate", "cert", "info", "entitlement", "cdhash", "platform", "notarized", "legacy", "trusted", "leaf", "root",
    ];

    private static bool IsKeyword(ReadOnlySpan<byte> data)
    {
        foreach (var k in Keywords)
        {
            if (data.SequenceEqual(Encoding.ASCII.GetBytes(k)))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Decodes the body (no tag, no length) of a DER OBJECT IDENTIFIER; null when malformed.</summary>
    public static string? TryDecodeOid(ReadOnlySpan<byte> body)
    {
        if (body.Length == 0 || body.Length > 1024)
        {
            return null;
        }
        var der = new byte[body.Length + 4];
        der[0] = 0x06;
        int header;
        if (body.Length < 0x80)
        {
            der[1] = (byte)body.Length;
            header = 2;
        }
        else if (body.Length <= 0xff)
        {
            der[1] = 0x81;
            der[2] = (byte)body.Length;
            header = 3;
        }
        else
        {
            der[1] = 0x82;
            BinaryPrimitives.WriteUInt16BigEndian(der.AsSpan(2), (ushort)body.Length);
            header = 4;
        }
        body.CopyTo(der.AsSpan(header));
        try
        {
            var oid = AsnDecoder.ReadObjectIdentifier(der.AsSpan(0, header + body.Length), AsnEncodingRules.DER, out var consumed);
            return consumed == header + body.Length ? oid : null;
        }
        catch (AsnContentException)
        {
            return null;
        }
    }

    /// <summary>The DER body of the dotted OID <paramref name="dotted"/>.</summary>
    public static byte[] EncodeOid(string dotted)
    {
        var w = new AsnWriter(AsnEncodingRules.DER);
        w.WriteObjectIdentifier(dotted);
        var der = w.Encode();
        AsnDecoder.ReadEncodedValue(der, AsnEncodingRules.DER, out var contentOffset, out var contentLength, out _);
        return der.AsSpan(contentOffset, contentLength).ToArray();
    }
}

using System.Globalization;
using System.Text;

namespace KextTrust.Formats.PropertyLists;

/// <summary>Writes Apple's XML layout: declaration, DOCTYPE, <c>&lt;plist version="1.0"&gt;</c>, tab indentation.</summary>
internal static class XmlPropertyListWriter
{
    private const int Base64LineLength = 76;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static byte[] Write(PlistNode root)
    {
        ArgumentNullException.ThrowIfNull(root);
        var sb = new StringBuilder();
        sb.Append("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        sb.Append("<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n");
        sb.Append("<plist version=\"1.0\">\n");
        WriteValue(sb, root, 0);
        sb.Append("</plist>\n");
        try
        {
            return StrictUtf8.GetBytes(sb.ToString());
        }
        catch (EncoderFallbackException e)
        {
            throw new ArgumentException("a string holds an unpaired surrogate, which UTF-8 cannot encode", nameof(root), e);
        }
    }

    private static void Indent(StringBuilder sb, int depth) => sb.Append('\t', depth);

    private static void WriteValue(StringBuilder sb, PlistNode node, int depth)
    {
        Indent(sb, depth);
        switch (node)
        {
            case PlistDictionary d when d.Count == 0:
                sb.Append("<dict/>\n");
                break;
            case PlistDictionary d:
                sb.Append("<dict>\n");
                foreach (var (key, value) in d.Entries)
                {
                    Indent(sb, depth + 1);
                    sb.Append("<key>");
                    Escape(sb, key);
                    sb.Append("</key>\n");
                    WriteValue(sb, value, depth + 1);
                }
                Indent(sb, depth);
                sb.Append("</dict>\n");
                break;
            case PlistArray a when a.Count == 0:
                sb.Append("<array/>\n");
                break;
            case PlistArray a:
                sb.Append("<array>\n");
                foreach (var item in a.Items)
                {
                    WriteValue(sb, item, depth + 1);
                }
                Indent(sb, depth);
                sb.Append("</array>\n");
                break;
            case PlistString s:
                sb.Append("<string>");
                Escape(sb, s.Value);
                sb.Append("</string>\n");
                break;
            case PlistInteger i:
                sb.Append("<integer>").Append(i.Value.ToString(CultureInfo.InvariantCulture)).Append("</integer>\n");
                break;
            case PlistReal r:
                sb.Append("<real>").Append(FormatReal(r.Value)).Append("</real>\n");
                break;
            case PlistBoolean b:
                sb.Append(b.Value ? "<true/>\n" : "<false/>\n");
                break;
            case PlistDate dt:
                sb.Append("<date>").Append(dt.ToString()).Append("</date>\n");
                break;
            case PlistData data:
                WriteData(sb, data, depth);
                break;
            case PlistUid u:
                sb.Append("<dict>\n");
                Indent(sb, depth + 1);
                sb.Append("<key>").Append(PlistUid.XmlKey).Append("</key>\n");
                Indent(sb, depth + 1);
                sb.Append("<integer>").Append(u.Value.ToString(CultureInfo.InvariantCulture)).Append("</integer>\n");
                Indent(sb, depth);
                sb.Append("</dict>\n");
                break;
            default:
                throw new ArgumentException($"unknown node type {node.GetType()}", nameof(node));
        }
    }

    internal static string FormatReal(double value) =>
        double.IsNaN(value) ? "nan"
        : double.IsPositiveInfinity(value) ? "+infinity"
        : double.IsNegativeInfinity(value) ? "-infinity"
        : value.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>Base64 lines of at most 76 columns, counting each tab of indentation as 8, like CoreFoundation.</summary>
    private static void WriteData(StringBuilder sb, PlistData data, int depth)
    {
        sb.Append("<data>\n");
        var encoded = Convert.ToBase64String(data.Span);
        var width = Math.Max(16, (Base64LineLength - (8 * depth)) / 4 * 4);
        for (var i = 0; i < encoded.Length; i += width)
        {
            Indent(sb, depth);
            sb.Append(encoded, i, Math.Min(width, encoded.Length - i)).Append('\n');
        }
        Indent(sb, depth);
        sb.Append("</data>\n");
    }

    private static void Escape(StringBuilder sb, string text)
    {
        foreach (var c in text)
        {
            switch (c)
            {
                case '&':
                    sb.Append("&amp;");
                    break;
                case '<':
                    sb.Append("&lt;");
                    break;
                case '>':
                    sb.Append("&gt;");
                    break;
                case '\t' or '\n':
                    sb.Append(c);
                    break;
                case < ' ' or '\u007F':
                    sb.Append("&#").Append(((int)c).ToString(CultureInfo.InvariantCulture)).Append(';');
                    break;
                default:
                    sb.Append(c);
                    break;
            }
        }
    }
}

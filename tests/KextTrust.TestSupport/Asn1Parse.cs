using System.Text.RegularExpressions;

namespace KextTrust.TestSupport;

/// <summary>
/// <c>openssl asn1parse -inform DER</c> as an independent DER reader: each element as one line of
/// (offset, depth, kind, value), e.g. <c>(17, 2, "priv [ 1296125506 ]", null)</c> or <c>(30, 4, "IA5STRING", "MANB")</c>.
/// </summary>
public static partial class Asn1Parse
{
    public sealed record Element(long Offset, int Depth, string Kind, string? Value)
    {
        /// <summary>"KIND" or "KIND:value" (OCTET STRING contents left out): a compact line for shape comparisons.</summary>
        public string Shape => Value is null || Kind.StartsWith("OCTET STRING", StringComparison.Ordinal) ? Kind : $"{Kind}:{Value}";
    }

    /// <summary>Runs openssl asn1parse over the DER bytes; fails the test when openssl refuses them.</summary>
    public static IReadOnlyList<Element> Run(byte[] der)
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(file, der);
            return RunFile(file);
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>Runs openssl asn1parse over a DER file.</summary>
    public static IReadOnlyList<Element> RunFile(string path)
    {
        var r = ExternalTool.Run(ExternalTool.OpenSsl, "asn1parse", "-inform", "DER", "-in", path);
        if (r.ExitCode != 0)
        {
            throw new InvalidOperationException($"openssl asn1parse refused {path}: {r.StdErr}");
        }
        return [.. r.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line =>
        {
            var m = Line().Match(line);
            if (!m.Success)
            {
                throw new InvalidOperationException($"unexpected asn1parse line: {line}");
            }
            var kind = m.Groups["kind"].Value.Trim();
            if (kind.StartsWith("OCTET STRING", StringComparison.Ordinal))
            {
                kind = "OCTET STRING";
            }
            return new Element(long.Parse(m.Groups["offset"].Value), int.Parse(m.Groups["depth"].Value), kind,
                m.Groups["value"].Success ? m.Groups["value"].Value : null);
        })];
    }

    [GeneratedRegex(@"^\s*(?<offset>\d+):d=(?<depth>\d+)\s+hl=\s*\d+\s+l=\s*\d+\s+(?:cons|prim):\s+(?<kind>[^:]+?)\s*(?::(?<value>.*))?$")]
    private static partial Regex Line();
}

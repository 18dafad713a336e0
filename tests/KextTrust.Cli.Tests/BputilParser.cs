using System.Text.RegularExpressions;

namespace KextTrust.Cli.Tests;

/// <summary>
/// Reads `bputil -d` output as fleetdm's osquery table parses Apple's (apple_silicon_security_policy): rows only after a
/// "… for volume group UUID:" line, each split on ": " into two columns ("Name (4CC): value") or three ("Name: Mode
/// (4CC): value"), the name with spaces turned into underscores. A re-statement of that parser's rules for the tests,
/// so the layout is held to what scripts written for the real tool expect.
/// </summary>
internal static partial class BputilParser
{
    public static Dictionary<string, (string Mode, string Code, string Value)> Parse(string output)
    {
        var rows = new Dictionary<string, (string, string, string)>();
        string? group = null;
        foreach (var line in output.Split('\n'))
        {
            var g = VolumeGroup().Match(line);
            if (g.Success)
            {
                group = g.Groups[1].Value.Trim();
                continue;
            }
            if (group is null)
            {
                continue;
            }
            var kv = line.Split(": ", 3);
            string property, mode = "", code = "", value;
            if (kv.Length == 2)
            {
                var m = FourCharCode().Match(kv[0]);
                (property, code) = m.Success ? (m.Groups[1].Value, m.Groups[2].Value) : (kv[0], "");
                value = kv[1];
            }
            else if (kv.Length == 3)
            {
                var m = FourCharCode().Match(kv[1]);
                if (!m.Success)
                {
                    continue;
                }
                (property, mode, code, value) = (kv[0], m.Groups[1].Value, m.Groups[2].Value, kv[2]);
            }
            else
            {
                continue;
            }
            rows[property.Trim().Replace(' ', '_')] = (mode.Trim(), code, value.Trim());
        }
        return rows;
    }

    [GeneratedRegex(@"^.* for volume group (.*):")]
    private static partial Regex VolumeGroup();

    [GeneratedRegex(@"^(.*)\s+\((.{4})\)")]
    private static partial Regex FourCharCode();
}

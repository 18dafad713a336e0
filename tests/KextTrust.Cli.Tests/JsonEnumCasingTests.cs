using System.Text.Json;
using System.Text.RegularExpressions;

namespace KextTrust.Cli.Tests;

/// <summary>
/// One casing for enum values in all JSON: every <c>--json</c> command run on the demo's Mac writes each enum-valued
/// field (codes, modes, reasons, kinds, outcomes, consent sources, error codes, trace steps) in kebab-case, never as
/// the PascalCase enum name.
/// </summary>
public sealed partial class JsonEnumCasingTests
{
    private const string Admin = "admin";
    private const string Password = "correct horse battery staple";

    /// <summary>Fields whose string value is always an enum value, wherever they appear in a document.</summary>
    private static readonly HashSet<string> EnumFields =
    [
        "code", "securityMode", "consent", "consentSource", "reason", "designatedRequirementOutcome", "fileType", "platform",
        "runningOS", "check", "kind", "sip", "action", "mdm", "status", "change", "installedBy", "step", "outcome",
    ];

    /// <summary>Fields that hold sentences in some documents (why's <c>reason</c>, demo's <c>outcome</c>): not checked there.</summary>
    private static readonly HashSet<string> FreeTextIn = ["why:reason", "demo:outcome"];

    [GeneratedRegex("^[a-z0-9]+(-[a-z0-9]+)*$")]
    private static partial Regex Kebab();

    [Fact]
    public void Every_json_command_on_the_demo_mac_writes_enum_values_in_kebab_case()
    {
        var dir = Path.Combine(Path.GetTempPath(), "kextrust-casing-" + Guid.NewGuid().ToString("N")[..10]);
        try
        {
            var demo = CliRunner.Run("demo", "--keep", dir, "--json");
            Assert.True(demo.ExitCode == 0, demo.StdErr);
            var mac = Path.Combine(dir, "mac");
            var kexts = Directory.GetDirectories(Path.Combine(dir, "kexts"), "*.kext").Order(StringComparer.Ordinal).ToArray();
            Assert.NotEmpty(kexts);
            var traceLines = 0;
            var checkedValues = 0;

            void Check(string name, params string[] args)
            {
                var r = CliRunner.Run([.. args, "--json"]);
                Assert.True(r.StdOut.Length > 0, $"{name}: no JSON (exit {r.ExitCode}): {r.StdErr}");
                using var doc = JsonDocument.Parse(r.StdOut);
                Walk(name, doc.RootElement, "$");
            }

            void Walk(string command, JsonElement e, string path)
            {
                switch (e.ValueKind)
                {
                    case JsonValueKind.Object:
                        foreach (var p in e.EnumerateObject())
                        {
                            var at = $"{path}.{p.Name}";
                            if (p.Value.ValueKind == JsonValueKind.String && EnumFields.Contains(p.Name) && !FreeTextIn.Contains($"{command.Split(' ')[0]}:{p.Name}"))
                            {
                                Assert.True(Kebab().IsMatch(p.Value.GetString()!), $"{command} {at}: \"{p.Value.GetString()}\" is not kebab-case");
                                checkedValues++;
                            }
                            else if (p.Name == "verificationFailures" && p.Value.ValueKind == JsonValueKind.Array)
                            {
                                // "code: detail".
                                foreach (var line in p.Value.EnumerateArray().Select(l => l.GetString()!))
                                {
                                    Assert.True(Kebab().IsMatch(line.Split(": ")[0]), $"{command} {at}: \"{line}\"");
                                }
                            }
                            else if (p.Name is "trace" or "steps" && p.Value.ValueKind == JsonValueKind.Array
                                     && p.Value.EnumerateArray().All(c => c.ValueKind == JsonValueKind.Object && c.TryGetProperty("step", out _)))
                            {
                                // The one trace record: step, outcome and code are enum values, walked as such.
                                traceLines += p.Value.GetArrayLength();
                                Walk(command, p.Value, at);
                            }
                            else
                            {
                                Walk(command, p.Value, at);
                            }
                        }
                        break;
                    case JsonValueKind.Array:
                        var i = 0;
                        foreach (var item in e.EnumerateArray())
                        {
                            Walk(command, item, $"{path}[{i++}]");
                        }
                        break;
                }
            }

            // The demo left the Mac refusing its edited UAKL: refusal, excluded kexts, receipt consent, Apple Pay reason.
            Check("startup", "startup", "--machine", mac);
            Check("kmutil showloaded", "kmutil", "showloaded", "--machine", mac);
            Check("kmutil inspect", "kmutil", "inspect", "--machine", mac);
            Check("bputil -d", "bputil", "-d", "--machine", mac);
            Check("bputil -g (refused)", "bputil", "-g", "-u", Admin, "-p", Password, "--machine", mac);
            Check("csrutil status", "csrutil", "status", "--machine", mac);
            Check("applepay status", "applepay", "status", "--machine", mac);
            Check("machine show", "machine", "show", "--machine", mac);
            Check("kmutil create (refused)", "kmutil", "create", "-u", Admin, "-p", "wrong", "--machine", mac);
            Check("kmutil create", "kmutil", "create", "-u", Admin, "-p", Password, "--machine", mac);
            Check("startup", "startup", "--machine", mac);
            Check("applepay status", "applepay", "status", "--machine", mac);
            foreach (var kext in kexts)
            {
                Check("why", "why", kext, "--machine", mac);
                Check("verify", "verify", kext);
                Check("inspect", "inspect", kext);
            }
            Check("demo", "demo");

            Assert.True(traceLines > 10, $"{traceLines} kebab-case trace lines");
            Assert.True(checkedValues > 100, $"{checkedValues} enum values checked");
        }
        finally
        {
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }
        }
    }
}

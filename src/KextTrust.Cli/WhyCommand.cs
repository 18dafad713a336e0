using System.CommandLine;
using KextTrust.Boot.SecureBoot;
using KextTrust.Consent.Policy;
using KextTrust.Kexts.Trust;
using Spectre.Console;

namespace KextTrust.Cli;

/// <summary>
/// The signature verdict as <c>kextrust why --json</c> writes it: kind, signer, cdhash, a one-line detail, and when the
/// signature would be refused under SIP the verifier's stable problem code and code page (the codes <c>verify</c> prints).
/// </summary>
internal sealed record WhySignatureJson(string Kind, string? TeamId, string? DeveloperName, string? CdHash, string Detail, string? Problem, int? Page);

/// <summary><c>kextrust why --json</c>.</summary>
internal sealed record WhyJson(
    string BundleId,
    string Version,
    string Path,
    bool Allowed,
    string? Code,
    int? KmErrorCode,
    string Reason,
    string ConsentSource,
    WhySignatureJson Signature,
    IReadOnlyList<TrustCheckJson> Steps);

/// <summary><c>kextrust why KEXT|BUNDLE_ID [--json]</c>: the load decision with every check in order.</summary>
internal static class WhyCommand
{
    /// <summary>Adds <c>why</c> to <paramref name="root"/>.</summary>
    public static void Register(RootCommand root, CliOutput output)
    {
        var kext = new Argument<string>("KEXT|BUNDLE_ID") { Description = "A kext folder, or the bundle id of a kext installed in /Library/Extensions." };
        var machineOpt = MachineOption.Create();
        var json = new Option<bool>("--json") { Description = "Write JSON instead of a table." };
        var cmd = new Command("why", "Explain whether a kext may load on this Mac and by which rule: exclude list, architecture, ownership and permissions, signature under SIP, staging, consent source, deprecated KPIs, each with its evidence. Exit 0 allowed, 1 blocked.")
        {
            kext, machineOpt, json,
        };
        cmd.SetAction(r => MachineOption.Run(output, r.GetValue(json), () =>
        {
            using var mac = MachineOption.Open(r.GetValue(machineOpt)!);
            var d = mac.Why(r.GetValue(kext)!);
            var j = ToJson(d);
            if (r.GetValue(json))
            {
                output.WriteJson(j);
            }
            else
            {
                Write(output, j);
            }
            return d.Allowed ? ExitCodes.Ok : ExitCodes.Failed;
        }));
        root.Subcommands.Add(cmd);
    }

    /// <summary>The consent source as a stable kebab-case name ("user", "mdm", "spctl", "grandfathered", …).</summary>
    public static string SourceName(ConsentSource s) => MachineOption.Kebab(s);


    /// <summary>The JSON shape of a decision.</summary>
    public static WhyJson ToJson(KextDecision d) => new(d.BundleId, d.Version, d.Path, d.Allowed, d.Code?.Name(), d.Code?.KMErrorCode(), d.Reason,
        SourceName(d.ConsentSource),
        new WhySignatureJson(ConsentSignature.Kind(d.Signature), d.Signature.TeamId, d.Signature.Signer, d.Signature.PrimaryCdHash, d.Signature.Summary,
            d.Signature.Refusal?.Code, d.Signature.Refusal?.Page),
        d.Steps.Select(TrustCheckJson.From).ToArray());

    private static void Write(CliOutput output, WhyJson d)
    {
        output.Out.WriteLine($"{d.BundleId} {d.Version} ({d.Path})");
        var table = new Table().Border(TableBorder.Rounded);
        table.AddColumn(new TableColumn("#").RightAligned());
        table.AddColumn("check");
        table.AddColumn("outcome");
        table.AddColumn("code");
        table.AddColumn("detail");
        table.AddColumn("evidence");
        var n = 0;
        foreach (var s in d.Steps)
        {
            var outcome = s.Outcome switch
            {
                "passed" => "[green]pass[/]",
                "failed" => "[red]FAIL[/]",
                "warning" => "[yellow]warning[/]",
                _ => "[yellow]not enforced[/]",
            };
            var evidence = string.Join("\n", s.Evidence.Where(e => e.Value.Length > 0).Select(e => $"{e.Key}={e.Value}"));
            table.AddRow((++n).ToString(System.Globalization.CultureInfo.InvariantCulture), s.Step, outcome,
                TrustCheckJson.CodeText(s.Code, s.KmErrorCode), Markup.Escape(s.Detail), Markup.Escape(evidence));
        }
        output.Console.Write(table);
        output.Out.WriteLine(d.Allowed
            ? $"allowed: consent source {d.ConsentSource}"
            : $"{d.Reason} (code {TrustCheckJson.CodeText(d.Code, d.KmErrorCode)})");
    }
}

using System.CommandLine;
using KextTrust.Boot.SecureBoot;
using KextTrust.Consent;
using KextTrust.Consent.Policy;
using KextTrust.Kexts.Signing;
using Spectre.Console;

using KextTrust.Kexts.Trust;

namespace KextTrust.Cli;

/// <summary>One kext as <c>kextrust install --json</c> writes it.</summary>
internal sealed record InstallItemJson(
    string BundleId,
    string Version,
    string InstalledPath,
    bool Staged,
    bool Replaced,
    bool AlertShown,
    string? AlertTime,
    string? ApprovalDeadline,
    string Signature,
    string TeamId,
    string? DeveloperName,
    bool Allowed,
    string? Code,
    int? KmErrorCode,
    string Reason,
    string ConsentSource,
    string? SignatureProblem,
    int? SignaturePage);

/// <summary><c>kextrust approve --json</c>: the team approved ('' for an unsigned kext), the kexts it allowed, who and when.</summary>
internal sealed record ApprovalJson(string TeamId, IReadOnlyList<string> BundleIds, string User, string Time);

/// <summary><c>kextrust install KEXT…</c> and <c>kextrust approve</c>: the load request, its alert, and the "Allow" button.</summary>
internal static class ApprovalCommands
{
    /// <summary>The environment variable <c>approve</c> reads the password from when <c>--password</c> is not given.</summary>
    public const string PasswordVariable = "KEXTRUST_PASSWORD";

    /// <summary>Adds <c>install</c> and <c>approve</c> to <paramref name="root"/>.</summary>
    public static void Register(RootCommand root, CliOutput output)
    {
        root.Subcommands.Add(Install(output));
        root.Subcommands.Add(Approve(output));
    }

    // ------------------------------------------------------------------ install

    private static Command Install(CliOutput output)
    {
        var kexts = new Argument<string[]>("KEXT") { Description = "Kext bundles to install.", Arity = ArgumentArity.OneOrMore };
        var machineOpt = MachineOption.Create();
        var json = new Option<bool>("--json") { Description = "Write JSON instead of a table." };
        var cmd = new Command("install", "Install kexts into /Library/Extensions as an installer does: stage them (signature per SIP, ownership and permissions), record the load request, and show the \"System Extension Blocked\" alert when consent is missing.")
        {
            kexts, machineOpt, json,
        };
        cmd.SetAction(r => MachineOption.Run(output, r.GetValue(json), () =>
        {
            using var mac = MachineOption.Open(r.GetValue(machineOpt)!);
            var results = mac.Install(r.GetValue(kexts)!);
            var items = results.Select(x => Item(x, mac.Why(x.BundleId))).ToArray();
            if (r.GetValue(json))
            {
                output.WriteJson(items);
                return ExitCodes.Ok;
            }
            var table = new Table().Border(TableBorder.Rounded);
            table.AddColumn("kext");
            table.AddColumn("version");
            table.AddColumn("installed");
            table.AddColumn("staged");
            table.AddColumn("signature");
            table.AddColumn("decision");
            foreach (var i in items)
            {
                table.AddRow(Markup.Escape(i.BundleId), Markup.Escape(i.Version), Markup.Escape(i.InstalledPath + (i.Replaced ? " (replaced)" : "")),
                    i.Staged ? "yes" : "no", Markup.Escape(i.Signature + (i.TeamId.Length > 0 ? " " + i.TeamId : "")),
                    i.Allowed ? "[green]allowed[/]" : "[red]blocked[/]");
            }
            output.Console.Write(table);
            foreach (var i in items)
            {
                if (i.AlertShown)
                {
                    var what = i.TeamId.Length > 0 ? $"a new system extension signed by \"{i.DeveloperName ?? i.TeamId}\" (team {i.TeamId})" : "a new unsigned system extension";
                    var how = i.TeamId.Length > 0 ? $"--team {i.TeamId}" : $"--bundle {i.BundleId}";
                    output.Out.WriteLine($"{i.BundleId}: System Extension Blocked: a program tried to load {what}.");
                    output.Out.WriteLine($"  Allow it in System Settings › Privacy & Security until {i.ApprovalDeadline} (kextrust approve {how} --user NAME).");
                }
                else if (i.Allowed)
                {
                    output.Out.WriteLine($"{i.BundleId}: allowed by {i.ConsentSource}: {i.Reason}");
                }
                else
                {
                    output.Out.WriteLine($"{i.BundleId}: {i.Reason} (code {TrustCheckJson.CodeText(i.Code, i.KmErrorCode)})");
                }
            }
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static InstallItemJson Item(InstallResult r, KextDecision d)
    {
        var consentRule = d.Steps.FirstOrDefault(s => s.Step == TrustStep.Consent)?.Detail ?? d.Reason;
        return new InstallItemJson(r.BundleId, r.Version, r.InstalledPath, r.Staged, r.Replaced, r.AlertShown,
            r.AlertTime is { } t ? MachineOption.Time(t) : null, r.AlertTime is { } t2 ? MachineOption.Time(t2 + SystemPolicy.ApprovalWindow) : null,
            SignatureName(r.Signature), r.Signature.VerifiedTeamId ?? "", r.DeveloperName, d.Allowed, d.Code?.Name(), d.Code?.KMErrorCode(),
            d.Allowed ? consentRule : d.Reason, WhyCommand.SourceName(d.ConsentSource), r.Signature.Refusal?.Code, r.Signature.Refusal?.Page);
    }

    /// <summary>The signature kind as people say it.</summary>
    public static string SignatureName(KextSignatureVerification signature) => ConsentSignature.Kind(signature) switch
    {
        "developer-id" => "Developer ID",
        var kind => kind,
    };

    // ------------------------------------------------------------------ approve

    private static Command Approve(CliOutput output)
    {
        var machineOpt = MachineOption.Create();
        var team = new Option<string?>("--team") { Description = "Allow every blocked kext of this team (approval is per team id).", HelpName = "TEAMID" };
        var bundle = new Option<string?>("--bundle") { Description = "Allow the blocked kext with this bundle id (and, if signed, its whole team); unsigned kexts are approved this way.", HelpName = "ID" };
        var user = new Option<string>("--user") { Description = "The account pressing \"Allow\" (an administrator on macOS 11 and later unless MDM sets AllowNonAdminUserApprovals).", Required = true, HelpName = "NAME" };
        var password = new Option<string?>("--password") { Description = $"The account's password; if not given, read from ${PasswordVariable}. Never printed or stored.", HelpName = "PW" };
        var json = new Option<bool>("--json") { Description = "Write the approval (or the error) as JSON." };
        var cmd = new Command("approve", "The \"Allow\" button in System Settings › Privacy & Security: only after a \"System Extension Blocked\" alert and within 30 minutes of it by the machine clock.")
        {
            machineOpt, team, bundle, user, password, json,
        };
        cmd.SetAction(r =>
        {
            var asJson = r.GetValue(json);
            return MachineOption.Run(output, asJson, () =>
            {
                var t = r.GetValue(team);
                var b = r.GetValue(bundle);
                if ((t is null) == (b is null))
                {
                    return BootCommands.Usage(output, asJson, "give exactly one of --team TEAMID or --bundle ID");
                }
                var pw = r.GetValue(password) ?? Environment.GetEnvironmentVariable(PasswordVariable);
                if (pw is null)
                {
                    return BootCommands.Usage(output, asJson, $"no password: give --password or set ${PasswordVariable}");
                }
                using var mac = MachineOption.Open(r.GetValue(machineOpt)!);
                var a = mac.Approve(t, b, r.GetValue(user)!, pw);
                if (asJson)
                {
                    output.WriteJson(new ApprovalJson(a.TeamId, a.BundleIds, a.User, MachineOption.Time(a.Time)));
                    return ExitCodes.Ok;
                }
                var what = a.TeamId.Length > 0 ? $"team {a.TeamId}" : "unsigned kext";
                output.Out.WriteLine($"approved {what} by {a.User} at {MachineOption.Time(a.Time)}: {string.Join(", ", a.BundleIds)}");
                return ExitCodes.Ok;
            });
        });
        return cmd;
    }
}

using System.CommandLine;
using KextTrust.Boot.SecureBoot;
using KextTrust.Consent;

namespace KextTrust.Cli;

/// <summary>
/// <c>kextrust spctl kext-consent status|enable|disable|add TEAMID|remove TEAMID|list</c>: the NVRAM consent
/// settings. Reading works anywhere; changes only from recoveryOS (<c>kextrust startup --recovery</c>).
/// </summary>
internal static class SpctlCommand
{
    private static Option<bool> Json() => new("--json") { Description = "Write one JSON object instead of spctl's text." };

    /// <summary>Adds <c>spctl</c> to <paramref name="root"/>.</summary>
    public static void Register(RootCommand root, CliOutput output)
    {
        var consent = new Command("kext-consent", "User consent for kexts, kept in NVRAM: turn it on or off, or allow whole teams without consent. Changes only from recoveryOS.")
        {
            Simple(output, "status", "Show whether user consent is required: \"Kernel Extension User Consent: ENABLED\" (or DISABLED), as spctl prints it.", mac => mac.ReadNvram(), n => WriteStatus(output, n)),
            Simple(output, "enable", "Require user consent (recoveryOS only).", mac => mac.SpctlSetEnabled(true), n => WriteStatus(output, n)),
            Simple(output, "disable", "Load kexts without user consent (recoveryOS only).", mac => mac.SpctlSetEnabled(false), n => WriteStatus(output, n)),
            Team(output, "add", "Allow a team's kexts to load without user consent (recoveryOS only).", add: true),
            Team(output, "remove", "Remove a team from the allowed list (recoveryOS only).", add: false),
            Simple(output, "list", "List the teams allowed without user consent: \"Allowed Team Identifiers:\" then one per line, as spctl prints it.", mac => mac.ReadNvram(), n => WriteList(output, n)),
        };
        root.Subcommands.Add(new Command("spctl", "The macOS security-policy tool; here only its kext-consent commands.") { consent });
    }

    private static Command Simple(CliOutput output, string name, string description, Func<Mac, KextConsentNvram> action, Action<KextConsentNvram> text)
    {
        var machineOpt = MachineOption.Create();
        var json = Json();
        var cmd = new Command(name, description) { machineOpt, json };
        cmd.SetAction(r => MachineOption.Run(output, r.GetValue(json), () =>
        {
            using var mac = MachineOption.Open(r.GetValue(machineOpt)!);
            var n = action(mac);
            if (r.GetValue(json))
            {
                output.WriteJson(SpctlJson.From(name, n));
            }
            else
            {
                text(n);
            }
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static Command Team(CliOutput output, string name, string description, bool add)
    {
        var team = new Argument<string>("TEAMID") { Description = "A team identifier, e.g. ABCDE12345." };
        var machineOpt = MachineOption.Create();
        var json = Json();
        var cmd = new Command(name, description) { team, machineOpt, json };
        cmd.SetAction(r => MachineOption.Run(output, r.GetValue(json), () =>
        {
            using var mac = MachineOption.Open(r.GetValue(machineOpt)!);
            var id = r.GetValue(team)!;
            var n = mac.SpctlTeam(id, add);
            if (r.GetValue(json))
            {
                output.WriteJson(SpctlJson.From(name, n));
                return ExitCodes.Ok;
            }
            output.Out.WriteLine(add ? $"added team {id}" : $"removed team {id}");
            WriteList(output, n);
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static void WriteStatus(CliOutput output, KextConsentNvram n) =>
        output.Out.WriteLine($"Kernel Extension User Consent: {(n.ConsentEnabled ? "ENABLED" : "DISABLED")}");

    private static void WriteList(CliOutput output, KextConsentNvram n)
    {
        output.Out.WriteLine("Allowed Team Identifiers:");
        foreach (var t in n.Teams)
        {
            output.Out.WriteLine(t);
        }
    }
}

/// <summary><c>spctl kext-consent … --json</c>.</summary>
internal sealed record SpctlJson(string Action, bool UserConsentEnabled, IReadOnlyList<string> AllowedTeamIdentifiers)
{
    /// <summary>The JSON form of the NVRAM state after <paramref name="action"/>.</summary>
    public static SpctlJson From(string action, KextConsentNvram n)
    {
        ArgumentNullException.ThrowIfNull(n);
        return new(action, n.ConsentEnabled, n.Teams);
    }
}

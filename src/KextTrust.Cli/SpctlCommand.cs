using System.CommandLine;
using KextTrust.Boot.SecureBoot;
using KextTrust.Consent;

namespace KextTrust.Cli;

/// <summary>
/// <c>kextrust spctl kext-consent status|enable|disable|add TEAMID|remove TEAMID|list</c>: the NVRAM consent
/// settings. Reading works anywhere; changes only from recoveryOS (<c>kextrust startup --recovery</c>).
/// </summary>
public static class SpctlCommand
{
    /// <summary>Adds <c>spctl</c> to <paramref name="root"/>.</summary>
    public static void Register(RootCommand root, CliOutput output)
    {
        var consent = new Command("kext-consent", "User consent for kexts, kept in NVRAM: turn it on or off, or allow whole teams without consent. Changes only from recoveryOS.")
        {
            Simple(output, "status", "Show whether user consent is required.", (mac, _) => WriteStatus(output, mac.ReadNvram())),
            Simple(output, "enable", "Require user consent (recoveryOS only).", (mac, _) => WriteStatus(output, mac.SpctlSetEnabled(true))),
            Simple(output, "disable", "Load kexts without user consent (recoveryOS only).", (mac, _) => WriteStatus(output, mac.SpctlSetEnabled(false))),
            Team(output, "add", "Allow a team's kexts to load without user consent (recoveryOS only).", add: true),
            Team(output, "remove", "Remove a team from the allowed list (recoveryOS only).", add: false),
            Simple(output, "list", "List the teams allowed without user consent.", (mac, _) => WriteList(output, mac.ReadNvram())),
        };
        root.Subcommands.Add(new Command("spctl", "The macOS security-policy tool; here only its kext-consent commands.") { consent });
    }

    private static Command Simple(CliOutput output, string name, string description, Action<Mac, string?> action)
    {
        var machineOpt = MachineOption.Create();
        var cmd = new Command(name, description) { machineOpt };
        cmd.SetAction(r => MachineOption.Run(output, () =>
        {
            using var mac = MachineOption.Open(r.GetValue(machineOpt)!);
            action(mac, null);
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static Command Team(CliOutput output, string name, string description, bool add)
    {
        var team = new Argument<string>("TEAMID") { Description = "A team identifier, e.g. ABCDE12345." };
        var machineOpt = MachineOption.Create();
        var cmd = new Command(name, description) { team, machineOpt };
        cmd.SetAction(r => MachineOption.Run(output, () =>
        {
            using var mac = MachineOption.Open(r.GetValue(machineOpt)!);
            var id = r.GetValue(team)!;
            var n = mac.SpctlTeam(id, add);
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

using System.CommandLine;
using KextTrust.Boot.SecureBoot;
using KextTrust.Consent;
using KextTrust.Consent.Mdm;
using Spectre.Console;

namespace KextTrust.Cli;

/// <summary>
/// <c>kextrust mdm push FILE</c> (delivery by the MDM server) and <c>kextrust profiles install|list</c> (the
/// macOS <c>profiles</c> tool, which refuses the kernel-extension-policy payload as macOS does).
/// </summary>
public static class MdmCommands
{
    /// <summary>Adds <c>mdm</c> and <c>profiles</c> to <paramref name="root"/>.</summary>
    public static void Register(RootCommand root, CliOutput output)
    {
        var push = ProfileCommand(output, "push", "Deliver a .mobileconfig profile (XML plist or CMS-signed) over MDM. Needs MDM enrollment; kernel-extension-policy payloads need macOS 10.13.2 or later. Rows land in kext_policy_mdm with their payload UUID.",
            (mac, file) => mac.PushProfile(file));
        root.Subcommands.Add(new Command("mdm", "What an MDM server does to the Mac.") { push });

        var install = ProfileCommand(output, "install", $"Install a .mobileconfig profile by hand, as `profiles install` does. A {MdmProfile.KernelExtensionPolicyType} payload is refused: only MDM may deliver it.",
            (mac, file) => mac.InstallProfileManually(file));
        root.Subcommands.Add(new Command("profiles", "Configuration profiles installed on the Mac.") { install, List(output) });
    }

    private static Command ProfileCommand(CliOutput output, string name, string description, Func<Mac, string, ProfileInstallResult> action)
    {
        var file = new Argument<string>("FILE") { Description = "A .mobileconfig profile." };
        var machineOpt = MachineOption.Create();
        var cmd = new Command(name, description) { file, machineOpt };
        cmd.SetAction(r => MachineOption.Run(output, () =>
        {
            using var mac = MachineOption.Open(r.GetValue(machineOpt)!);
            var result = action(mac, r.GetValue(file)!);
            var p = result.Profile;
            output.Out.WriteLine($"installed profile {p.PayloadIdentifier}{(p.DisplayName is { } dn ? $" \"{dn}\"" : "")} ({(p.SignerSubject is { } s ? "signed by " + s : "unsigned")})");
            WritePayloads(output, p);
            var c = result.Combined;
            if (c.Present)
            {
                output.Out.WriteLine($"kext policy now: {c.Allowed.Count} kext_policy_mdm row(s); AllowUserOverrides {YesNo(c.AllowUserOverrides)}; AllowNonAdminUserApprovals {YesNo(c.AllowNonAdminUserApprovals)}");
            }
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static string YesNo(bool b) => b ? "yes" : "no";

    private static string Teams(IReadOnlyList<string> teams) => teams.Count == 0 ? "none" : string.Join(", ", teams);

    private static string Kexts(IReadOnlyDictionary<string, IReadOnlyList<string>> map) => map.Count == 0 ? "none"
        : string.Join("; ", map.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{(kv.Key.Length == 0 ? "'' (unsigned)" : kv.Key)}: {string.Join(", ", kv.Value)}"));

    private static void WritePayloads(CliOutput output, MdmProfile p)
    {
        foreach (var k in p.KernelExtensionPolicies)
        {
            output.Out.WriteLine($"  {MdmProfile.KernelExtensionPolicyType} {k.PayloadUuid}: teams {Teams(k.AllowedTeamIdentifiers)}; kexts {Kexts(k.AllowedKernelExtensions)}; AllowUserOverrides {YesNo(k.AllowUserOverrides)}; AllowNonAdminUserApprovals {YesNo(k.AllowNonAdminUserApprovals)}");
        }
        foreach (var s in p.SystemExtensionPolicies)
        {
            output.Out.WriteLine($"  {MdmProfile.SystemExtensionPolicyType} {s.PayloadUuid}: teams {Teams(s.AllowedTeamIdentifiers)}; system extensions {Kexts(s.AllowedSystemExtensions)}; types {Kexts(s.AllowedSystemExtensionTypes)}; AllowUserOverrides {YesNo(s.AllowUserOverrides)}");
        }
        foreach (var o in p.OtherPayloadTypes)
        {
            output.Out.WriteLine($"  {o} (not modelled)");
        }
    }

    private static Command List(CliOutput output)
    {
        var machineOpt = MachineOption.Create();
        var json = new Option<bool>("--json") { Description = "Write JSON instead of a table." };
        var cmd = new Command("list", "List installed configuration profiles and their kernel- and system-extension policies.") { machineOpt, json };
        cmd.SetAction(r => MachineOption.Run(output, () =>
        {
            using var mac = MachineOption.Open(r.GetValue(machineOpt)!);
            var profiles = mac.ReadProfiles();
            if (r.GetValue(json))
            {
                output.WriteJson(profiles);
                return ExitCodes.Ok;
            }
            if (profiles.Count == 0)
            {
                output.Out.WriteLine("no configuration profiles installed");
                return ExitCodes.Ok;
            }
            var table = new Table().Border(TableBorder.Rounded);
            table.AddColumn("profile");
            table.AddColumn("name");
            table.AddColumn("signer");
            table.AddColumn("payloads");
            foreach (var p in profiles)
            {
                var payloads = p.KernelExtensionPolicies.Select(k => $"kext policy {k.PayloadUuid}: teams {Teams(k.AllowedTeamIdentifiers)}; kexts {Kexts(k.AllowedKernelExtensions)}")
                    .Concat(p.SystemExtensionPolicies.Select(s => $"system extension policy {s.PayloadUuid}: teams {Teams(s.AllowedTeamIdentifiers)}"))
                    .Concat(p.OtherPayloadTypes);
                table.AddRow(Markup.Escape(p.PayloadIdentifier), Markup.Escape(p.DisplayName ?? ""), Markup.Escape(p.SignerSubject ?? "unsigned"), Markup.Escape(string.Join("\n", payloads)));
            }
            output.Console.Write(table);
            return ExitCodes.Ok;
        }));
        return cmd;
    }
}

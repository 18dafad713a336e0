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
internal static class MdmCommands
{
    /// <summary>Adds <c>mdm</c> and <c>profiles</c> to <paramref name="root"/>.</summary>
    public static void Register(RootCommand root, CliOutput output)
    {
        var push = ProfileCommand(output, "push", "Deliver a .mobileconfig profile (XML plist or CMS-signed) over MDM (InstallProfile). Needs MDM enrollment; kernel-extension-policy payloads need macOS 10.13.2 or later. As on macOS, a profile with the PayloadIdentifier of an installed one replaces it (its kext_policy_mdm rows replaced in one transaction); any other is added beside the installed ones, even when it reuses their payload UUIDs. PayloadUUIDs are opaque strings, kept as written.",
            (mac, file) => mac.PushProfile(file), "FILE", "A .mobileconfig profile.");
        var remove = ProfileCommand(output, "remove", "MDM's RemoveProfile: remove a profile MDM installed, by its PayloadIdentifier. Its kext_policy_mdm rows go in the same transaction; a kext that only this profile allowed needs user approval again.",
            (mac, id) => ConfigurationProfiles.Remove(mac.Consent, id, ProfileChannel.Mdm), "IDENTIFIER", "The profile's top-level PayloadIdentifier.");
        root.Subcommands.Add(new Command("mdm", "What an MDM server does to the Mac, and profiles for it.") { push, remove, KextPolicyProfileCommand.Create(output) });

        var install = ProfileCommand(output, "install", $"Install a .mobileconfig profile by hand, as `profiles install` does. A {MdmProfile.KernelExtensionPolicyType} payload is refused: only MDM may deliver it. A profile MDM installed cannot be replaced by hand.",
            (mac, file) => mac.InstallProfileManually(file), "FILE", "A .mobileconfig profile.");
        var profilesRemove = ProfileCommand(output, "remove", "Remove a profile installed by hand, as `profiles remove -identifier` does (profiles MDM installed can only be removed by MDM).",
            (mac, id) => ConfigurationProfiles.Remove(mac.Consent, id, ProfileChannel.Manual), "IDENTIFIER", "The profile's top-level PayloadIdentifier.");
        root.Subcommands.Add(new Command("profiles", "Configuration profiles installed on the Mac.") { install, profilesRemove, List(output) });
    }

    private static Command ProfileCommand(CliOutput output, string name, string description, Func<Mac, string, ProfileInstallResult> action, string argName, string argDescription)
    {
        var file = new Argument<string>(argName) { Description = argDescription };
        var machineOpt = MachineOption.Create();
        var json = new Option<bool>("--json") { Description = "Write one JSON object instead of text." };
        var cmd = new Command(name, description) { file, machineOpt, json };
        cmd.SetAction(r => MachineOption.Run(output, r.GetValue(json), () =>
        {
            using var mac = MachineOption.Open(r.GetValue(machineOpt)!);
            var result = action(mac, r.GetValue(file)!);
            if (r.GetValue(json))
            {
                output.WriteJson(ProfileChangeJson.From(result));
                return ExitCodes.Ok;
            }
            var p = result.Profile;
            var what = result.Action switch
            {
                ProfileAction.Replaced => $"replaced profile {p.PayloadIdentifier} (PayloadUUID {result.ReplacedProfileUuid} -> {p.PayloadUuid})",
                ProfileAction.Removed => $"removed profile {p.PayloadIdentifier}",
                _ => $"installed profile {p.PayloadIdentifier}",
            };
            output.Out.WriteLine($"{what}{(p.DisplayName is { } dn ? $" \"{dn}\"" : "")} ({(p.SignerSubject is { } s ? "signed by " + s : "unsigned")})");
            if (result.Action != ProfileAction.Removed)
            {
                WritePayloads(output, p);
            }
            foreach (var c in result.Payloads.Where(c => result.Action == ProfileAction.Replaced || c.Change == PayloadChange.Removed))
            {
                output.Out.WriteLine($"  payload {c.PayloadIdentifier} ({c.PayloadType}, {c.PayloadUuid}): {c.Change.ToString().ToLowerInvariant()}");
            }
            if (result.SharesPayloadUuidsWith.Count > 0)
            {
                output.Out.WriteLine($"  note: a payload UUID of this profile is also used by {string.Join(", ", result.SharesPayloadUuidsWith)}; macOS keys profiles on PayloadIdentifier, so both stay installed");
            }
            var c2 = result.Combined;
            output.Out.WriteLine($"kext policy now: {c2.Allowed.Count} kext_policy_mdm row(s); AllowUserOverrides {YesNo(c2.AllowUserOverrides)}; AllowNonAdminUserApprovals {YesNo(c2.AllowNonAdminUserApprovals)}" +
                (result.MdmRowsAdded.Count + result.MdmRowsRemoved.Count > 0 ? $" (added {Join(result.MdmRowsAdded)}; removed {Join(result.MdmRowsRemoved)})" : ""));
            foreach (var k in result.ConsentChanges)
            {
                output.Out.WriteLine(k.NeedsUserApproval
                    ? $"{k.BundleId}: no longer allowed by MDM: needs user approval again"
                    : $"{k.BundleId}: consent source {MachineOption.Kebab(k.Before)} -> {MachineOption.Kebab(k.After)}");
            }
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static string Join(IReadOnlyList<string> rows) => rows.Count == 0 ? "none" : string.Join(", ", rows);

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
        cmd.SetAction(r => MachineOption.Run(output, r.GetValue(json), () =>
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
            table.AddColumn("installed by");
            table.AddColumn("payloads");
            foreach (var installed in ConfigurationProfiles.Read(mac.Consent))
            {
                var p = installed.Profile;
                var payloads = p.KernelExtensionPolicies.Select(k => $"kext policy {k.PayloadUuid}: teams {Teams(k.AllowedTeamIdentifiers)}; kexts {Kexts(k.AllowedKernelExtensions)}")
                    .Concat(p.SystemExtensionPolicies.Select(s => $"system extension policy {s.PayloadUuid}: teams {Teams(s.AllowedTeamIdentifiers)}"))
                    .Concat(p.OtherPayloadTypes);
                table.AddRow(Markup.Escape(p.PayloadIdentifier), Markup.Escape(p.DisplayName ?? ""), Markup.Escape(p.SignerSubject ?? "unsigned"), installed.InstalledBy == ProfileChannel.Mdm ? "MDM" : "hand", Markup.Escape(string.Join("\n", payloads)));
            }
            output.Console.Write(table);
            return ExitCodes.Ok;
        }));
        return cmd;
    }
}

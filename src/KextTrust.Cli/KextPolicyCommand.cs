using System.CommandLine;
using System.Globalization;
using KextTrust.Boot.SecureBoot;
using KextTrust.Consent;
using KextTrust.Consent.Policy;
using KextTrust.Machine;
using Spectre.Console;

namespace KextTrust.Cli;

/// <summary><c>kextrust kextpolicy show --json</c>: every table of a KextPolicy database.</summary>
public sealed record KextPolicyJson(
    string Database,
    IReadOnlyList<KextPolicyRow> KextPolicy,
    IReadOnlyList<KextPolicyMdmRow> KextPolicyMdm,
    IReadOnlyList<LoadHistoryRow> KextLoadHistoryV3,
    IReadOnlyList<SettingRow> Settings);

/// <summary><c>kextrust kextpolicy show [FILE] [--json]</c>.</summary>
public static class KextPolicyCommand
{
    /// <summary>Adds <c>kextpolicy</c> to <paramref name="root"/>.</summary>
    public static void Register(RootCommand root, CliOutput output)
    {
        var file = new Argument<string?>("FILE") { Description = "A KextPolicy database (e.g. copied from /var/db/SystemPolicyConfiguration/KextPolicy on a real Mac), opened read-only. Without it: this Mac's.", Arity = ArgumentArity.ZeroOrOne };
        var machineOpt = MachineOption.Create();
        var json = new Option<bool>("--json") { Description = "Write JSON instead of tables." };
        var show = new Command("show", "Show the KextPolicy database: kext_policy (user approvals), kext_policy_mdm (MDM), kext_load_history_v3 (load requests and alerts) and settings.")
        {
            file, machineOpt, json,
        };
        show.SetAction(r => MachineOption.Run(output, () =>
        {
            KextPolicyJson content;
            if (r.GetValue(file) is { } path)
            {
                var full = Path.GetFullPath(path);
                using var db = KextPolicyDatabase.OpenReadOnly(full);
                var c = KextPolicyDatabase.ReadAll(db, full);
                content = new(full, c.Policy, c.Mdm, c.History, c.Settings);
            }
            else
            {
                using var mac = MachineOption.Open(r.GetValue(machineOpt)!);
                var c = mac.ReadKextPolicy();
                content = new(mac.Store.PathOf(MachineLayout.KextPolicy), c.Policy, c.Mdm, c.History, c.Settings);
            }
            if (r.GetValue(json))
            {
                output.WriteJson(content);
            }
            else
            {
                Write(output, content);
            }
            return ExitCodes.Ok;
        }));
        root.Subcommands.Add(new Command("kextpolicy", "The KextPolicy SQLite database (macOS's own schema).") { show });
    }

    private static string Str(long? v) => v?.ToString(CultureInfo.InvariantCulture) ?? "NULL";

    private static string Str(string? v) => v ?? "NULL";

    private static void Write(CliOutput output, KextPolicyJson c)
    {
        output.Out.WriteLine($"KextPolicy: {c.Database}");
        Section(output, "kext_policy", ["team_id", "bundle_id", "allowed", "developer_name", "flags"],
            c.KextPolicy.Select(r => new[] { Str(r.TeamId), Str(r.BundleId), r.Allowed ? "1" : "0", Str(r.DeveloperName), Str(r.Flags) }));
        Section(output, "kext_policy_mdm", ["team_id", "bundle_id", "allowed", "payload_uuid"],
            c.KextPolicyMdm.Select(r => new[] { Str(r.TeamId), Str(r.BundleId), r.Allowed ? "1" : "0", Str(r.PayloadUuid) }));
        Section(output, "kext_load_history_v3", ["path", "team_id", "bundle_id", "created_at", "last_seen", "flags"],
            c.KextLoadHistoryV3.Select(r => new[] { r.Path, Str(r.TeamId), Str(r.BundleId), Str(r.CreatedAt), Str(r.LastSeen), Str(r.Flags) }));
        Section(output, "settings", ["name", "value"], c.Settings.Select(r => new[] { r.Name, Str(r.Value) }));
    }

    private static void Section(CliOutput output, string table, string[] columns, IEnumerable<string[]> rows)
    {
        var all = rows.ToArray();
        if (all.Length == 0)
        {
            output.Out.WriteLine($"{table}: no rows");
            return;
        }
        var t = new Table().Border(TableBorder.Rounded).Title(Markup.Escape($"{table} ({all.Length})"));
        foreach (var c in columns)
        {
            t.AddColumn(c);
        }
        foreach (var r in all)
        {
            t.AddRow(r.Select(Markup.Escape).ToArray());
        }
        output.Console.Write(t);
    }
}

using System.CommandLine;
using System.Globalization;
using KextTrust.Boot.SecureBoot;
using KextTrust.Consent;
using KextTrust.Consent.Policy;
using KextTrust.Machine;
using Spectre.Console;

namespace KextTrust.Cli;

/// <summary><c>kextrust kextpolicy show --json</c>: every table of a KextPolicy database.</summary>
internal sealed record KextPolicyJson(
    string Database,
    IReadOnlyList<KextPolicyRow> KextPolicy,
    IReadOnlyList<KextPolicyMdmRow> KextPolicyMdm,
    IReadOnlyList<LoadHistoryRow> KextLoadHistoryV3,
    IReadOnlyList<SettingRow> Settings);

/// <summary><c>kextrust kextpolicy import --json</c>, <c>machine init --kextpolicy --json</c>: what was kept.</summary>
internal sealed record KextPolicyImportJson(string Source, string Database, bool HadCdHashColumn, IReadOnlyList<string> ExtraTables,
    int KextPolicyRows, int KextPolicyMdmRows, int KextLoadHistoryV3Rows, int SettingsRows);

/// <summary><c>kextrust kextpolicy show [FILE] [--json]</c>, <c>kextpolicy import FILE [--json]</c>.</summary>
internal static class KextPolicyCommand
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
        show.SetAction(r => MachineOption.Run(output, r.GetValue(json), () =>
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
        root.Subcommands.Add(new Command("kextpolicy", "The KextPolicy SQLite database (macOS's own schema).") { show, Import(output) });
    }

    private static Command Import(CliOutput output)
    {
        var file = new Argument<string>("FILE") { Description = "A KextPolicy database copied from a real Mac (/var/db/SystemPolicyConfiguration/KextPolicy; any schema since macOS 10.13), opened read-only." };
        var machineOpt = MachineOption.Create();
        var json = new Option<bool>("--json") { Description = "Write one JSON object instead of text." };
        var cmd = new Command("import", "Replace this Mac's KextPolicy database with one copied from a real Mac, keeping every row (schema and every value checked first; the cdhash history column added when missing; the MDM rows of the profiles installed here applied on top). All or nothing.")
        {
            file, machineOpt, json,
        };
        cmd.SetAction(r => MachineOption.Run(output, r.GetValue(json), () =>
        {
            using var mac = MachineOption.Open(r.GetValue(machineOpt)!);
            var a = KextPolicyAdopter.Import(mac.Consent, r.GetValue(file)!);
            WriteAdoption(output, a, mac.Store.PathOf(MachineLayout.KextPolicy), r.GetValue(json));
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    /// <summary>Reports an adopted database (<c>kextpolicy import</c>, <c>machine init --kextpolicy</c>).</summary>
    internal static void WriteAdoption(CliOutput output, KextPolicyAdoption a, string database, bool json)
    {
        var c = a.Content;
        if (json)
        {
            output.WriteJson(new KextPolicyImportJson(a.Source, database, a.HadCdHashColumn, a.ExtraTables, c.Policy.Count, c.Mdm.Count, c.History.Count, c.Settings.Count));
            return;
        }
        output.Out.WriteLine($"adopted {a.Source}: {c.Policy.Count} kext_policy, {c.Mdm.Count} kext_policy_mdm, {c.History.Count} kext_load_history_v3, {c.Settings.Count} settings row(s) kept" +
            (a.HadCdHashColumn ? "" : "; cdhash column added to kext_load_history_v3") + (a.ExtraTables.Count > 0 ? $"; other tables kept: {string.Join(", ", a.ExtraTables)}" : ""));
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

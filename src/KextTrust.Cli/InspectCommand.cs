using System.CommandLine;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Inspection;
using Spectre.Console;

namespace KextTrust.Cli;

/// <summary><c>kextrust inspect PATH [--json]</c>.</summary>
internal static class InspectCommand
{
    public static Command Create(CliOutput output)
    {
        var path = new Argument<string>("PATH") { Description = "A kext bundle, a bare Mach-O file, or a folder to search for kexts." };
        var json = new Option<bool>("--json") { Description = "Write JSON instead of a table." };
        var cmd = new Command("inspect", "Show what a kext or Mach-O file is: identity, libraries, plug-ins, and per architecture its file type, UUID, minimum macOS, imported symbols and code signature.")
        {
            path, json,
        };
        cmd.SetAction(r => Run(output, r.GetValue(path)!, r.GetValue(json)));
        return cmd;
    }

    private static int Run(CliOutput output, string path, bool json)
    {
        var unreadable = new List<InspectReport>();
        try
        {
            if (json)
            {
                // Streamed: each report is written as soon as it is next in order, then dropped.
                output.WriteJson(w =>
                {
                    w.WriteStartArray();
                    KextInspector.InspectPath(path, r =>
                    {
                        unreadable.AddRange(Flatten(r).Where(x => x.Error is not null));
                        InspectJson.Write(w, r);
                        CliOutput.FlushIfFull(w);
                    });
                    w.WriteEndArray();
                });
            }
            else
            {
                var reports = KextInspector.InspectPath(path);
                unreadable.AddRange(reports.SelectMany(Flatten).Where(r => r.Error is not null));
                WriteTable(output, reports);
            }
        }
        catch (KextBundleException ex)
        {
            return output.InputError(ex.Message);
        }
        foreach (var r in unreadable)
        {
            output.Error.WriteLine($"kextrust: {r.Error}");
        }
        return unreadable.Count > 0 ? ExitCodes.InputError : ExitCodes.Ok;
    }

    private static IEnumerable<InspectReport> Flatten(InspectReport r) => r.Plugins.SelectMany(Flatten).Prepend(r);

    private static void WriteTable(CliOutput output, IReadOnlyList<InspectReport> reports)
    {
        if (reports.Count == 0)
        {
            output.Out.WriteLine("no kexts found");
            return;
        }
        var table = new Table().Border(TableBorder.Rounded);
        table.AddColumn("kext / file");
        table.AddColumn("version");
        table.AddColumn("arch");
        table.AddColumn("type");
        table.AddColumn("UUID");
        table.AddColumn("min macOS");
        table.AddColumn(new TableColumn("imports").RightAligned());
        table.AddColumn("signature");
        foreach (var r in reports.SelectMany(Flatten))
        {
            var name = Markup.Escape(r.BundleId ?? Path.GetFileName(r.Path));
            var version = Markup.Escape(r.Version ?? "");
            if (r.Slices.Count == 0)
            {
                var what = r.Error is not null ? "[red]unreadable[/]" : r.Kind == "kext" && r.Executable is null ? "codeless" : "-";
                table.AddRow(name, version, what, "", "", "", "", "");
            }
            foreach (var s in r.Slices)
            {
                var sig = s.CodeSignature switch
                {
                    { Present: false } => "unsigned",
                    { Error: not null } => "[red]malformed[/]",
                    var c => Markup.Escape($"{c.Identifier} team={c.TeamId ?? "-"} {c.HashType}{(c.HasCms ? "" : " ad-hoc/no CMS")}"),
                };
                table.AddRow(name, version, s.Arch, s.FileType, s.Uuid ?? "-", s.MinOS ?? "-",
                    s.UndefinedSymbols.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), sig);
                name = "";
                version = "";
            }
        }
        output.Console.Write(table);
        foreach (var r in reports.SelectMany(Flatten))
        {
            if (r.Libraries.Count > 0)
            {
                output.Out.WriteLine($"{r.BundleId ?? r.Path} libraries: {string.Join(", ", r.Libraries.Select(kv => $"{kv.Key} {kv.Value}"))}");
            }
            foreach (var p in r.Problems)
            {
                output.Out.WriteLine($"{r.BundleId ?? r.Path} problem: {p}");
            }
        }
    }
}

using System.CommandLine;
using KextTrust.Boot.SecureBoot;

namespace KextTrust.Cli;

/// <summary><c>kextrust demo [--json] [--keep DIR]</c>: the story of Apple's guide on a fresh simulated Mac, with three attacks.</summary>
internal static class DemoCommand
{
    public static Command Create(CliOutput output)
    {
        var json = new Option<bool>("--json") { Description = "Print the report as JSON instead of narrating." };
        var keep = new Option<string?>("--keep") { Description = "Run in this folder and keep it (default: a temporary folder, deleted afterwards).", HelpName = "DIR" };
        var cmd = new Command("demo", "Play the secure-boot story of Apple's guide on a fresh simulated Apple-silicon Mac: install, blocked, One True Recovery + Reduced Security, approve, kmd rebuild, restart, loaded, Apple Pay; then three attacks, each refused. Exit 0 when every step had its expected outcome.")
        {
            json, keep,
        };
        cmd.SetAction(r =>
        {
            var kept = r.GetValue(keep);
            var dir = kept ?? Path.Combine(Path.GetTempPath(), "kextrust-demo-" + Guid.NewGuid().ToString("N")[..12]);
            try
            {
                var report = Demo.Run(dir, r.GetValue(json) ? null : output.Out);
                if (r.GetValue(json))
                {
                    output.WriteJson(report);
                }
                else
                {
                    output.Out.WriteLine();
                    output.Out.WriteLine($"{report.Steps.Count(s => s.AsExpected)}/{report.Steps.Length} steps as expected in {report.ElapsedSeconds:0.00} s: {(report.Succeeded ? "demo succeeded" : "demo FAILED")}");
                }
                return report.Succeeded ? ExitCodes.Ok : ExitCodes.Failed;
            }
            finally
            {
                if (kept is null && Directory.Exists(dir))
                {
                    Directory.Delete(dir, recursive: true);
                }
            }
        });
        return cmd;
    }
}

using System.CommandLine;
using KextTrust.Kexts.Signing;

namespace KextTrust.Cli;

/// <summary><c>kextrust pki init DIR [--team TEAMID] [--name NAME] [--no-kext-signing]</c>.</summary>
internal static class PkiCommand
{
    /// <summary>Builds the command group.</summary>
    public static Command Create(CliOutput output)
    {
        var dir = new Argument<string>("DIR") { Description = "Folder to write the certificates and keys into." };
        var team = new Option<string>("--team") { Description = "Team id (leaf subject OU).", DefaultValueFactory = _ => "KT4TEST001" };
        var name = new Option<string>("--name") { Description = "Developer name in the leaf.", DefaultValueFactory = _ => "KextTrust Test Developer" };
        var noKext = new Option<bool>("--no-kext-signing") { Description = "Leave out the kext-signing extension 1.2.840.113635.100.6.1.18 (a negative fixture)." };
        var init = new Command("init", "Create a private test hierarchy shaped like Apple's: a root, a Developer-ID-style intermediate (…6.2.6) and a Developer ID Application leaf (…6.1.13, …6.1.18, team id in OU). It is never trusted unless named with --trust-root.")
        {
            dir, team, name, noKext,
        };
        init.SetAction(r => Init(output, r.GetValue(dir)!, r.GetValue(team)!, r.GetValue(name)!, r.GetValue(noKext)));
        return new Command("pki", "Test signing identities for fixtures and the simulated Mac.") { init };
    }

    private static int Init(CliOutput output, string dir, string team, string name, bool noKext)
    {
        if (File.Exists(Path.Combine(dir, TestPki.Files.RootCert)))
        {
            return output.InputError($"{dir} already holds a PKI ({TestPki.Files.RootCert}); refusing to overwrite it");
        }
        try
        {
            using var pki = TestPki.Create(new TestPki.Options(name, team) { KextSigning = !noKext });
            pki.WriteTo(dir);
            output.Out.WriteLine($"wrote a test PKI to {dir}");
            output.Out.WriteLine($"  root         {TestPki.Files.RootCert}  ({pki.Root.Subject}) — pass to 'kextrust verify --trust-root'");
            output.Out.WriteLine($"  intermediate {TestPki.Files.IntermediateCert}  (Developer ID CA marker 1.2.840.113635.100.6.2.6)");
            output.Out.WriteLine($"  leaf         {TestPki.Files.LeafCert} + {TestPki.Files.LeafKey}  ({pki.Leaf.Subject}){(noKext ? " — WITHOUT kext signing" : "")}");
            output.Out.WriteLine($"  PKCS#12      {TestPki.Files.LeafPkcs12}  (password '{TestPki.DefaultPkcs12Password}') — pass to 'kextrust codesign --p12'");
            return ExitCodes.Ok;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return output.InputError($"{dir}: {e.Message}");
        }
    }
}

using System.CommandLine;
using System.Globalization;
using System.Runtime.CompilerServices;
using KextTrust.Boot.SecureBoot;
using KextTrust.Consent;
using KextTrust.Formats;
using KextTrust.Kexts.Signing;
using KextTrust.Machine;

[assembly: InternalsVisibleTo("KextTrust.Cli.Tests")]

namespace KextTrust.Cli;

/// <summary>
/// The <c>--machine DIR</c> option every simulated-Mac command takes (default <c>$KEXTRUST_MACHINE</c>, else
/// <c>./.kextrust</c>), and the shared way those commands open the Mac and report its typed errors.
/// </summary>
internal static class MachineOption
{
    /// <summary>The environment variable naming the default machine folder.</summary>
    public const string EnvironmentVariable = "KEXTRUST_MACHINE";

    /// <summary>The machine folder used when neither <c>--machine</c> nor <c>$KEXTRUST_MACHINE</c> is given.</summary>
    public const string DefaultDirectory = ".kextrust";

    /// <summary>
    /// Test seam: verdicts the commands use instead of <see cref="KextSignatureVerifier"/>'s (flows with the calling test
    /// only); the verdicts are of the one type every command consumes.
    /// </summary>
    internal static readonly AsyncLocal<IKextSignatureVerifier?> VerifierOverride = new();

    /// <summary>A new <c>--machine</c> option (one per command: an option instance belongs to one command).</summary>
    public static Option<string> Create() => new("--machine")
    {
        Description = $"The simulated Mac's folder (default: ${EnvironmentVariable}, else ./{DefaultDirectory}).",
        HelpName = "DIR",
        DefaultValueFactory = _ => DefaultPath(),
    };

    /// <summary><c>$KEXTRUST_MACHINE</c> when set and non-empty, else <c>./.kextrust</c>.</summary>
    public static string DefaultPath() =>
        Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } env ? env : Path.Combine(".", DefaultDirectory);

    internal static IKextSignatureVerifier? Verifier => VerifierOverride.Value;

    /// <summary>Opens the Mac in <paramref name="dir"/> (waiting for its lock).</summary>
    public static Mac Open(string dir) => Mac.Open(dir, verifier: Verifier);

    /// <summary>An enum value as JSON and text write it: its name in kebab-case.</summary>
    public static string Kebab<T>(T value) where T : struct, Enum => Kebab(value.ToString());

    /// <summary>
    /// An enum name carried as a string (an error's or a refusal's code: <c>NotInOneTrueRecovery</c>) as every JSON
    /// document writes it: <c>not-in-one-true-recovery</c>. A name already in kebab-case comes back unchanged.
    /// </summary>
    public static string Kebab(string name) => System.Text.Json.JsonNamingPolicy.KebabCaseLower.ConvertName(name);

    /// <summary>Runs a command body, turning KextTrust errors into their exit code and one line on standard error (<see cref="BootCommands.Run(CliOutput, bool, Func{int})"/>).</summary>
    public static int Run(CliOutput output, Func<int> body) => BootCommands.Run(output, json: false, body);

    /// <summary>As <see cref="Run(CliOutput, Func{int})"/>, for a command with <c>--json</c>: with <paramref name="json"/> a failure also writes <c>{"error": {"code", "message", "exitCode"}}</c> to standard output.</summary>
    public static int Run(CliOutput output, bool json, Func<int> body) => BootCommands.Run(output, json, body);

    /// <summary>
    /// Writes a KextTrust error to standard error and returns its exit code, from the error's kind alone: a refusal is
    /// exit 1 (<c>kextrust: refused: reason (code …)</c>), bad input or a busy Mac exit 2 (<c>kextrust: reason</c>, with
    /// the code when the error has a label).
    /// </summary>
    public static int Report(CliOutput output, KextTrustException e)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(e);
        var code = e.Label is { } label ? $" (code {label})" : "";
        if (e.Kind == ErrorKind.Refused)
        {
            output.Error.WriteLine($"kextrust: refused: {e.Message}{code}");
            return ExitCodes.Failed;
        }
        return output.InputError(e.Message + code);
    }

    /// <summary>A machine time as shown to people: <c>2025-01-06 09:00:00 UTC</c>.</summary>
    public static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture);
}

using System.CommandLine;
using System.Globalization;
using System.Runtime.CompilerServices;
using KextTrust.Boot.SecureBoot;
using KextTrust.Consent;
using KextTrust.Kexts.Signing;
using KextTrust.Machine;

[assembly: InternalsVisibleTo("KextTrust.Cli.Tests")]

namespace KextTrust.Cli;

/// <summary>
/// The <c>--machine DIR</c> option every simulated-Mac command takes (default <c>$KEXTRUST_MACHINE</c>, else
/// <c>./.kextrust</c>), and the shared way those commands open the Mac and report its typed errors.
/// </summary>
public static class MachineOption
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

    /// <summary>Codes for which the command ran but the Mac refused the action (exit 1); every other code is exit 2.</summary>
    public static bool IsRefusal(ConsentCode code) => code is ConsentCode.AuthenticationFailed or ConsentCode.AdminRequired
        or ConsentCode.NoPendingAlert or ConsentCode.ApprovalWindowExpired or ConsentCode.UserApprovalDisabled
        or ConsentCode.RecoveryOnly or ConsentCode.NotEnrolled or ConsentCode.ManualInstallNotAllowed
        or ConsentCode.UnsupportedOSVersion or ConsentCode.ExcludeListNotNewer or ConsentCode.ProfileNotInstalled
        or ConsentCode.ProfileManagedByMdm or ConsentCode.BadSignature;

    /// <summary>"1203 approval-window-expired": the stable number and its name.</summary>
    public static string CodeLabel(ConsentCode code) =>
        $"{((int)code).ToString(CultureInfo.InvariantCulture)} {CodeName(code)}";

    /// <summary>The kebab-case name of a code ("approval-window-expired").</summary>
    public static string CodeName(ConsentCode code) => System.Text.Json.JsonNamingPolicy.KebabCaseLower.ConvertName(code.ToString());

    /// <summary>An enum value as JSON and text write it: its name in kebab-case.</summary>
    public static string Kebab<T>(T value) where T : struct, Enum => System.Text.Json.JsonNamingPolicy.KebabCaseLower.ConvertName(value.ToString());

    /// <summary>
    /// Runs a command body, turning typed errors into <c>kextrust: …</c> on standard error: a refused action is
    /// exit 1 ("refused: reason (code N name)"), unreadable input or misuse exit 2.
    /// </summary>
    public static int Run(CliOutput output, Func<int> body)
    {
        try
        {
            return body();
        }
        catch (ConsentException e)
        {
            return Report(output, e);
        }
        catch (MachineException e)
        {
            return Report(output, e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return output.InputError(e.Message);
        }
    }

    /// <summary>Writes a typed error to standard error and returns its exit code.</summary>
    public static int Report(CliOutput output, ConsentException e)
    {
        if (IsRefusal(e.Code))
        {
            output.Error.WriteLine($"kextrust: refused: {e.Message} (code {CodeLabel(e.Code)})");
            return ExitCodes.Failed;
        }
        return output.InputError($"{e.Message} (code {CodeLabel(e.Code)})");
    }

    /// <summary>Writes a machine-folder error (unreadable or busy Mac, malformed database: exit 2) to standard error.</summary>
    public static int Report(CliOutput output, MachineException e)
    {
        ArgumentNullException.ThrowIfNull(e);
        return output.InputError($"{e.Message} (code {((int)e.Code).ToString(CultureInfo.InvariantCulture)} {System.Text.Json.JsonNamingPolicy.KebabCaseLower.ConvertName(e.Code.ToString())})");
    }

    /// <summary>A machine time as shown to people: <c>2025-01-06 09:00:00 UTC</c>.</summary>
    public static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture);
}

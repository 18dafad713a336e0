using KextTrust.Boot.SecureBoot;
using KextTrust.Consent;
using KextTrust.Formats;
using KextTrust.Formats.MachO;
using KextTrust.Machine;

namespace KextTrust.Cli.Tests;

/// <summary>
/// Every KextTrust error is a <see cref="KextTrustException"/>; the CLI maps it from its kind alone: refused → exit 1 with
/// "refused: … (code …)", invalid input or busy → exit 2, and with --json the same code in <c>error.code</c>.
/// </summary>
public sealed class ErrorMappingTests
{
    public static TheoryData<string, int, string, string> Cases() => new()
    {
        { "consent refusal", 1, "ApprovalWindowExpired", "kextrust: refused: x (code 1203 approval-window-expired)" },
        { "consent bad input", 2, "InvalidArgument", "kextrust: x (code 1700 invalid-argument)" },
        { "busy Mac", 2, "MachineBusy", "kextrust: x (code 1101 machine-busy)" },
        { "secure-boot refusal", 1, "NotInOneTrueRecovery", "kextrust: refused: x (code NotInOneTrueRecovery)" },
        { "malformed LocalPolicy", 2, "LocalPolicyMalformed", "kextrust: x" },
        { "malformed Mach-O", 2, "Malformed", "kextrust: f: invalid Mach-O at offset 4 (0x4): x" },
    };

    private static KextTrustException Make(string name) => name switch
    {
        "consent refusal" => new ConsentException(ConsentCode.ApprovalWindowExpired, null, "x"),
        "consent bad input" => new ConsentException(ConsentCode.InvalidArgument, null, "x"),
        "busy Mac" => new MachineException(MachineCode.MachineBusy, null, "x"),
        "secure-boot refusal" => new SecureBootException(SecureBootCode.NotInOneTrueRecovery, "x"),
        "malformed LocalPolicy" => new SecureBootException(SecureBootCode.LocalPolicyMalformed, "x"),
        _ => new MachOFormatException("f", 4, "x"),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Exit_code_stderr_and_json_code_follow_the_errors_kind_and_code(string name, int exit, string code, string stderr)
    {
        var error = Make(name);
        Assert.Equal(code, error.ErrorCode);
        using var stdout = new StringWriter();
        using var stderrWriter = new StringWriter();
        var output = new CliOutput(stdout, stderrWriter);
        Assert.Equal(exit, BootCommands.Run(output, json: true, () => throw error));
        Assert.Equal(stderr, stderrWriter.ToString().Trim());
        using var doc = System.Text.Json.JsonDocument.Parse(stdout.ToString());
        Assert.Equal(System.Text.Json.JsonNamingPolicy.KebabCaseLower.ConvertName(code), doc.RootElement.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(exit, doc.RootElement.GetProperty("error").GetProperty("exitCode").GetInt32());
    }
}

using KextTrust.Kexts.Trust;

namespace KextTrust.Cli;

/// <summary>
/// One step of a trust trace as every <c>--json</c> document writes it (<c>why</c>'s <c>steps</c>, <c>startup</c>'s
/// <c>trace</c> and <c>refusal</c>): the step and outcome in kebab-case, the stable code (<see cref="TrustCode"/> in
/// kebab-case; null when the step passed), the <c>KMErrorDomain</c> code where macOS has one, the detail and the evidence.
/// </summary>
internal sealed record TrustCheckJson(string Step, string Outcome, string? Code, int? KmErrorCode, string Detail, IReadOnlyDictionary<string, string> Evidence)
{
    /// <summary>The JSON of <paramref name="check"/> (evidence keys in ordinal order).</summary>
    public static TrustCheckJson From(TrustCheck check)
    {
        ArgumentNullException.ThrowIfNull(check);
        return new(MachineOption.Kebab(check.Step), MachineOption.Kebab(check.Outcome), check.Code?.Name(), check.KMErrorCode, check.Detail,
            new SortedDictionary<string, string>(check.Evidence.ToDictionary(), StringComparer.Ordinal));
    }

    /// <summary>"signature-invalid (KMErrorDomain 29)", "exclude-listed", or "-" when the step has no code.</summary>
    public static string CodeText(string? code, int? kmErrorCode) =>
        code is null ? "-" : kmErrorCode is { } k ? $"{code} (KMErrorDomain {k})" : code;
}

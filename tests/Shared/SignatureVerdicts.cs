using KextTrust.Kexts.Signing;

namespace KextTrust.TestSupport;

/// <summary>
/// Verdicts of the one signature type (<see cref="KextSignatureVerification"/>) for tests that model signatures by bundle id
/// instead of signing kexts. Consumers judge them with the same code (<see cref="KextSignatureVerification.Refusal"/>) as
/// real verdicts; the tamper tests use real signatures and the real verifier.
/// </summary>
public static class SignatureVerdicts
{
    /// <summary>A valid Developer ID signature of <paramref name="team"/>, with or without the kext-signing authority.</summary>
    public static KextSignatureVerification Valid(string path, string team, string name = "Example Developer", bool kextSigning = true,
        string cdhash = "00112233445566778899aabbccddeeff00112233") =>
        Make(path, KextSignatureStatus.Valid, [], team, $"Developer ID Application: {name} ({team})", kextSigning,
            new RequirementEvaluation(RequirementEvaluator.ThirdPartyKextRequirement, kextSigning ? RequirementOutcome.Satisfied : RequirementOutcome.NotSatisfied, []),
            cdhash);

    /// <summary>An ad-hoc signature.</summary>
    public static KextSignatureVerification AdHoc(string path) =>
        Make(path, KextSignatureStatus.AdHoc, [], null, null, false, null, "ffeeddccbbaa99887766554433221100ffeeddcc");

    /// <summary>No signature.</summary>
    public static KextSignatureVerification Unsigned(string path) => Make(path, KextSignatureStatus.Unsigned, [], null, null, false, null, null);

    /// <summary>A signature of <paramref name="team"/> that does not validate, for <paramref name="code"/>.</summary>
    public static KextSignatureVerification Invalid(string path, string? team, KextSignatureProblemCode code, string message = "does not validate") =>
        Make(path, KextSignatureStatus.Invalid, [new KextSignatureProblem(code, message)], team, team is null ? null : $"Developer ID Application: Example ({team})", team is not null, null, "00");

    private static KextSignatureVerification Make(string path, KextSignatureStatus status, IReadOnlyList<KextSignatureProblem> problems, string? team,
        string? signer, bool kextSigning, RequirementEvaluation? requirement, string? cdhash) =>
        new(path, "bundle", null, status, problems, team, signer, kextSigning, TrustAnchorKind.None, null, false,
            cdhash is null ? [] : [new SliceVerification("x86_64", "kext", true, [new SliceCdHash("x86_64", 0, "sha256", cdhash)], 0, 0)],
            true, requirement, null, [], []);
}

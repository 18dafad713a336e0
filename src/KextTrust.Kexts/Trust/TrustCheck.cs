using System.Collections.Immutable;

namespace KextTrust.Kexts.Trust;

/// <summary>
/// The steps of every trust pipeline, one name per step wherever it runs: the load decision (<c>why</c>), kmd's AuxKC
/// build, iBoot at startup, and the kernel. A pipeline takes the steps it has, in its own order.
/// </summary>
public enum TrustStep
{
    /// <summary>kmd: the bundle is readable (identity, version, executable) and its bundle id is not duplicated.</summary>
    Bundle,
    /// <summary>AppleKextExcludeList: the bundle id and version are not excluded.</summary>
    ExcludeList,
    /// <summary>The executable has a slice for the Mac's architecture (arm64e on Apple silicon, x86_64 on Intel).</summary>
    Architecture,
    /// <summary><c>why</c>: ownership and permissions (modelled on Unix mode bits: no group/other write).</summary>
    FilesystemValidation,
    /// <summary>The code signature (one verdict, <see cref="Signing.KextSignatureVerification"/>), enforced when SIP's kext bit is on.</summary>
    Signature,
    /// <summary><c>why</c>: the validated copy in /Library/StagedExtensions (SIP on only).</summary>
    Staging,
    /// <summary>User-Approved Kernel Extension Loading: a consent source for the kext (kmd: its (team id, bundle id) is in the UAKL).</summary>
    Consent,
    /// <summary>Deprecated / unsupported KPIs (Apple's deprecation rules and their footnote).</summary>
    Kpi,
    /// <summary>kmd: every OSBundleLibraries entry is available in a compatible version.</summary>
    Dependencies,
    /// <summary>kmd and the kernel: every undefined symbol is exported by a declared library.</summary>
    Link,
    /// <summary>kmd: the kext takes a place in the dependency order (no cycle).</summary>
    Order,
    /// <summary>iBoot: the LocalPolicy decodes as a LocalPolicy.</summary>
    LocalPolicyFormat,
    /// <summary>iBoot: the LocalPolicy is signed by this Mac's SEP key.</summary>
    LocalPolicySignature,
    /// <summary>iBoot: the LocalPolicy is personalized for this ECID.</summary>
    LocalPolicyEcid,
    /// <summary>iBoot: the LocalPolicy carries the SEP's current nonce hash (not replayed).</summary>
    LocalPolicyNonce,
    /// <summary>iBoot: the LocalPolicy's settings are consistent.</summary>
    LocalPolicyConsistency,
    /// <summary>Startup: the security mode and <c>smb2</c> allow an AuxKC, and one was built (or why none is loaded).</summary>
    ThirdPartyKexts,
    /// <summary>iBoot: the AuxKC Image4 is present and decodes.</summary>
    AuxKcImage4Format,
    /// <summary>iBoot: the AuxKC Image4 is signed by the same SEP key as the LocalPolicy.</summary>
    AuxKcImage4Signature,
    /// <summary>iBoot: the AuxKC Image4 is personalized for this ECID.</summary>
    AuxKcImage4Ecid,
    /// <summary>iBoot: SHA-384 of the AuxKC Image4's manifest equals the LocalPolicy's <c>auxi</c>.</summary>
    AuxKcImage4Current,
    /// <summary>iBoot: the Image4's <c>DGST</c> equals SHA-384 of its IM4P.</summary>
    AuxKcImage4Digest,
    /// <summary>iBoot: the AuxKC file is the Image4's payload.</summary>
    AuxKcBytes,
    /// <summary>iBoot: the AuxKC is a thin MH_FILESET for this Mac's architecture.</summary>
    AuxKcFormat,
    /// <summary>iBoot: SHA-384 of the kext receipt equals the LocalPolicy's <c>auxr</c>.</summary>
    Receipt,
    /// <summary>iBoot: SHA-384 of the user-approved kext list on disk equals the LocalPolicy's <c>auxp</c>.</summary>
    UserApprovedKextList,
}

/// <summary>How one step ended.</summary>
public enum TrustOutcome
{
    /// <summary>The check passed.</summary>
    Passed,
    /// <summary>The check passed with a note (a deprecated KPI, an Apple family assumed present, …).</summary>
    Warning,
    /// <summary>Not enforced in this configuration (e.g. signatures with SIP's kext bit off) or not applicable (no AuxKC to check).</summary>
    Skipped,
    /// <summary>The check failed with <see cref="TrustCheck.Code"/>: the kext does not load (or the AuxKC is refused).</summary>
    Failed,
}

/// <summary>
/// One step of a trust pipeline — the one trace record of <c>why</c>, kmd, iBoot/startup and the kernel: the step, how it
/// ended, the stable code (null when it passed; a warning names its note, e.g. <see cref="TrustCode.DeprecatedKpi"/>), the <c>KMErrorDomain</c> code where macOS has one (derived from the
/// code: <see cref="TrustCodes.KMErrorCode"/>), the human detail, and the evidence (key/value) where the step has some.
/// </summary>
public sealed record TrustCheck(TrustStep Step, TrustOutcome Outcome, TrustCode? Code, string Detail)
{
    /// <summary>The evidence (rows, payload UUIDs, team ids, rules …) by key; empty when the step has none.</summary>
    public IReadOnlyDictionary<string, string> Evidence { get; init; } = ImmutableSortedDictionary<string, string>.Empty;

    /// <summary>The <c>KMErrorDomain</c> code of <see cref="Code"/> where macOS reports one, else null.</summary>
    public int? KMErrorCode => Code?.KMErrorCode();

    /// <summary>A passed check.</summary>
    public static TrustCheck Pass(TrustStep step, string detail) => new(step, TrustOutcome.Passed, null, detail);

    /// <summary>A failed check.</summary>
    public static TrustCheck Fail(TrustStep step, TrustCode code, string detail) => new(step, TrustOutcome.Failed, code, detail);

    /// <summary>This check with <paramref name="evidence"/> (keys in ordinal order).</summary>
    public TrustCheck With(params (string Key, string Value)[] evidence) =>
        this with { Evidence = evidence.ToImmutableSortedDictionary(e => e.Key, e => e.Value, StringComparer.Ordinal) };

    /// <summary>
    /// The trace line as startup's text and the kmd trace write it, names in kebab-case as in every JSON document:
    /// <c>local-policy-format: passed …</c>, <c>aux-kc-image4-current: failed (aux-kc-rollback) …</c>.
    /// </summary>
    public override string ToString() => Code is { } c
        ? $"{TrustCodes.Kebab(Step)}: {TrustCodes.Kebab(Outcome)} ({c.Name()}) {Detail}"
        : $"{TrustCodes.Kebab(Step)}: {TrustCodes.Kebab(Outcome)} {Detail}";
}

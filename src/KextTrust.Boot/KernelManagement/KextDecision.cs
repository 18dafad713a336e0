using System.Collections.Immutable;
using KextTrust.Consent.Policy;

namespace KextTrust.Boot.KernelManagement;

/// <summary>The steps kmd takes for each candidate kext, in order.</summary>
public enum KmdStep
{
    /// <summary>The bundle is readable (identity, version, executable) and its bundle id is not duplicated.</summary>
    Bundle,
    /// <summary>The (team id, bundle id) pair is in the UAKL.</summary>
    Uakl,
    /// <summary>The bundle id and version are not on the exclude list.</summary>
    ExcludeList,
    /// <summary>The signature is valid with kext-signing authority (SIP on only).</summary>
    Signature,
    /// <summary>The executable has a slice for the Mac's architecture (read before the KPI rules, which look at its imports).</summary>
    Architecture,
    /// <summary>No unsupported KPI is used (unless SIP's kext bit is off or the kext is MDM-approved).</summary>
    Kpi,
    /// <summary>Every OSBundleLibraries entry is available in a compatible version.</summary>
    Dependencies,
    /// <summary>Every undefined symbol is exported by a declared library.</summary>
    Link,
    /// <summary>The kext takes a place in the dependency order (no cycle).</summary>
    Order,
}

/// <summary>The outcome of one step.</summary>
public enum KmdCheckOutcome
{
    /// <summary>The check passed.</summary>
    Passed,
    /// <summary>The check passed with a note (deprecated KPI, Apple family assumed present, …).</summary>
    Warning,
    /// <summary>The check was not enforced (e.g. signatures with SIP's kext bit off).</summary>
    Skipped,
    /// <summary>The check failed: the kext is left out of the AuxKC.</summary>
    Failed,
}

/// <summary>Stable reason codes for leaving a kext out of the AuxKC (they appear in the kext receipt).</summary>
public enum KextExclusionCode
{
    /// <summary>Info.plist missing or unreadable, no bundle id or version, executable missing, or another bundle problem.</summary>
    MalformedBundle,
    /// <summary>Another candidate has the same bundle id and a higher version (or an earlier path).</summary>
    DuplicateBundleId,
    /// <summary>The bundle id is not in the UAKL.</summary>
    NotInUakl,
    /// <summary>The bundle id is in the UAKL, but for another team than the signature's.</summary>
    UaklTeamMismatch,
    /// <summary>On the exclude list (banned).</summary>
    Banned,
    /// <summary>Unsigned while SIP enforces kext signatures.</summary>
    SignatureUnsigned,
    /// <summary>Ad hoc signed while SIP enforces kext signatures.</summary>
    SignatureAdHoc,
    /// <summary>The signature does not validate.</summary>
    SignatureInvalid,
    /// <summary>Valid signature, but the certificate lacks kext-signing authority.</summary>
    NotKextSigningAuthority,
    /// <summary>Uses a KPI unsupported on the Mac's macOS release.</summary>
    KpiUnsupported,
    /// <summary>No slice for the Mac's architecture (KMErrorDomain 71).</summary>
    MissingArchitecture,
    /// <summary>The executable is not a well-formed kext Mach-O that can be placed in a fileset.</summary>
    MalformedExecutable,
    /// <summary>An OSBundleLibraries entry is neither a KPI of this release, an Apple family, nor another candidate.</summary>
    MissingDependency,
    /// <summary>A library is another third-party kext that was itself left out.</summary>
    DependencyExcluded,
    /// <summary>A library exists but not in a version compatible with the one requested.</summary>
    DependencyVersion,
    /// <summary>Some undefined symbols are exported by no declared library.</summary>
    UnresolvedSymbols,
    /// <summary>Part of (or depends on) a cycle of OSBundleLibraries.</summary>
    DependencyCycle,
}

/// <summary>One step's result for one kext.</summary>
/// <param name="Step">The step.</param>
/// <param name="Outcome">Passed, warning, skipped or failed.</param>
/// <param name="Code">The exclusion code when <paramref name="Outcome"/> is <see cref="KmdCheckOutcome.Failed"/>.</param>
/// <param name="Detail">Human-readable reason.</param>
public sealed record KmdCheck(KmdStep Step, KmdCheckOutcome Outcome, KextExclusionCode? Code, string Detail)
{
    /// <inheritdoc/>
    public override string ToString() => Code is { } c ? $"{Step}: {Outcome} ({c}) {Detail}" : $"{Step}: {Outcome} {Detail}";
}

/// <summary>kmd's decision for one candidate kext, with the trace of every step it went through.</summary>
public sealed record KextDecision
{
    /// <summary>KMErrorDomain code kmutil reports for a kext without a slice for the Mac's architecture.</summary>
    public const int KMErrorMissingArchitecture = 71;

    /// <summary>The bundle path as recorded on the Mac (see <see cref="AuxKcBuildRequest.VolumeRoot"/>).</summary>
    public required string BundlePath { get; init; }

    /// <summary>CFBundleIdentifier, or null when unreadable.</summary>
    public string? BundleId { get; init; }

    /// <summary>CFBundleVersion text, or null when unreadable.</summary>
    public string? Version { get; init; }

    /// <summary>The signing team from the signature verdict (null when unsigned or ad hoc).</summary>
    public string? TeamId { get; init; }

    /// <summary>The cdhash from the signature verdict.</summary>
    public string? CdHash { get; init; }

    /// <summary>The UAKL entry's consent source, when found.</summary>
    public ConsentSource? Consent { get; init; }

    /// <summary>True when the kext is in the AuxKC.</summary>
    public bool Included => Exclusion is null;

    /// <summary>Why the kext was left out, or null when included.</summary>
    public KextExclusionCode? Exclusion { get; init; }

    /// <summary>KMErrorDomain error code for the exclusion when kmutil has one (71: missing architecture).</summary>
    public int? KMErrorCode => Exclusion == KextExclusionCode.MissingArchitecture ? KMErrorMissingArchitecture : null;

    /// <summary>Every step taken, in order; the last one failed when excluded.</summary>
    public required ImmutableArray<KmdCheck> Checks { get; init; }

    /// <summary>The failing check's detail, or null when included.</summary>
    public string? ExclusionDetail => Included ? null : Checks.LastOrDefault(c => c.Outcome == KmdCheckOutcome.Failed)?.Detail;
}

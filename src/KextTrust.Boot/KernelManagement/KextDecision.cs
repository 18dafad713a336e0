using System.Collections.Immutable;
using KextTrust.Consent.Policy;
using KextTrust.Kexts.Trust;

namespace KextTrust.Boot.KernelManagement;

/// <summary>
/// kmd's decision for one candidate kext, with the trace of every step it went through (the one trace record and code
/// vocabulary <c>why</c>, iBoot and the audit share). The load decision of <c>why</c> is
/// <see cref="Consent.Policy.KextDecision"/>; this one decides a place in the AuxKC.
/// </summary>
public sealed record KmdDecision
{
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

    /// <summary>Why the kext was left out (the receipt records it), or null when included.</summary>
    public TrustCode? Exclusion { get; init; }

    /// <summary>The <c>KMErrorDomain</c> code of the exclusion where kmutil has one (71: missing architecture), else null.</summary>
    public int? KMErrorCode => Exclusion?.KMErrorCode();

    /// <summary>Every step taken, in order; the last one failed when excluded.</summary>
    public required ImmutableArray<TrustCheck> Checks { get; init; }

    /// <summary>The failing check's detail, or null when included.</summary>
    public string? ExclusionDetail => Included ? null : Checks.LastOrDefault(c => c.Outcome == TrustOutcome.Failed)?.Detail;
}

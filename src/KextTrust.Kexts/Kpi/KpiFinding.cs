using System.Collections.Immutable;

namespace KextTrust.Kexts.Kpi;

/// <summary>A rule that applies to a kext, with the imports that triggered it.</summary>
/// <param name="Rule">The rule.</param>
/// <param name="TriggeringSymbols">Imported symbols that matched, sorted ordinally.</param>
/// <param name="TriggeringLibraries">Declared OSBundleLibraries ids that matched, sorted ordinally.</param>
public sealed record KpiFinding(KpiRule Rule, ImmutableArray<string> TriggeringSymbols, ImmutableArray<string> TriggeringLibraries)
{
    /// <summary>The rule's status on a release.</summary>
    public KpiSupportStatus StatusOn(MacOSRelease release) => Rule.StatusOn(release);
}

/// <summary>A finding's effect on one release.</summary>
/// <param name="Finding">The finding.</param>
/// <param name="Status">Deprecated or unsupported there (or supported, before deprecation).</param>
/// <param name="BlocksLoad">Unsupported and not exempt by the enforcement context.</param>
public sealed record KpiFindingStatus(KpiFinding Finding, KpiSupportStatus Status, bool BlocksLoad);

/// <summary>The outcome for one release.</summary>
/// <param name="Release">The release.</param>
/// <param name="Status">Worst status among the findings (Supported when none).</param>
/// <param name="BlocksLoad">Some finding blocks loading there.</param>
/// <param name="Findings">Each finding's status there, in rule order.</param>
public sealed record KpiReleaseVerdict(MacOSRelease Release, KpiSupportStatus Status, bool BlocksLoad, ImmutableArray<KpiFindingStatus> Findings);

/// <summary>The result of <see cref="KpiRuleEvaluator.Evaluate(IReadOnlyCollection{string}, IReadOnlyDictionary{string, string}, KpiEnforcementContext?)"/>.</summary>
/// <param name="Findings">Applicable rules, in <see cref="KpiRules.All"/> order.</param>
/// <param name="Enforcement">The enforcement context used.</param>
/// <param name="PerRelease">One verdict per <see cref="MacOSRelease.All"/>, oldest first.</param>
public sealed record KpiEvaluation(ImmutableArray<KpiFinding> Findings, KpiEnforcementContext Enforcement, ImmutableArray<KpiReleaseVerdict> PerRelease)
{
    /// <summary>The verdict for one release.</summary>
    public KpiReleaseVerdict On(MacOSRelease release)
    {
        ArgumentNullException.ThrowIfNull(release);
        return PerRelease[release.Index];
    }

    /// <summary>The finding for a rule id, or null.</summary>
    public KpiFinding? Find(string ruleId) => Findings.FirstOrDefault(f => f.Rule.Id == ruleId);
}

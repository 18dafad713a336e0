using System.Collections.Immutable;
using KextTrust.Kexts.Kpi;
using KextTrust.Kexts.Trust;

namespace KextTrust.Kexts.Audit;

/// <summary>Will the kext load on one macOS release and platform.</summary>
public enum KextLoadVerdict
{
    /// <summary>Loads without objection.</summary>
    Loads,

    /// <summary>Loads, with the "legacy system extension" alert (a deprecated KPI) or an exempted unsupported KPI.</summary>
    LoadsWithWarning,

    /// <summary>The kernel (kmd, the linker, or the policy) refuses it.</summary>
    Refused,

    /// <summary>No such Mac: macOS 10.15 on Apple silicon.</summary>
    NotApplicable,
}

/// <summary>What a reason does to the verdict.</summary>
public enum KextReasonSeverity
{
    /// <summary>Makes the verdict <see cref="KextLoadVerdict.Refused"/>.</summary>
    Refuses,

    /// <summary>Makes the verdict at least <see cref="KextLoadVerdict.LoadsWithWarning"/>.</summary>
    Warns,

    /// <summary>Explains the cell without changing it.</summary>
    Informs,
}

/// <summary>One reason behind a verdict.</summary>
/// <param name="Code">The stable code, from the one vocabulary <c>why</c>, kmd and iBoot share (<see cref="TrustCode"/>): the same
/// fact has the same code there, e.g. <see cref="TrustCode.MissingArchitecture"/> (<c>KMErrorDomain</c> 71).</param>
/// <param name="Severity">Its effect on the verdict.</param>
/// <param name="Message">For people.</param>
/// <param name="Symbols">The imported symbols concerned (unresolved symbols, the KPI's triggering symbols), sorted.</param>
/// <param name="Libraries">The libraries concerned, sorted.</param>
/// <param name="Exemptions">For <c>kpi-not-enforced:*</c>: the footnote's exemption codes that apply (<see cref="KpiRules.EnforcementExemptions"/>).</param>
public sealed record KextAuditReason(
    TrustCode Code,
    KextReasonSeverity Severity,
    string Message,
    ImmutableArray<string> Symbols,
    ImmutableArray<string> Libraries,
    ImmutableArray<string> Exemptions)
{
    /// <summary>The KPI rule of <see cref="TrustCode.UnsupportedKpi"/>, <see cref="TrustCode.DeprecatedKpi"/> and <see cref="TrustCode.KpiNotEnforced"/> (e.g. <c>KPI-KAUTH</c>); null otherwise.</summary>
    public string? Rule { get; init; }

    /// <summary>
    /// The stable key scripts and SARIF key on: the code's kebab-case name with the KPI rule where there is one —
    /// <c>unsupported-kpi:KPI-KAUTH</c>, <c>missing-architecture</c>.
    /// </summary>
    public string Key => Code.Name(Rule);

    /// <summary>The <c>KMErrorDomain</c> code of <see cref="Code"/> where macOS has one (71: missing architecture), else null.</summary>
    public int? KMErrorCode => Code.KMErrorCode();
}

/// <summary>The decision for one release and platform, with every reason for it.</summary>
/// <param name="Release">The macOS release.</param>
/// <param name="Platform">Intel or Apple silicon.</param>
/// <param name="Verdict">Loads, loads with warning, refused, or not applicable.</param>
/// <param name="Reasons">Refusing reasons first, then warnings, then notes.</param>
public sealed record KextVerdict(MacOSRelease Release, MacPlatform Platform, KextLoadVerdict Verdict, ImmutableArray<KextAuditReason> Reasons)
{
    /// <summary><c>&lt;release&gt;/&lt;platform&gt;</c>, e.g. <c>11/apple-silicon</c>, <c>15.4/intel</c>.</summary>
    public string Key => $"{Release.Key}/{Platform.Name()}";

    /// <summary>"loads", "loads-with-warning", "refused", "not-applicable".</summary>
    public string VerdictCode => Verdict switch
    {
        KextLoadVerdict.Loads => "loads",
        KextLoadVerdict.LoadsWithWarning => "loads-with-warning",
        KextLoadVerdict.Refused => "refused",
        _ => "not-applicable",
    };
}

/// <summary>What the audited path turned out to be.</summary>
public enum KextAuditSubjectKind
{
    /// <summary>A kext bundle (codeless, or with an MH_KEXT_BUNDLE executable).</summary>
    Kext,

    /// <summary>A Mach-O that is not an MH_KEXT_BUNDLE (a dylib, an executable…), bare or as a bundle's executable.</summary>
    NotAKext,

    /// <summary>Could not be read (no Info.plist or bundle id, malformed Mach-O): see <see cref="KextAuditReport.Error"/>.</summary>
    Unreadable,
}

/// <summary>The audit of one kext (or of a file that is not one): findings, link check, signature, verdicts, plug-ins.</summary>
/// <param name="Path">Bundle folder, or the file for a bare Mach-O.</param>
/// <param name="InfoPlistPath">The bundle's Info.plist (where SARIF results point); null for a bare file.</param>
/// <param name="Kind">Kext, not a kext, or unreadable.</param>
/// <param name="BundleId">CFBundleIdentifier.</param>
/// <param name="Version">CFBundleVersion as written.</param>
/// <param name="Architectures">Mach-O architecture names of the executable's slices, in file order.</param>
/// <param name="Findings">KPI groups of Apple's guide the kext uses (any slice), in rule order.</param>
/// <param name="Link">The link check; null when there is nothing to link (not a kext, unreadable).</param>
/// <param name="Signature">Signature facts; null when not checked.</param>
/// <param name="Verdicts">One per audited release × platform, releases oldest first, Intel before Apple silicon.</param>
/// <param name="PlugIns">Audits of the kexts in its PlugIns.</param>
/// <param name="Problems">Problems found opening the bundle (<see cref="Bundles.KextProblem"/> text).</param>
/// <param name="Error">Why the subject is unreadable; null otherwise.</param>
public sealed record KextAuditReport(
    string Path,
    string? InfoPlistPath,
    KextAuditSubjectKind Kind,
    string? BundleId,
    string? Version,
    ImmutableArray<string> Architectures,
    ImmutableArray<KpiFinding> Findings,
    KextLinkReport? Link,
    KextSignatureFacts? Signature,
    ImmutableArray<KextVerdict> Verdicts,
    ImmutableArray<KextAuditReport> PlugIns,
    ImmutableArray<string> Problems,
    string? Error)
{
    /// <summary>Bundle id, else the file or folder name.</summary>
    public string DisplayName => BundleId ?? System.IO.Path.GetFileName(Path);

    /// <summary>The verdict for one release and platform, or null when not audited.</summary>
    public KextVerdict? VerdictFor(MacOSRelease release, MacPlatform platform) =>
        Verdicts.FirstOrDefault(v => v.Release == release && v.Platform == platform);

    /// <summary>True when some audited cell refuses this kext.</summary>
    public bool IsRefusedSomewhere => Verdicts.Any(v => v.Verdict == KextLoadVerdict.Refused);

    /// <summary>This report and its plug-ins' reports, depth first.</summary>
    public IEnumerable<KextAuditReport> SelfAndPlugIns() => PlugIns.SelectMany(p => p.SelfAndPlugIns()).Prepend(this);
}

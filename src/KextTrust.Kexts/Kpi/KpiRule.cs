using System.Collections.Immutable;

namespace KextTrust.Kexts.Kpi;

/// <summary>Support status of a KPI group on a macOS version.</summary>
public enum KpiSupportStatus
{
    /// <summary>Not deprecated there.</summary>
    Supported = 0,

    /// <summary>Deprecated: the kext loads (from 10.15.4 with the "legacy system extension" alert).</summary>
    Deprecated = 1,

    /// <summary>Unsupported: a kext using it does not load (unless enforcement is exempt).</summary>
    Unsupported = 2,
}

/// <summary>
/// One group of Apple's "Deprecated Kernel Extensions and System Extension Alternatives" (Apple's guide), as data.
/// </summary>
/// <param name="Id">Stable reason code, e.g. <c>KPI-KAUTH</c>.</param>
/// <param name="Title">The group's heading in Apple's guide.</param>
/// <param name="DeprecatedSince">First macOS version where the group is deprecated.</param>
/// <param name="UnsupportedSince">First version where it is unsupported (kext refused); null when only deprecated.</param>
/// <param name="Replacement">The replacement Apple names.</param>
/// <param name="ReplacementEntitlements">Entitlements the replacement needs from Apple.</param>
/// <param name="Trigger">What in a kext's imports makes the rule apply.</param>
/// <param name="Note">How the rule reads Apple's text, where it needed reading.</param>
public sealed record KpiRule(
    string Id,
    string Title,
    MacOSVersion DeprecatedSince,
    MacOSVersion? UnsupportedSince,
    string Replacement,
    ImmutableArray<string> ReplacementEntitlements,
    KpiTrigger Trigger,
    string Note)
{
    /// <summary>Status of the group on a macOS version.</summary>
    internal KpiSupportStatus StatusAt(MacOSVersion version) =>
        UnsupportedSince is { } u && version >= u ? KpiSupportStatus.Unsupported
        : version >= DeprecatedSince ? KpiSupportStatus.Deprecated
        : KpiSupportStatus.Supported;

    /// <summary>Status on a catalog release (at its first version).</summary>
    public KpiSupportStatus StatusOn(MacOSRelease release)
    {
        ArgumentNullException.ThrowIfNull(release);
        return StatusAt(release.FirstVersion);
    }
}

/// <summary>A case in which the deprecation policy is not enforced (Apple's deprecation footnote).</summary>
/// <param name="Id">Stable code.</param>
/// <param name="Description">The condition.</param>
internal sealed record KpiEnforcementExemption(string Id, string Description);

/// <summary>The conditions of Apple's deprecation footnote for one Mac and kext.</summary>
/// <param name="SipDisabled">System Integrity Protection is disabled.</param>
/// <param name="ApprovedByMdm">The kext is approved through an MDM profile.</param>
public sealed record KpiEnforcementContext(bool SipDisabled, bool ApprovedByMdm)
{
    /// <summary>SIP on, no MDM approval: the policy is enforced.</summary>
    public static KpiEnforcementContext Enforced { get; } = new(false, false);

    /// <summary>True when the footnote exempts the kext: unsupported KPIs then do not block loading.</summary>
    public bool IsExempt => SipDisabled || ApprovedByMdm;
}

using KextTrust.Consent.Mdm;

namespace KextTrust.Cli;

/// <summary>One payload's fate in <c>mdm push|remove</c>, <c>profiles install|remove</c> <c>--json</c>.</summary>
internal sealed record PayloadChangeJson(string PayloadType, string PayloadIdentifier, string PayloadUuid, string Change);

/// <summary>One kext_policy_mdm row of the combined MDM kext policy.</summary>
internal sealed record MdmRowJson(string TeamId, string? BundleId, string PayloadUuid);

/// <summary>An installed kext whose consent changed.</summary>
internal sealed record ConsentChangeJson(string BundleId, string Path, string Before, string After, bool NeedsUserApproval);

/// <summary><c>mdm push|remove</c>, <c>profiles install|remove</c> <c>--json</c>.</summary>
internal sealed record ProfileChangeJson(
    string Action,
    string PayloadIdentifier,
    string PayloadUuid,
    string? DisplayName,
    string? Signer,
    string InstalledBy,
    string? ReplacedProfileUuid,
    IReadOnlyList<PayloadChangeJson> Payloads,
    IReadOnlyList<string> SharesPayloadUuidsWith,
    IReadOnlyList<MdmRowJson> KextPolicyMdm,
    bool AllowUserOverrides,
    bool AllowNonAdminUserApprovals,
    IReadOnlyList<string> MdmRowsAdded,
    IReadOnlyList<string> MdmRowsRemoved,
    IReadOnlyList<ConsentChangeJson> ConsentChanges)
{
    /// <summary>The JSON form of <paramref name="r"/>.</summary>
    public static ProfileChangeJson From(ProfileInstallResult r)
    {
        ArgumentNullException.ThrowIfNull(r);
        return new(MachineOption.Kebab(r.Action), r.Profile.PayloadIdentifier, r.Profile.PayloadUuid, r.Profile.DisplayName, r.Profile.SignerSubject,
            MachineOption.Kebab(r.InstalledBy), r.ReplacedProfileUuid,
            r.Payloads.Select(p => new PayloadChangeJson(p.PayloadType, p.PayloadIdentifier, p.PayloadUuid, MachineOption.Kebab(p.Change))).ToArray(),
            r.SharesPayloadUuidsWith,
            r.Combined.Allowed.Select(a => new MdmRowJson(a.TeamId, a.BundleId, a.PayloadUuid)).ToArray(),
            r.Combined.AllowUserOverrides, r.Combined.AllowNonAdminUserApprovals, r.MdmRowsAdded, r.MdmRowsRemoved,
            r.ConsentChanges.Select(c => new ConsentChangeJson(c.BundleId, c.Path, MachineOption.Kebab(c.Before), MachineOption.Kebab(c.After), c.NeedsUserApproval)).ToArray());
    }
}

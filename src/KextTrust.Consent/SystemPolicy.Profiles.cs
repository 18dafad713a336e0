using System.Security.Cryptography;
using KextTrust.Consent.Mdm;
using KextTrust.Consent.Policy;
using KextTrust.Formats;
using KextTrust.Formats.PropertyLists;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;
using KextTrust.Kexts.Signing;
using KextTrust.Machine;
using Microsoft.Data.Sqlite;

namespace KextTrust.Consent;

// Configuration profiles delivered by MDM or installed by hand.
public sealed partial class SystemPolicy
{
    /// <summary>
    /// Delivers a profile over MDM (needs enrollment). Kext policy payloads need 10.13.2+; the profile is stored
    /// (replacing one with the same PayloadIdentifier) and kext_policy_mdm is rebuilt from every stored profile.
    /// </summary>
    public ProfileInstallResult PushProfile(string path)
    {
        var profile = MdmProfile.Read(path);
        if (Description.Mdm == MdmEnrollment.None)
        {
            throw new ConsentException(ConsentCode.NotEnrolled, path, "the Mac is not enrolled in MDM");
        }
        if (profile.KernelExtensionPolicies.Count > 0 && Description.Version < new MacOSVersion(10, 13, 2))
        {
            throw new ConsentException(ConsentCode.UnsupportedOSVersion, path, $"{MdmProfile.KernelExtensionPolicyType} needs macOS 10.13.2 or later (this Mac runs {Description.MacOSVersion})");
        }
        if (profile.SystemExtensionPolicies.Count > 0 && Description.Version < new MacOSVersion(10, 15))
        {
            throw new ConsentException(ConsentCode.UnsupportedOSVersion, path, $"{MdmProfile.SystemExtensionPolicyType} needs macOS 10.15 or later");
        }
        return StoreProfile(profile, File.ReadAllBytes(path));
    }

    /// <summary>Installs a profile by hand (<c>profiles install</c>): refused for kext policy payloads, as macOS does.</summary>
    public ProfileInstallResult InstallProfileManually(string path)
    {
        var profile = MdmProfile.Read(path);
        if (profile.KernelExtensionPolicies.Count > 0)
        {
            throw new ConsentException(ConsentCode.ManualInstallNotAllowed, path, $"{MdmProfile.KernelExtensionPolicyType} payloads can only be delivered by MDM (manual install not allowed)");
        }
        return StoreProfile(profile, File.ReadAllBytes(path));
    }

    private ProfileInstallResult StoreProfile(MdmProfile profile, byte[] bytes)
    {
        var name = SafeFileName(profile.PayloadIdentifier) + ".mobileconfig";
        var others = ReadProfiles().Where(p => p.PayloadIdentifier != profile.PayloadIdentifier).ToArray();
        var clash = others.SelectMany(p => p.KernelExtensionPolicies.Select(k => k.PayloadUuid))
            .Intersect(profile.KernelExtensionPolicies.Select(k => k.PayloadUuid), StringComparer.OrdinalIgnoreCase).FirstOrDefault();
        if (clash is not null)
        {
            throw new ConsentException(ConsentCode.ProfileInvalid, null, $"payload UUID {clash} is already used by another installed profile");
        }
        var combined = CombinedKextPolicy.Combine(others.Append(profile));
        var tx = Store.Begin();
        tx.StageFile(MachineLayout.ProfileStore + "/" + name, bytes);
        tx.StageDatabase(db => db.ReplaceMdm(combined.Allowed.Select(a => ((string?)a.TeamId, a.BundleId, (string?)a.PayloadUuid)),
            [("mdm.AllowUserOverrides", combined.AllowUserOverrides), ("mdm.AllowNonAdminUserApprovals", combined.AllowNonAdminUserApprovals)]));
        tx.Commit();
        return new ProfileInstallResult(profile, combined);
    }

    private static string SafeFileName(string id) => new(id.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' ? c : '_').ToArray());
}

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
    /// <summary>Delivers a profile over MDM (<see cref="ConfigurationProfiles.Install"/> has the rules).</summary>
    public ProfileInstallResult PushProfile(string path) => ConfigurationProfiles.Install(this, path, ProfileChannel.Mdm);

    /// <summary>Installs a profile by hand (<c>profiles install</c>): refused for kext policy payloads, as macOS does.</summary>
    public ProfileInstallResult InstallProfileManually(string path) => ConfigurationProfiles.Install(this, path, ProfileChannel.Manual);
}

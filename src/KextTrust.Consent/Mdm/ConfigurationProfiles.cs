using System.Security.Cryptography;
using System.Text;
using KextTrust.Machine;
using KextTrust.Consent.Policy;
using KextTrust.Formats;
using KextTrust.Formats.PropertyLists;
using KextTrust.Kexts.Kpi;

namespace KextTrust.Consent.Mdm;

/// <summary>Who installed a configuration profile.</summary>
public enum ProfileChannel
{
    /// <summary>Delivered by the MDM server (<c>InstallProfile</c>).</summary>
    Mdm,
    /// <summary>Installed by hand (<c>profiles install</c>, System Settings).</summary>
    Manual,
}

/// <summary>What an install or removal did to the set of installed profiles.</summary>
public enum ProfileAction
{
    /// <summary>No installed profile had this PayloadIdentifier: the profile was added beside the others.</summary>
    Added,
    /// <summary>An installed profile had the same PayloadIdentifier: it was replaced.</summary>
    Replaced,
    /// <summary>The profile was removed.</summary>
    Removed,
}

/// <summary>What happened to one payload.</summary>
public enum PayloadChange
{
    /// <summary>New in this profile.</summary>
    Added,
    /// <summary>Same PayloadIdentifier and PayloadUUID in the old and new profile: updated in place.</summary>
    Updated,
    /// <summary>Only in the replaced (or removed) profile.</summary>
    Removed,
}

/// <summary>A profile installed on the Mac.</summary>
/// <param name="File">The stored file, relative to the machine folder.</param>
public sealed record InstalledProfile(MdmProfile Profile, ProfileChannel InstalledBy, string File);

/// <summary>One payload's fate in an install or removal.</summary>
public sealed record PayloadChangeEntry(string PayloadType, string PayloadIdentifier, string PayloadUuid, PayloadChange Change);

/// <summary>An installed kext whose consent changed with the profile.</summary>
/// <param name="NeedsUserApproval">True when nothing else allows it now: it needs user approval again.</param>
public sealed record ConsentChange(string BundleId, string Path, ConsentSource Before, ConsentSource After, bool NeedsUserApproval);

/// <summary>What <see cref="ConfigurationProfiles.Install"/> or <see cref="ConfigurationProfiles.Remove"/> did.</summary>
/// <param name="ReplacedProfileUuid">The top-level PayloadUUID of the replaced profile (as written), when one was replaced.</param>
/// <param name="SharesPayloadUuidsWith">Other installed profiles that use one of this profile's payload UUIDs (macOS installs them side by side).</param>
/// <param name="MdmRowsAdded">kext_policy_mdm rows (team, bundle) that appeared.</param>
/// <param name="MdmRowsRemoved">kext_policy_mdm rows that disappeared.</param>
public sealed record ProfileInstallResult(
    ProfileAction Action,
    MdmProfile Profile,
    ProfileChannel InstalledBy,
    string? ReplacedProfileUuid,
    IReadOnlyList<PayloadChangeEntry> Payloads,
    IReadOnlyList<string> SharesPayloadUuidsWith,
    CombinedKextPolicy Combined,
    IReadOnlyList<string> MdmRowsAdded,
    IReadOnlyList<string> MdmRowsRemoved,
    IReadOnlyList<ConsentChange> ConsentChanges);

/// <summary>
/// The configuration profiles installed on a simulated Mac, with macOS's rules (Apple's <c>TopLevel</c> and
/// <c>CommonPayloadKeys</c> reference, apple/device-management):
/// <list type="bullet">
/// <item>The top-level <c>PayloadIdentifier</c> decides: "the system uses this string to determine whether to replace an
/// existing profile or add it as a new profile". A profile with the identifier of an installed one replaces it;
/// payloads with the same <c>PayloadIdentifier</c> and <c>PayloadUUID</c> in both are updated, the old profile's others
/// removed, the new one's others added; its kext_policy_mdm rows are replaced in the same transaction.</item>
/// <item><c>PayloadUUID</c> is an opaque string ("the actual content is unimportant"): kept as written, compared exactly.
/// A profile with another identifier is added beside the installed ones even when it reuses their payload UUIDs (the
/// result says which profiles share them).</item>
/// <item>Within one profile a payload UUID or payload identifier used twice is refused (<see cref="MdmProfile.Parse"/>).</item>
/// </list>
/// KextTrust's reading where Apple documents nothing: a profile installed by MDM can be replaced or removed only by MDM
/// (<c>profiles install</c>/<c>profiles remove</c> are refused, <see cref="ConsentCode.ProfileManagedByMdm"/>), and MDM's
/// <c>RemoveProfile</c> removes only profiles MDM installed. kext_policy_mdm rows that no installed profile's payload
/// owns (rows of a database adopted from a real Mac) are left as they are.
/// </summary>
public static class ConfigurationProfiles
{
    /// <summary>The file recording who installed each profile (identifier → MDM|Manual).</summary>
    internal const string ChannelsFile = MachineLayout.ProfileStore + "/InstalledBy.plist";

    /// <summary>The installed profiles, ordered by PayloadIdentifier.</summary>
    public static IReadOnlyList<InstalledProfile> Read(SystemPolicy mac)
    {
        ArgumentNullException.ThrowIfNull(mac);
        var dir = mac.Store.PathOf(MachineLayout.ProfileStore);
        if (!Directory.Exists(dir))
        {
            return [];
        }
        var channels = ReadChannels(mac);
        return Directory.EnumerateFiles(dir, "*.mobileconfig")
            .Select(f => (File: f, Profile: MdmProfile.Read(f)))
            .Select(x => new InstalledProfile(x.Profile, channels.GetValueOrDefault(x.Profile.PayloadIdentifier, ProfileChannel.Mdm),
                MachineLayout.ProfileStore + "/" + Path.GetFileName(x.File)))
            .OrderBy(p => p.Profile.PayloadIdentifier, StringComparer.Ordinal)
            .ToArray();
    }

    /// <summary>
    /// Installs the profile at <paramref name="path"/> through <paramref name="channel"/>: MDM needs enrollment and, for
    /// the kernel-extension policy, macOS 10.13.2; by hand that payload is refused.
    /// </summary>
    internal static ProfileInstallResult Install(SystemPolicy mac, string path, ProfileChannel channel)
    {
        ArgumentNullException.ThrowIfNull(mac);
        var profile = MdmProfile.Read(path);
        var d = mac.Description;
        if (channel == ProfileChannel.Mdm)
        {
            if (d.Mdm == MdmEnrollment.None)
            {
                throw new ConsentException(ConsentCode.NotEnrolled, path, "the Mac is not enrolled in MDM");
            }
            if (profile.KernelExtensionPolicies.Count > 0 && d.Version < new MacOSVersion(10, 13, 2))
            {
                throw new ConsentException(ConsentCode.UnsupportedOSVersion, path, $"{MdmProfile.KernelExtensionPolicyType} needs macOS 10.13.2 or later (this Mac runs {d.MacOSVersion})");
            }
            if (profile.SystemExtensionPolicies.Count > 0 && d.Version < new MacOSVersion(10, 15))
            {
                throw new ConsentException(ConsentCode.UnsupportedOSVersion, path, $"{MdmProfile.SystemExtensionPolicyType} needs macOS 10.15 or later");
            }
        }
        else if (profile.KernelExtensionPolicies.Count > 0)
        {
            throw new ConsentException(ConsentCode.ManualInstallNotAllowed, path, $"{MdmProfile.KernelExtensionPolicyType} payloads can only be delivered by MDM (manual install not allowed)");
        }
        var installed = Read(mac);
        var old = installed.FirstOrDefault(p => p.Profile.PayloadIdentifier == profile.PayloadIdentifier);
        if (old is not null && old.InstalledBy == ProfileChannel.Mdm && channel == ProfileChannel.Manual)
        {
            throw new ConsentException(ConsentCode.ProfileManagedByMdm, path,
                $"the installed profile {profile.PayloadIdentifier} was installed by MDM; only MDM can replace it");
        }
        var others = installed.Where(p => p != old).ToArray();
        var mine = profile.Payloads.Select(p => p.PayloadUuid).ToHashSet(StringComparer.Ordinal);
        var sharing = others.Where(o => o.Profile.Payloads.Any(p => mine.Contains(p.PayloadUuid))).Select(o => o.Profile.PayloadIdentifier).ToArray();
        var payloads = old is null
            ? profile.Payloads.Select(p => Entry(p, PayloadChange.Added)).ToArray()
            : DiffPayloads(old.Profile, profile);
        var bytes = File.ReadAllBytes(path);
        return Commit(mac, installed, others.Select(o => o.Profile).Append(profile).ToArray(), tx =>
        {
            var file = FileNameFor(profile.PayloadIdentifier);
            if (old is not null && old.File != file)
            {
                // Stored under an older naming: the new file replaces it.
                tx.StageDelete(old.File);
            }
            tx.StageFile(file, bytes);
            var channels = ReadChannels(mac);
            channels[profile.PayloadIdentifier] = channel;
            tx.StageFile(ChannelsFile, ChannelsBytes(channels));
        }, (combined, added, removed, consent) => new ProfileInstallResult(old is null ? ProfileAction.Added : ProfileAction.Replaced, profile, channel,
            old?.Profile.PayloadUuid, payloads, sharing, combined, added, removed, consent));
    }

    /// <summary>
    /// Removes the installed profile <paramref name="identifier"/>: MDM's <c>RemoveProfile</c> (<paramref name="channel"/>
    /// <see cref="ProfileChannel.Mdm"/>) or <c>profiles remove</c> (<see cref="ProfileChannel.Manual"/>). Its
    /// kext_policy_mdm rows go in the same transaction; kexts it alone allowed need user approval again.
    /// </summary>
    public static ProfileInstallResult Remove(SystemPolicy mac, string identifier, ProfileChannel channel)
    {
        ArgumentNullException.ThrowIfNull(mac);
        ArgumentNullException.ThrowIfNull(identifier);
        if (channel == ProfileChannel.Mdm && mac.Description.Mdm == MdmEnrollment.None)
        {
            throw new ConsentException(ConsentCode.NotEnrolled, null, "the Mac is not enrolled in MDM");
        }
        var installed = Read(mac);
        var old = installed.FirstOrDefault(p => p.Profile.PayloadIdentifier == identifier)
            ?? throw new ConsentException(ConsentCode.ProfileNotInstalled, null, $"no installed profile has the identifier {identifier}");
        if (old.InstalledBy != channel)
        {
            throw new ConsentException(ConsentCode.ProfileManagedByMdm, null, channel == ProfileChannel.Manual
                ? $"the profile {identifier} was installed by MDM; only MDM can remove it (RemoveProfile)"
                : $"the profile {identifier} was installed by hand; MDM's RemoveProfile removes only profiles MDM installed");
        }
        return Commit(mac, installed, installed.Where(p => p != old).Select(p => p.Profile).ToArray(), tx =>
        {
            tx.StageDelete(old.File);
            var channels = ReadChannels(mac);
            channels.Remove(identifier);
            tx.StageFile(ChannelsFile, ChannelsBytes(channels));
        }, (combined, added, removed, consent) => new ProfileInstallResult(ProfileAction.Removed, old.Profile, old.InstalledBy, null,
            old.Profile.Payloads.Select(p => Entry(p, PayloadChange.Removed)).ToArray(), [], combined, added, removed, consent));
    }

    private static ProfileInstallResult Commit(SystemPolicy mac, IReadOnlyList<InstalledProfile> before, IReadOnlyList<MdmProfile> after, Action<MachineTransaction> stageFiles,
        Func<CombinedKextPolicy, IReadOnlyList<string>, IReadOnlyList<string>, IReadOnlyList<ConsentChange>, ProfileInstallResult> result)
    {
        var consentBefore = mac.DecideAll();
        var combined = CombinedKextPolicy.Combine(after);
        var owned = before.SelectMany(p => p.Profile.KernelExtensionPolicies).Concat(after.SelectMany(p => p.KernelExtensionPolicies))
            .Select(k => k.PayloadUuid).ToHashSet(StringComparer.Ordinal);
        var rowsBefore = mac.ReadPolicy().Mdm.Select(RowName).ToHashSet(StringComparer.Ordinal);
        var tx = mac.Store.Begin();
        stageFiles(tx);
        tx.StageDatabase(db => db.ReplaceMdm(combined.Allowed,
            [("mdm.AllowUserOverrides", combined.AllowUserOverrides), ("mdm.AllowNonAdminUserApprovals", combined.AllowNonAdminUserApprovals)], owned));
        tx.Commit();
        var rowsAfter = mac.ReadPolicy().Mdm.Select(RowName).ToHashSet(StringComparer.Ordinal);
        var consentAfter = mac.DecideAll().ToDictionary(k => k.Path, StringComparer.Ordinal);
        var changes = consentBefore
            .Where(b => consentAfter.TryGetValue(b.Path, out var a) && a.ConsentSource != b.ConsentSource)
            .Select(b => new ConsentChange(b.BundleId, b.Path, b.ConsentSource, consentAfter[b.Path].ConsentSource, consentAfter[b.Path].ConsentSource == ConsentSource.None))
            .ToArray();
        return result(combined, rowsAfter.Except(rowsBefore).Order(StringComparer.Ordinal).ToArray(), rowsBefore.Except(rowsAfter).Order(StringComparer.Ordinal).ToArray(), changes);
    }

    private static string RowName(KextPolicyMdmRow r) => $"{(string.IsNullOrEmpty(r.TeamId) ? "''" : r.TeamId)}/{r.BundleId ?? "*"}";

    private static PayloadChangeEntry Entry(PayloadSummary p, PayloadChange c) => new(p.PayloadType, p.PayloadIdentifier, p.PayloadUuid, c);

    private static PayloadChangeEntry[] DiffPayloads(MdmProfile old, MdmProfile next)
    {
        static (string, string) Key(PayloadSummary p) => (p.PayloadIdentifier, p.PayloadUuid);
        var oldKeys = old.Payloads.Select(Key).ToHashSet();
        var newKeys = next.Payloads.Select(Key).ToHashSet();
        return next.Payloads.Select(p => Entry(p, oldKeys.Contains(Key(p)) ? PayloadChange.Updated : PayloadChange.Added))
            .Concat(old.Payloads.Where(p => !newKeys.Contains(Key(p))).Select(p => Entry(p, PayloadChange.Removed)))
            .ToArray();
    }

    /// <summary>The stored file of a profile: a readable form of the identifier and a hash of it (identifiers that differ only in characters a file name cannot hold do not collide).</summary>
    internal static string FileNameFor(string identifier)
    {
        var readable = new string(identifier.Take(64).Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' ? c : '_').ToArray());
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(identifier)).AsSpan(0, 6));
        return $"{MachineLayout.ProfileStore}/{readable}.{hash}.mobileconfig";
    }

    private static Dictionary<string, ProfileChannel> ReadChannels(SystemPolicy mac)
    {
        var path = mac.Store.PathOf(ChannelsFile);
        var result = new Dictionary<string, ProfileChannel>(StringComparer.Ordinal);
        if (!File.Exists(path))
        {
            return result;
        }
        try
        {
            var root = PropertyList.ReadFile(path) as PlistDictionary ?? throw new MachineException(MachineCode.MachineInvalid, path, "the root is not a dictionary");
            foreach (var (id, value) in root)
            {
                result[id] = (value as PlistString)?.Value switch
                {
                    "MDM" => ProfileChannel.Mdm,
                    "Manual" => ProfileChannel.Manual,
                    _ => throw new MachineException(MachineCode.MachineInvalid, path, $"{id}: expected the string MDM or Manual"),
                };
            }
        }
        catch (KextTrustFormatException e)
        {
            throw new MachineException(MachineCode.MachineInvalid, path, MdmProfile.WithoutPath(e.Message, path), e);
        }
        return result;
    }

    private static byte[] ChannelsBytes(Dictionary<string, ProfileChannel> channels) =>
        PropertyList.ToXml(new PlistDictionary(channels.OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => (kv.Key, (PlistNode)new PlistString(kv.Value == ProfileChannel.Mdm ? "MDM" : "Manual"))).ToArray()));
}

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

// spctl kext-consent (recoveryOS only) and the exclude list.
public sealed partial class SystemPolicy
{
    /// <summary><c>spctl kext-consent enable|disable</c> (recoveryOS only).</summary>
    public KextConsentNvram SpctlSetEnabled(bool enabled)
    {
        RequireRecovery("spctl kext-consent");
        return WriteNvram(ReadNvram() with { ConsentEnabled = enabled });
    }

    /// <summary><c>spctl kext-consent add|remove TEAMID</c> (recoveryOS only).</summary>
    public KextConsentNvram SpctlTeam(string teamId, bool add)
    {
        RequireRecovery("spctl kext-consent");
        if (teamId.Length is 0 or > 64 || !teamId.All(char.IsAsciiLetterOrDigit))
        {
            throw new ConsentException(ConsentCode.InvalidArgument, null, $"'{teamId}' is not a team identifier");
        }
        var n = ReadNvram();
        var teams = add ? n.Teams.Append(teamId).Distinct(StringComparer.Ordinal) : n.Teams.Where(t => t != teamId);
        return WriteNvram(n with { Teams = teams.Order(StringComparer.Ordinal).ToArray() });
    }

    private KextConsentNvram WriteNvram(KextConsentNvram n)
    {
        var tx = Store.Begin();
        tx.StageFile(MachineLayout.Nvram, NvramBytes(n));
        tx.Commit();
        return n;
    }



    /// <summary>Replaces the exclude list with the Info.plist at <paramref name="path"/> if its CFBundleVersion is newer.</summary>
    public ExcludeList ReplaceExcludeList(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (IOException e)
        {
            throw new ConsentException(ConsentCode.ExcludeListInvalid, path, e.Message, e);
        }
        var offered = ExcludeList.Parse(bytes, path);
        var current = ReadExcludeList();
        if (!(KextVersion.Parse(offered.Version) > KextVersion.Parse(current.Version)))
        {
            throw new ConsentException(ConsentCode.ExcludeListNotNewer, path, $"version {offered.Version} is not newer than the installed {current.Version}");
        }
        var tx = Store.Begin();
        tx.StageFile(MachineLayout.ExcludeListInfoPlist, bytes);
        tx.Commit();
        return offered;
    }
}

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

// The user-authorized kext list derived from the Mac's consent state.
public sealed partial class SystemPolicy
{
    /// <summary>
    /// Why user consent is not in force on this Mac (macOS 10.12 or earlier, SIP's CSR_ALLOW_UNAPPROVED_KEXTS,
    /// early MDM enrollment, <c>spctl kext-consent disable</c>), or null when it is. When it is not, the UAKL names
    /// every installed kext.
    /// </summary>
    public string? UserConsentNotInForce => LoadState().ConsentNotInForce;

    /// <summary>Derives the user-authorized kext list from the Mac's state.</summary>
    public UserApprovedKextList BuildUakl()
    {
        var s = LoadState();
        var entries = new List<UaklEntry>();
        if (s.ConsentNotInForce is not null)
        {
            foreach (var k in InstalledKexts())
            {
                var sig = VerifySignature(Store.PathOf(k.RelativePath));
                entries.Add(new UaklEntry(PolicyTeamId(sig), k.BundleId, FindConsent(s, sig, k.BundleId).Source, sig.PrimaryCdHash));
            }
            return UserApprovedKextList.Create(entries);
        }
        var userAllowed = !s.Mdm.Present || s.Mdm.AllowUserOverrides;
        foreach (var r in s.Policy.Policy.Where(r => r.Allowed))
        {
            var f = r.Flags ?? 0;
            var source = userAllowed && (f & KextPolicyFlags.Replacement) != 0 ? ConsentSource.Replacement
                : (f & KextPolicyFlags.Grandfathered) != 0 ? ConsentSource.Grandfathered
                : userAllowed && (f & KextPolicyFlags.UserApproved) != 0 ? ConsentSource.User
                : ConsentSource.None;
            if (source != ConsentSource.None)
            {
                entries.Add(new UaklEntry(r.TeamId ?? "", source == ConsentSource.User && (r.TeamId ?? "").Length > 0 ? "" : r.BundleId ?? "", source, null));
            }
        }
        entries.AddRange(s.Policy.Mdm.Where(r => r.Allowed).Select(r => new UaklEntry(r.TeamId ?? "", r.BundleId ?? "", ConsentSource.Mdm, null)));
        entries.AddRange(s.Nvram.Teams.Select(t => new UaklEntry(t, "", ConsentSource.Spctl, null)));
        return UserApprovedKextList.Create(entries);
    }

    /// <summary>Writes the current UAKL to <see cref="MachineLayout.Uakl"/> (atomically) and returns it.</summary>
    internal UserApprovedKextList WriteUakl()
    {
        var uakl = BuildUakl();
        var tx = Store.Begin();
        tx.StageFile(MachineLayout.Uakl, uakl.ToBytes());
        tx.Commit();
        return uakl;
    }
}

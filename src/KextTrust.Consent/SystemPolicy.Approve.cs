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

// The "Allow" button.
public sealed partial class SystemPolicy
{
    /// <summary>
    /// The "Allow" button in Security &amp; Privacy: needs a "blocked" alert for the team (or bundle), within 30
    /// minutes of it by the machine clock, the user's password, and on macOS 11+ an administrator unless MDM
    /// sets AllowNonAdminUserApprovals. Approval is per team id (per bundle id for unsigned kexts, team '').
    /// </summary>
    public ApprovalResult Approve(string? teamId, string? bundleId, string userName, string password)
    {
        if ((teamId is null) == (bundleId is null))
        {
            throw new ConsentException(ConsentCode.InvalidArgument, null, "give exactly one of --team or --bundle");
        }
        var user = Description.FindUser(userName);
        if (user is null || !user.Password.Verify(password))
        {
            throw new ConsentException(ConsentCode.AuthenticationFailed, null, "unknown user or wrong password");
        }
        if (Description.InRecovery)
        {
            throw new ConsentException(ConsentCode.InvalidArgument, null, "kexts are approved in macOS System Settings, not recoveryOS");
        }
        var policy = ReadPolicy();
        var state = LoadState(policy);
        if (state.ConsentNotInForce is { } why)
        {
            throw new ConsentException(ConsentCode.UserApprovalDisabled, null, $"user approval is not in force ({why})");
        }
        if (state.Mdm.Present && !state.Mdm.AllowUserOverrides)
        {
            throw new ConsentException(ConsentCode.UserApprovalDisabled, null, "an MDM kernel-extension policy without AllowUserOverrides forbids user approvals");
        }
        if (Description.Version >= new MacOSVersion(11, 0) && !user.IsAdmin && !state.Mdm.AllowNonAdminUserApprovals)
        {
            throw new ConsentException(ConsentCode.AdminRequired, null, $"{userName} is not an administrator; on macOS 11 and later approving a kext needs one (unless MDM sets AllowNonAdminUserApprovals)");
        }
        var pending = policy.History.Where(h => ((h.Flags ?? 0) & KextPolicyFlags.HistoryAlertShown) != 0).ToArray();
        LoadHistoryRow[] rows;
        if (bundleId is not null)
        {
            var first = pending.FirstOrDefault(h => h.BundleId == bundleId)
                ?? throw new ConsentException(ConsentCode.NoPendingAlert, null, $"no blocked-kext alert was shown for {bundleId}");
            teamId = first.TeamId ?? "";
            rows = teamId.Length == 0 ? pending.Where(h => h.BundleId == bundleId).ToArray() : pending.Where(h => h.TeamId == teamId).ToArray();
        }
        else
        {
            if (teamId!.Length == 0)
            {
                throw new ConsentException(ConsentCode.InvalidArgument, null, "unsigned kexts (team '') are approved with --bundle");
            }
            rows = pending.Where(h => h.TeamId == teamId).ToArray();
            if (rows.Length == 0)
            {
                throw new ConsentException(ConsentCode.NoPendingAlert, null, $"no blocked-kext alert was shown for team {teamId}");
            }
        }
        var alert = rows.Max(r => KextPolicyDatabase.ParseTimestamp(r.LastSeen) ?? DateTimeOffset.MinValue);
        if (Description.Clock - alert > ApprovalWindow)
        {
            throw new ConsentException(ConsentCode.ApprovalWindowExpired, null,
                $"the alert for team {(teamId.Length == 0 ? "'' (unsigned)" : teamId)} was shown at {KextPolicyDatabase.Timestamp(alert)} UTC; approval is only possible for 30 minutes after it (now {KextPolicyDatabase.Timestamp(Description.Clock)}): load the kext again to re-show the alert");
        }
        var signatures = rows.Select(r => (Row: r, Signature: VerifySignature(Store.PathOf(r.Path.TrimStart('/'))))).ToArray();
        if (Description.SipEnforcesKexts && signatures.FirstOrDefault(x => x.Signature.Status == KextSignatureStatus.Invalid) is { Signature: not null } bad)
        {
            // The kext changed since its alert: SIP would refuse its signature, so approving it would approve what nobody signed.
            throw new KextSignatureRefusedException(bad.Signature, bad.Row.Path,
                $"{bad.Row.BundleId}'s signature does not validate and SIP enforces kext signatures");
        }
        var developer = signatures.Select(x => x.Signature.Signer).FirstOrDefault(n => n is not null) ?? "";
        var tx = Store.Begin();
        tx.StageDatabase(db =>
        {
            foreach (var r in rows)
            {
                db.Allow(teamId, r.BundleId ?? "", developer, KextPolicyFlags.UserApproved);
                db.MarkAllowed(r.Path);
            }
        });
        tx.Commit();
        return new ApprovalResult(teamId, rows.Select(r => r.BundleId ?? "").Distinct().ToArray(), userName, Description.Clock);
    }
}

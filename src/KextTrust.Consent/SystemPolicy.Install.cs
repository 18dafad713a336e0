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

// Installing kexts: copy, staging, the load request and its "blocked" alert.
public sealed partial class SystemPolicy
{
    /// <summary>
    /// Installs kexts into /Library/Extensions, stages them (SIP on and validation passed), records each load
    /// request in kext_load_history_v3 and, when consent is needed and missing, the "blocked" alert.
    /// A kext with the bundle id of an installed, approved kext of the same team replaces it and needs no approval.
    /// </summary>
    public IReadOnlyList<InstallResult> Install(IEnumerable<string> kextPaths)
    {
        var paths = kextPaths.ToArray();
        if (paths.Length == 0)
        {
            throw new ConsentException(ConsentCode.InvalidArgument, null, "no kext given");
        }
        if (Description.InRecovery)
        {
            throw new ConsentException(ConsentCode.InvalidArgument, null, "kexts are installed from macOS, not recoveryOS");
        }
        var installed = InstalledKexts();
        var policy = ReadPolicy();
        var state = LoadState(policy);
        var tx = Store.Begin();
        var results = new List<InstallResult>();
        var historyRows = new List<(string Path, string Team, string Bundle, long Flags, string? CdHash)>();
        var replacementRows = new List<(string Team, string Bundle, string Developer)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var source in paths)
        {
            var bundle = OpenKext(source);
            var bundleId = bundle.BundleId!;
            if (!seen.Add(bundleId))
            {
                throw new ConsentException(ConsentCode.InvalidArgument, source, $"{bundleId} is given twice");
            }
            var rel = MachineLayout.LibraryExtensions + "/" + Path.GetFileName(Path.TrimEndingDirectorySeparator(bundle.Path));
            var sig = VerifySignature(bundle.Path);
            // Where SIP enforces kext signatures, a signature that is present but does not validate ends the request
            // at the kext loader: the kext is not staged and no "blocked" alert offers to approve it.
            var signatureInvalid = Description.SipEnforcesKexts && sig.Status == KextSignatureStatus.Invalid;
            var previous = installed.Where(k => k.BundleId == bundleId).ToArray();
            foreach (var p in previous.Where(p => p.RelativePath != rel))
            {
                tx.StageDelete(p.RelativePath);
                tx.StageDelete(MachineLayout.StagedPathOf(p.RelativePath));
            }
            var replaced = previous.Length > 0 && Description.Version >= new MacOSVersion(10, 13)
                && policy.Policy.Any(r => r.Allowed && r.TeamId == PolicyTeamId(sig) && r.BundleId == bundleId);
            tx.StageDirectoryCopy(rel, bundle.Path);
            var staged = false;
            var fsOk = FilesystemProblem(bundle.Path) is null;
            if (Description.SipEnforcesKexts && fsOk && sig.Refusal is null)
            {
                tx.StageDirectoryCopy(MachineLayout.StagedPathOf(rel), bundle.Path);
                staged = true;
            }
            else if (previous.Any(p => p.RelativePath == rel))
            {
                tx.StageDelete(MachineLayout.StagedPathOf(rel));
            }
            if (replaced)
            {
                replacementRows.Add((PolicyTeamId(sig), bundleId, sig.Signer ?? ""));
            }
            var needsAlert = Description.Version >= new MacOSVersion(10, 13) && !replaced && !signatureInvalid
                && FindConsent(state, sig, bundleId).Source == ConsentSource.None;
            if (Description.Version >= new MacOSVersion(10, 13))
            {
                var flags = (needsAlert ? KextPolicyFlags.HistoryAlertShown : KextPolicyFlags.HistoryAllowed) | (fsOk && !signatureInvalid ? 0 : KextPolicyFlags.HistoryValidationFailed);
                historyRows.Add(("/" + rel, PolicyTeamId(sig), bundleId, flags, sig.PrimaryCdHash));
            }
            results.Add(new InstallResult(bundleId, bundle.VersionString ?? "", "/" + rel, staged, replaced, needsAlert, needsAlert ? Description.Clock : null, sig, sig.Signer));
        }
        if (historyRows.Count > 0 || replacementRows.Count > 0)
        {
            tx.StageDatabase(db =>
            {
                foreach (var h in historyRows)
                {
                    db.RecordLoadRequest(h.Path, h.Team, h.Bundle, Description.BootSessionUuid, Description.Clock, h.Flags, h.CdHash);
                }
                foreach (var r in replacementRows)
                {
                    db.MarkReplacement(r.Team, r.Bundle);
                }
            });
        }
        tx.Commit();
        return results;
    }

    private static KextBundle OpenKext(string path)
    {
        KextBundle bundle;
        try
        {
            bundle = KextBundle.Open(path);
        }
        catch (KextBundleException e)
        {
            throw new ConsentException(ConsentCode.UnreadableKext, path, e.Message, e);
        }
        if (bundle.BundleId is null || bundle.Version is null)
        {
            throw new ConsentException(ConsentCode.UnreadableKext, path, "the kext has no valid CFBundleIdentifier / CFBundleVersion");
        }
        return bundle;
    }

    /// <summary>The first ownership/permission problem of a bundle tree (Unix mode bits: no group/other write), or null.</summary>
    internal static string? FilesystemProblem(string bundlePath)
    {
        if (OperatingSystem.IsWindows())
        {
            return null;
        }
        foreach (var p in Directory.EnumerateFileSystemEntries(bundlePath, "*", SearchOption.AllDirectories).Prepend(bundlePath))
        {
            if (new FileInfo(p).LinkTarget is not null)
            {
                return $"{p} is a symbolic link";
            }
            var mode = File.GetUnixFileMode(p);
            if ((mode & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0)
            {
                return $"{p} is writable by group or others (mode {Convert.ToString((int)mode, 8)})";
            }
        }
        return null;
    }
}

using System.Security.Cryptography;
using KextTrust.Consent.Mdm;
using KextTrust.Consent.Policy;
using KextTrust.Formats;
using KextTrust.Formats.PropertyLists;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;
using KextTrust.Kexts.Signing;
using Microsoft.Data.Sqlite;

namespace KextTrust.Consent.Machine;

/// <summary>
/// Stages files of a new Mac in <see cref="Mac.Init"/>'s transaction, before its description: they are committed with
/// the Mac or not at all.
/// </summary>
public delegate void MachineInitStage(MachineStore store, MachineDescription description, MachineTransaction transaction);

/// <summary>Options of <see cref="Mac.Init"/>.</summary>
public sealed record MachineInitOptions(MachinePlatform Platform, string MacOSVersion, string AdminName, string AdminPassword)
{
    /// <summary>An optional standard (non-admin) user.</summary>
    public (string Name, string Password)? StandardUser { get; init; }
    /// <summary>MDM enrollment.</summary>
    public MdmEnrollment Mdm { get; init; } = MdmEnrollment.None;
    /// <summary>SIP configuration (0 = fully enabled).</summary>
    public uint CsrActiveConfig { get; init; }
    /// <summary>PBKDF2 iterations; below 100,000 only for tests, explicitly.</summary>
    public int PasswordIterations { get; init; } = PasswordHash.DefaultIterations;
    /// <summary>Initial clock; default now.</summary>
    public DateTimeOffset? Clock { get; init; }

    /// <summary>
    /// A KextPolicy database copied from a real Mac to start from (every row kept; see <see cref="KextPolicyAdopter"/>);
    /// null for an empty one.
    /// </summary>
    public string? KextPolicySource { get; init; }

    /// <summary>An extra trusted root certificate (PEM) stored in the machine folder: kexts signed under it verify on this Mac.</summary>
    public string? TrustRootPem { get; init; }
}

/// <summary>NVRAM state of <c>spctl kext-consent</c> (Intel keeps it in NVRAM; an NVRAM reset re-enables consent).</summary>
public sealed record KextConsentNvram(bool ConsentEnabled, IReadOnlyList<string> Teams)
{
    /// <summary>The default: consent required, no teams.</summary>
    public static KextConsentNvram Default { get; } = new(true, []);
}

/// <summary>What <see cref="Mac.Install"/> did with one kext.</summary>
public sealed record InstallResult(string BundleId, string Version, string InstalledPath, bool Staged, bool Replaced, bool AlertShown, DateTimeOffset? AlertTime, KextSignatureVerification Signature, string? DeveloperName);

/// <summary>What <see cref="Mac.Approve"/> recorded.</summary>
public sealed record ApprovalResult(string TeamId, IReadOnlyList<string> BundleIds, string User, DateTimeOffset Time);

/// <summary>A hook the startup sequence runs (the next issue adds secure boot: LocalPolicy, kmd, iBoot).</summary>
public interface IStartupHook
{
    /// <summary>Runs before the new running OS is committed; may stage changes or throw to refuse the startup.</summary>
    void OnStartup(Mac mac, MachineDescription next, MachineTransaction transaction);
}

/// <summary>
/// A simulated Mac, opened under its lock for one command. It lives in <c>KextTrust.Consent</c> because consent
/// needs it; <c>KextTrust.Boot</c> adds the secure-boot chain on top of it through <see cref="IStartupHook"/>.
/// Every change goes through one <see cref="MachineTransaction"/> and is atomic.
/// </summary>
public sealed class Mac : IDisposable
{
    /// <summary>The approval window after the "blocked" alert.</summary>
    public static readonly TimeSpan ApprovalWindow = TimeSpan.FromMinutes(30);

    private readonly IKextSignatureVerifier _verifier;

    private Mac(MachineStore store, MachineDescription description, IKextSignatureVerifier verifier)
    {
        Store = store;
        Description = description;
        _verifier = verifier;
    }

    /// <summary>The store (folder, lock, transactions).</summary>
    public MachineStore Store { get; }

    /// <summary>The description as of the last commit.</summary>
    public MachineDescription Description { get; private set; }

    /// <summary>The signature verifier in use.</summary>
    public IKextSignatureVerifier Verifier => _verifier;

    /// <summary>
    /// Creates a new Mac in <paramref name="directory"/> (which must not hold one), all or nothing: every file, those
    /// <paramref name="stage"/> adds too (the secure-boot layer's Secure Enclave and first LocalPolicy), is written in one
    /// <see cref="MachineTransaction"/> whose last file is the description. On any failure the folder is left as it
    /// was (no Mac; folders and lock file the init created are removed) and the init can be run again.
    /// </summary>
    public static Mac Init(string directory, MachineInitOptions options, IMachineFileSystem? fs = null, IKextSignatureVerifier? verifier = null,
        MachineInitStage? stage = null)
    {
        if (!Kexts.Kpi.MacOSVersion.TryParse(options.MacOSVersion, out var version))
        {
            throw new ConsentException(ConsentCode.InvalidArgument, null, $"'{options.MacOSVersion}' is not a macOS version");
        }
        if (options.Platform == MachinePlatform.AppleSilicon && version < new MacOSVersion(11, 0))
        {
            throw new ConsentException(ConsentCode.InvalidArgument, null, "Macs with Apple silicon run macOS 11 or later");
        }
        ValidateUserName(options.AdminName);
        var createdRoot = !Directory.Exists(directory);
        var store = MachineStore.Open(directory, fs, create: true);
        var foldersBefore = Directory.EnumerateDirectories(store.Root, "*", SearchOption.AllDirectories).ToHashSet(StringComparer.Ordinal);
        var existed = false;
        try
        {
            if (File.Exists(store.PathOf(MachineLayout.Description)))
            {
                existed = true;
                throw new ConsentException(ConsentCode.InvalidArgument, store.Root, "a simulated Mac already exists here");
            }
            var users = new List<MachineUser> { new(options.AdminName, true, PasswordHash.Create(options.AdminPassword, options.PasswordIterations)) };
            if (options.StandardUser is { } u)
            {
                ValidateUserName(u.Name);
                if (u.Name == options.AdminName)
                {
                    throw new ConsentException(ConsentCode.InvalidArgument, null, "the two users must have different names");
                }
                users.Add(new(u.Name, false, PasswordHash.Create(u.Password, options.PasswordIterations)));
            }
            var d = new MachineDescription(MachineDescription.CurrentFormat, options.Platform, version.ToString(), [version.ToString()], users,
                options.Mdm, options.CsrActiveConfig, RunningOS.MacOS, TruncateToSeconds(options.Clock ?? DateTimeOffset.UtcNow),
                BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8)), Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)), Guid.NewGuid().ToString("D").ToUpperInvariant());
            foreach (var folder in MachineLayout.Folders)
            {
                store.FileSystem.CreateDirectory(store.PathOf(folder));
            }
            var tx = store.Begin();
            tx.StageFile(MachineLayout.ExcludeListInfoPlist, ExcludeList.Default.ToInfoPlist());
            tx.StageFile(MachineLayout.Nvram, NvramBytes(KextConsentNvram.Default));
            if (options.KextPolicySource is { } kextPolicy)
            {
                tx.StageFile(MachineLayout.KextPolicy, KextPolicyAdopter.Prepare(kextPolicy, []).Bytes);
            }
            else
            {
                tx.StageDatabase((_, _) => { });
            }
            if (options.TrustRootPem is { } pem)
            {
                try
                {
                    using var _ = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(pem);
                }
                catch (System.Security.Cryptography.CryptographicException e)
                {
                    throw new ConsentException(ConsentCode.InvalidArgument, null, "the trust root is not a PEM certificate: " + e.Message);
                }
                tx.StageFile(MachineLayout.TrustRoot, System.Text.Encoding.ASCII.GetBytes(pem));
            }
            stage?.Invoke(store, d, tx);
            // The description last: the Mac exists only once everything else is in place.
            tx.StageFile(MachineLayout.Description, d.ToJson());
            tx.Commit();
            return new Mac(store, d, verifier ?? DefaultVerifier(store));
        }
        catch
        {
            if (existed)
            {
                store.Dispose();
            }
            else
            {
                store.AbandonInit(foldersBefore, createdRoot);
            }
            throw;
        }
    }

    /// <summary>Opens the Mac in <paramref name="directory"/>, waiting for its lock.</summary>
    public static Mac Open(string directory, IMachineFileSystem? fs = null, IKextSignatureVerifier? verifier = null, TimeSpan? lockTimeout = null)
    {
        var store = MachineStore.Open(directory, fs, lockTimeout);
        try
        {
            var path = store.PathOf(MachineLayout.Description);
            if (!File.Exists(path))
            {
                throw new ConsentException(ConsentCode.MachineInvalid, store.Root, "no simulated Mac here (run `kextrust machine init`)");
            }
            return new Mac(store, MachineDescription.Parse(File.ReadAllBytes(path), path), verifier ?? DefaultVerifier(store));
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    /// <summary>The machine's extra trusted root (<see cref="MachineLayout.TrustRoot"/>), if it has one.</summary>
    public System.Security.Cryptography.X509Certificates.X509Certificate2? TrustRoot() => LoadTrustRoot(Store);

    private static System.Security.Cryptography.X509Certificates.X509Certificate2? LoadTrustRoot(MachineStore store)
    {
        var path = store.PathOf(MachineLayout.TrustRoot);
        return File.Exists(path) ? System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(File.ReadAllText(path)) : null;
    }

    private static IKextSignatureVerifier DefaultVerifier(MachineStore store) =>
        KextSignatureVerifier.Using(new KextSignatureVerifierOptions { TrustedTestRoot = LoadTrustRoot(store) });

    /// <summary>
    /// The one signature verdict for the kext at <paramref name="path"/>; a kext the verifier cannot read at all is
    /// refused as an unreadable kext (exit 2), never treated as signed.
    /// </summary>
    private KextSignatureVerification VerifySignature(string path)
    {
        try
        {
            return _verifier.Verify(path);
        }
        catch (KextSignatureInputException e)
        {
            throw new ConsentException(ConsentCode.UnreadableKext, path, e.Message, e);
        }
    }

    /// <summary>The team id the KextPolicy database records for a kext: the signature's team when it allows loading, '' otherwise.</summary>
    private static string PolicyTeamId(KextSignatureVerification sig) => sig.VerifiedTeamId ?? "";

    private static void ValidateUserName(string name)
    {
        if (string.IsNullOrWhiteSpace(name) || name.Any(c => char.IsControl(c) || c is ':' or '/'))
        {
            throw new ConsentException(ConsentCode.InvalidArgument, null, $"'{name}' is not a valid user name");
        }
    }

    private static DateTimeOffset TruncateToSeconds(DateTimeOffset t) => new(t.UtcTicks - t.UtcTicks % TimeSpan.TicksPerSecond, TimeSpan.Zero);

    private void CommitDescription(MachineTransaction tx, MachineDescription next)
    {
        tx.StageFile(MachineLayout.Description, next.ToJson());
        tx.Commit();
        Description = next;
    }

    // ---------------------------------------------------------------- machine

    /// <summary>Moves the machine clock forward.</summary>
    public void AdvanceClock(TimeSpan by)
    {
        if (by < TimeSpan.Zero)
        {
            throw new ConsentException(ConsentCode.InvalidArgument, null, "the clock only moves forward");
        }
        CommitDescription(Store.Begin(), Description with { Clock = TruncateToSeconds(Description.Clock + by) });
    }

    /// <summary>
    /// Starts the Mac up into macOS, or recoveryOS (Apple silicon: One True Recovery, power button held).
    /// A new boot session UUID is drawn; <paramref name="hooks"/> run before the commit (the secure-boot seam).
    /// </summary>
    public MachineDescription Startup(bool recovery, IEnumerable<IStartupHook>? hooks = null)
    {
        var os = !recovery ? RunningOS.MacOS : Description.Platform == MachinePlatform.AppleSilicon ? RunningOS.OneTrueRecovery : RunningOS.RecoveryOS;
        var next = Description with { RunningOS = os, BootSessionUuid = Guid.NewGuid().ToString("D").ToUpperInvariant() };
        var tx = Store.Begin();
        foreach (var h in hooks ?? [])
        {
            h.OnStartup(this, next, tx);
        }
        CommitDescription(tx, next);
        return next;
    }

    /// <summary>
    /// Upgrades macOS. Upgrading from 10.12 or earlier to 10.13 or later grandfathers every third-party kext
    /// present in /Library/Extensions (a kext_policy row with <see cref="KextPolicyFlags.Grandfathered"/>).
    /// </summary>
    public IReadOnlyList<string> Upgrade(string version)
    {
        if (!Kexts.Kpi.MacOSVersion.TryParse(version, out var to) || to <= Description.Version)
        {
            throw new ConsentException(ConsentCode.InvalidArgument, null, $"'{version}' is not a macOS version newer than {Description.MacOSVersion}");
        }
        var tx = Store.Begin();
        var grandfathered = new List<string>();
        if (Description.Version < new MacOSVersion(10, 13) && to >= new MacOSVersion(10, 13))
        {
            var kexts = InstalledKexts().Select(k => (k, Sig: VerifySignature(Store.PathOf(k.RelativePath)))).ToArray();
            tx.StageDatabase((db, t) =>
            {
                foreach (var (k, sig) in kexts)
                {
                    KextPolicyDatabase.Exec(db, t,
                        "INSERT INTO kext_policy (team_id, bundle_id, allowed, developer_name, flags) VALUES ($p0, $p1, 1, $p2, $p3) " +
                        "ON CONFLICT (team_id, bundle_id) DO UPDATE SET allowed = 1, flags = flags | $p3",
                        PolicyTeamId(sig), k.BundleId, sig.Signer ?? "", KextPolicyFlags.Grandfathered);
                    grandfathered.Add(k.BundleId);
                }
            });
        }
        CommitDescription(tx, Description with { MacOSVersion = to.ToString(), OSHistory = [.. Description.OSHistory, to.ToString()] });
        return grandfathered;
    }

    /// <summary>Sets the SIP configuration (csrutil): only from recoveryOS.</summary>
    public void SetCsr(uint csrActiveConfig) => SetCsr(csrActiveConfig, Store.Begin());

    /// <summary>
    /// Sets the SIP configuration (csrutil, only from recoveryOS) and commits it in <paramref name="transaction"/>, together
    /// with whatever else the caller staged there (the secure-boot LocalPolicy on Apple silicon).
    /// </summary>
    public void SetCsr(uint csrActiveConfig, MachineTransaction transaction)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        RequireRecovery("csrutil");
        CommitDescription(transaction, Description with { CsrActiveConfig = csrActiveConfig });
    }

    private void RequireRecovery(string what)
    {
        if (!Description.InRecovery)
        {
            throw new ConsentException(ConsentCode.RecoveryOnly, null, $"{what}: modifications are only available in recoveryOS (run `kextrust startup --recovery`)");
        }
    }

    // ---------------------------------------------------------------- state

    /// <summary>A kext installed in /Library/Extensions.</summary>
    public sealed record InstalledKext(string BundleId, string Version, string RelativePath);

    /// <summary>The kexts in /Library/Extensions, sorted by path.</summary>
    public IReadOnlyList<InstalledKext> InstalledKexts()
    {
        var dir = Store.PathOf(MachineLayout.LibraryExtensions);
        if (!Directory.Exists(dir))
        {
            return [];
        }
        var list = new List<InstalledKext>();
        foreach (var path in Directory.EnumerateDirectories(dir, "*.kext").Order(StringComparer.Ordinal))
        {
            try
            {
                var b = KextBundle.Open(path);
                if (b.BundleId is not null)
                {
                    list.Add(new InstalledKext(b.BundleId, b.VersionString ?? "", MachineLayout.LibraryExtensions + "/" + Path.GetFileName(path)));
                }
            }
            catch (KextBundleException)
            {
                // An unreadable bundle is not a kext the system would consider.
            }
        }
        return list;
    }

    /// <summary>The KextPolicy database content.</summary>
    public KextPolicyContent ReadPolicy()
    {
        using var db = Store.OpenDatabaseReadOnly();
        return KextPolicyDatabase.ReadAll(db, Store.PathOf(MachineLayout.KextPolicy));
    }

    /// <summary>The <c>spctl kext-consent</c> NVRAM state.</summary>
    public KextConsentNvram ReadNvram()
    {
        var path = Store.PathOf(MachineLayout.Nvram);
        try
        {
            var root = PropertyList.ReadFile(path) as PlistDictionary ?? throw new ConsentException(ConsentCode.MachineInvalid, path, "NVRAM root is not a dictionary");
            var kc = root.GetDictionary("kext-consent") ?? throw new ConsentException(ConsentCode.MachineInvalid, path, "kext-consent is missing");
            var teams = kc.GetArray("teams")?.Items.Select(t => (t as PlistString)?.Value ?? throw new ConsentException(ConsentCode.MachineInvalid, path, "kext-consent teams must be strings")).ToArray() ?? [];
            return new KextConsentNvram(kc.GetBoolean("enabled") ?? true, teams);
        }
        catch (KextTrustFormatException e)
        {
            throw new ConsentException(ConsentCode.MachineInvalid, path, e.Message, e);
        }
    }

    private static byte[] NvramBytes(KextConsentNvram n) => PropertyList.ToXml(new PlistDictionary(
        ("kext-consent", new PlistDictionary(
            ("enabled", n.ConsentEnabled ? PlistBoolean.True : PlistBoolean.False),
            ("teams", new PlistArray(n.Teams.Order(StringComparer.Ordinal).Select(t => (PlistNode)new PlistString(t))))))));

    /// <summary>The installed exclude list.</summary>
    public ExcludeList ReadExcludeList()
    {
        var path = Store.PathOf(MachineLayout.ExcludeListInfoPlist);
        return ExcludeList.Parse(File.ReadAllBytes(path), path);
    }

    /// <summary>Installed configuration profiles.</summary>
    public IReadOnlyList<MdmProfile> ReadProfiles()
    {
        return ConfigurationProfiles.Read(this).Select(p => p.Profile).ToArray();
    }

    // ---------------------------------------------------------------- install

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
            var now = KextPolicyDatabase.Timestamp(Description.Clock);
            tx.StageDatabase((db, t) =>
            {
                foreach (var h in historyRows)
                {
                    KextPolicyDatabase.Exec(db, t,
                        "INSERT INTO kext_load_history_v3 (path, team_id, bundle_id, boot_uuid, created_at, last_seen, flags, cdhash) VALUES ($p0, $p1, $p2, $p3, $p4, $p4, $p5, $p6) " +
                        "ON CONFLICT (path) DO UPDATE SET team_id = $p1, bundle_id = $p2, boot_uuid = $p3, last_seen = $p4, flags = $p5, cdhash = $p6",
                        h.Path, h.Team, h.Bundle, Description.BootSessionUuid, now, h.Flags, h.CdHash);
                }
                foreach (var r in replacementRows)
                {
                    KextPolicyDatabase.Exec(db, t, "UPDATE kext_policy SET flags = flags | $p2 WHERE team_id = $p0 AND bundle_id = $p1",
                        r.Team, r.Bundle, KextPolicyFlags.Replacement);
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
    public static string? FilesystemProblem(string bundlePath)
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

    // ---------------------------------------------------------------- approve

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
            throw new ConsentException(ConsentCode.BadSignature, bad.Row.Path,
                $"{bad.Row.BundleId}'s signature does not validate and SIP enforces kext signatures: {bad.Signature.Refusal}");
        }
        var developer = signatures.Select(x => x.Signature.Signer).FirstOrDefault(n => n is not null) ?? "";
        var tx = Store.Begin();
        tx.StageDatabase((db, t) =>
        {
            foreach (var r in rows)
            {
                KextPolicyDatabase.Exec(db, t,
                    "INSERT INTO kext_policy (team_id, bundle_id, allowed, developer_name, flags) VALUES ($p0, $p1, 1, $p2, $p3) " +
                    "ON CONFLICT (team_id, bundle_id) DO UPDATE SET allowed = 1, developer_name = $p2, flags = flags | $p3",
                    teamId, r.BundleId, developer, KextPolicyFlags.UserApproved);
                KextPolicyDatabase.Exec(db, t, "UPDATE kext_load_history_v3 SET flags = (flags & ~$p1) | $p2 WHERE path = $p0",
                    r.Path, KextPolicyFlags.HistoryAlertShown, KextPolicyFlags.HistoryAllowed);
            }
        });
        tx.Commit();
        return new ApprovalResult(teamId, rows.Select(r => r.BundleId ?? "").Distinct().ToArray(), userName, Description.Clock);
    }

    // ---------------------------------------------------------------- MDM

    /// <summary>Delivers a profile over MDM (<see cref="ConfigurationProfiles.Install"/> has the rules).</summary>
    public ProfileInstallResult PushProfile(string path) => ConfigurationProfiles.Install(this, path, ProfileChannel.Mdm);

    /// <summary>Installs a profile by hand (<c>profiles install</c>): refused for kext policy payloads, as macOS does.</summary>
    public ProfileInstallResult InstallProfileManually(string path) => ConfigurationProfiles.Install(this, path, ProfileChannel.Manual);

    // ---------------------------------------------------------------- spctl

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

    // ---------------------------------------------------------------- exclude list

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

    // ---------------------------------------------------------------- decisions

    /// <summary>Everything a decision reads, loaded once.</summary>
    private sealed record State(MachineDescription Machine, KextPolicyContent Policy, KextConsentNvram Nvram, CombinedKextPolicy Mdm, string? ConsentNotInForce);

    private State LoadState(KextPolicyContent? policy = null)
    {
        var p = policy ?? ReadPolicy();
        var nvram = ReadNvram();
        var mdm = CombinedKextPolicy.Combine(ReadProfiles());
        var d = Description;
        string? off = d.Version < new MacOSVersion(10, 13) ? "macOS 10.12 or earlier"
            : (d.CsrActiveConfig & Csr.AllowUnapprovedKexts) != 0 ? "SIP CSR_ALLOW_UNAPPROVED_KEXTS is set"
            : d.Version < new MacOSVersion(10, 13, 2) && d.Mdm != MdmEnrollment.None ? "on 10.13.0–10.13.1 MDM enrollment disables user consent"
            : !nvram.ConsentEnabled ? "spctl kext-consent disable"
            : null;
        return new State(d, p, nvram, mdm, off);
    }

    private static ConsentFinding Found(ConsentSource s, string rule, params (string, string)[] evidence) =>
        new(s, rule, evidence.ToDictionary(e => e.Item1, e => e.Item2));

    private ConsentFinding FindConsent(State s, KextSignatureVerification sig, string bundleId)
    {
        var d = s.Machine;
        if (s.ConsentNotInForce is { } off)
        {
            var source = d.Version < new MacOSVersion(10, 13) ? ConsentSource.NotRequiredBeforeHighSierra
                : (d.CsrActiveConfig & Csr.AllowUnapprovedKexts) != 0 ? ConsentSource.NotRequiredCsrUnapprovedKexts
                : d.Version < new MacOSVersion(10, 13, 2) && d.Mdm != MdmEnrollment.None ? ConsentSource.MdmEnrollmentDisablesConsent
                : ConsentSource.SpctlConsentDisabled;
            return Found(source, "user consent not in force: " + off, ("macOS", d.MacOSVersion), ("csr-active-config", $"0x{d.CsrActiveConfig:x}"), ("mdm", d.Mdm.ToString()));
        }
        var team = PolicyTeamId(sig);
        var mdm = s.Policy.Mdm.FirstOrDefault(r => r.Allowed && r.TeamId == team && r.BundleId == bundleId)
            ?? (team.Length > 0 ? s.Policy.Mdm.FirstOrDefault(r => r.Allowed && r.TeamId == team && r.BundleId is null) : null);
        if (mdm is not null)
        {
            return Found(ConsentSource.Mdm, mdm.BundleId is null ? $"MDM AllowedTeamIdentifiers contains {team}" : $"MDM AllowedKernelExtensions[{(team.Length == 0 ? "''" : team)}] contains {bundleId}",
                ("table", "kext_policy_mdm"), ("team_id", team), ("bundle_id", mdm.BundleId ?? "NULL (whole team)"), ("payload_uuid", mdm.PayloadUuid ?? ""));
        }
        if (team.Length > 0 && s.Nvram.Teams.Contains(team, StringComparer.Ordinal))
        {
            return Found(ConsentSource.Spctl, $"spctl kext-consent add {team} (from recoveryOS)", ("nvram", "kext-consent teams"), ("team_id", team));
        }
        var userAllowed = !s.Mdm.Present || s.Mdm.AllowUserOverrides;
        var row = s.Policy.Policy.FirstOrDefault(r => r.Allowed && r.TeamId == team && r.BundleId == bundleId);
        (string, string)[] Ev(KextPolicyRow r) => [("table", "kext_policy"), ("team_id", r.TeamId ?? ""), ("bundle_id", r.BundleId ?? ""), ("developer_name", r.DeveloperName ?? ""), ("flags", (r.Flags ?? 0).ToString(System.Globalization.CultureInfo.InvariantCulture))];
        if (row is not null && userAllowed && ((row.Flags ?? 0) & KextPolicyFlags.Replacement) != 0)
        {
            return Found(ConsentSource.Replacement, "replaces a previously approved kext (same team and bundle id)", Ev(row));
        }
        if (row is not null && ((row.Flags ?? 0) & KextPolicyFlags.Grandfathered) != 0)
        {
            return Found(ConsentSource.Grandfathered, "installed on macOS 10.12 or earlier and present at the upgrade", Ev(row));
        }
        if (userAllowed)
        {
            var user = (row is not null && ((row.Flags ?? 0) & KextPolicyFlags.UserApproved) != 0 ? row : null)
                ?? (team.Length > 0 ? s.Policy.Policy.FirstOrDefault(r => r.Allowed && r.TeamId == team && ((r.Flags ?? 0) & KextPolicyFlags.UserApproved) != 0) : null);
            if (user is not null)
            {
                return Found(ConsentSource.User, team.Length > 0 ? $"team {team} approved by a user" : $"unsigned kext {bundleId} approved by a user", Ev(user));
            }
        }
        var alert = s.Policy.History.FirstOrDefault(h => h.BundleId == bundleId && ((h.Flags ?? 0) & KextPolicyFlags.HistoryAlertShown) != 0);
        var ev = new List<(string, string)> { ("team_id", team), ("bundle_id", bundleId) };
        if (alert is not null)
        {
            ev.Add(("alert_shown_at", alert.LastSeen ?? ""));
            var at = KextPolicyDatabase.ParseTimestamp(alert.LastSeen);
            ev.Add(("approval_window_open", at is { } t && d.Clock - t <= ApprovalWindow ? "yes" : "no"));
        }
        if (!userAllowed)
        {
            ev.Add(("user_overrides", "forbidden by MDM (AllowUserOverrides false)"));
        }
        return Found(ConsentSource.None, "needs user approval (no MDM, spctl, grandfathered, replacement or user consent)", ev.ToArray());
    }

    /// <summary>Decides for an installed kext by bundle id, or for the kext bundle at a path.</summary>
    public KextDecision Why(string kextPathOrBundleId)
    {
        string path;
        if (Directory.Exists(kextPathOrBundleId))
        {
            path = Path.GetFullPath(kextPathOrBundleId);
        }
        else
        {
            var k = InstalledKexts().FirstOrDefault(k => k.BundleId == kextPathOrBundleId)
                ?? throw new ConsentException(ConsentCode.NotInstalled, null, $"{kextPathOrBundleId} is neither a kext folder nor the bundle id of a kext in /Library/Extensions");
            path = Store.PathOf(k.RelativePath);
        }
        return Decide(path, LoadState());
    }

    /// <summary>Decides for every kext in /Library/Extensions.</summary>
    public IReadOnlyList<KextDecision> DecideAll()
    {
        var s = LoadState();
        return InstalledKexts().Select(k => Decide(Store.PathOf(k.RelativePath), s)).ToArray();
    }

    private KextDecision Decide(string path, State s)
    {
        var bundle = OpenKext(path);
        var bundleId = bundle.BundleId!;
        var d = s.Machine;
        var steps = new List<DecisionStep>();
        void Step(DecisionCheck c, CheckOutcome o, ConsentCode code, string rule, params (string, string)[] ev) =>
            steps.Add(new DecisionStep(c, o, code, rule, ev.ToDictionary(e => e.Item1, e => e.Item2)));

        // 1. Exclude list.
        var exclude = ReadExcludeList();
        var hit = exclude.Match(bundleId, bundle.Version!.Value);
        if (hit is null)
        {
            Step(DecisionCheck.ExcludeList, CheckOutcome.Pass, ConsentCode.Ok, $"{bundleId} {bundle.VersionString} not on the exclude list", ("exclude_list_version", exclude.Version));
        }
        else
        {
            Step(DecisionCheck.ExcludeList, CheckOutcome.Fail, ConsentCode.ExcludeListed, $"excluded: {hit.Rule}", ("exclude_list_version", exclude.Version), ("version_spec", hit.VersionSpec));
        }

        // 2. Architecture.
        var arches = new List<string>();
        IReadOnlyList<string> imports = [];
        if (bundle.ExecutablePath is { } exe && File.Exists(exe))
        {
            try
            {
                using var file = Formats.MachO.MachOFile.Open(exe);
                arches.AddRange(file.Slices.Select(x => x.Architecture));
                var slice = file.Slices.FirstOrDefault(x => x.Architecture == d.KextArchitecture);
                imports = slice?.UndefinedSymbols ?? [];
            }
            catch (KextTrustFormatException e)
            {
                arches.Add("unreadable: " + e.Message);
            }
            if (arches.Contains(d.KextArchitecture))
            {
                Step(DecisionCheck.Architecture, CheckOutcome.Pass, ConsentCode.Ok, $"has a {d.KextArchitecture} slice", ("slices", string.Join(",", arches)));
            }
            else
            {
                Step(DecisionCheck.Architecture, CheckOutcome.Fail, ConsentCode.ArchitectureMismatch, $"no {d.KextArchitecture} slice for this {d.Platform} Mac", ("slices", string.Join(",", arches)));
            }
        }
        else
        {
            Step(DecisionCheck.Architecture, CheckOutcome.Pass, ConsentCode.Ok, "codeless kext");
        }

        // 3. Filesystem validation.
        var fsProblem = FilesystemProblem(path);
        Step(DecisionCheck.FilesystemValidation, fsProblem is null ? CheckOutcome.Pass : CheckOutcome.Fail, fsProblem is null ? ConsentCode.Ok : ConsentCode.ValidationFailed,
            fsProblem ?? "no group- or other-writable file (ownership modelled by mode bits)");

        // 4. Signature under SIP.
        var sig = VerifySignature(path);
        var refusal = sig.Refusal;
        var sigEv = new List<(string, string)> { ("kind", ConsentSignature.Kind(sig)), ("team_id", sig.TeamId ?? ""), ("developer_name", sig.Signer ?? ""), ("cdhash", sig.PrimaryCdHash ?? ""), ("csr-active-config", $"0x{d.CsrActiveConfig:x}") };
        if (refusal is not null)
        {
            sigEv.Add(("problem", refusal.Code));
            if (refusal.Page is { } page)
            {
                sigEv.Add(("page", page.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            }
        }
        if (!d.SipEnforcesKexts)
        {
            Step(DecisionCheck.Signature, CheckOutcome.NotEnforced, ConsentCode.Ok, $"SIP kext protection off: signature not enforced ({sig.Summary})", [.. sigEv]);
        }
        else if (refusal is null)
        {
            Step(DecisionCheck.Signature, CheckOutcome.Pass, ConsentCode.Ok, $"Developer ID signed: {sig.Summary}", [.. sigEv]);
        }
        else
        {
            Step(DecisionCheck.Signature, CheckOutcome.Fail, ConsentCode.BadSignature, $"SIP requires a valid Developer ID kext signature: {refusal}", [.. sigEv]);
        }

        // 5. Staging.
        var rel = Path.GetRelativePath(Store.Root, path).Replace(Path.DirectorySeparatorChar, '/');
        if (!d.SipEnforcesKexts)
        {
            Step(DecisionCheck.Staging, CheckOutcome.NotEnforced, ConsentCode.Ok, "SIP off: staging disabled, every location is secure");
        }
        else
        {
            var staged = Store.PathOf(MachineLayout.StagedPathOf(rel));
            var ok = rel.StartsWith(MachineLayout.LibraryExtensions + "/", StringComparison.Ordinal) && Directory.Exists(staged) && TreeHash(staged) == TreeHash(path);
            Step(DecisionCheck.Staging, ok ? CheckOutcome.Pass : CheckOutcome.Fail, ok ? ConsentCode.Ok : ConsentCode.ValidationFailed,
                ok ? "validated copy present in /Library/StagedExtensions" : "no matching validated copy in /Library/StagedExtensions", ("staged_path", "/" + MachineLayout.StagedPathOf(rel)));
        }

        // 6. Consent.
        var consent = FindConsent(s, sig, bundleId);
        Step(DecisionCheck.Consent, consent.Source == ConsentSource.None ? CheckOutcome.Fail : CheckOutcome.Pass,
            consent.Source == ConsentSource.None ? ConsentCode.NotApproved : ConsentCode.Ok, $"{consent.Source}: {consent.Rule}", consent.Evidence.Select(e => (e.Key, e.Value)).ToArray());

        // 7. Deprecated KPIs (seed footnote: not enforced with SIP off or for MDM-approved kexts).
        var release = MacOSRelease.ForVersion(d.Version);
        var libs = bundle.Libraries.GroupBy(l => l.BundleId).ToDictionary(g => g.Key, g => g.First().RequestedVersion);
        var context = new KpiEnforcementContext(!d.SipEnforcesKexts, consent.Source == ConsentSource.Mdm);
        if (release is null)
        {
            Step(DecisionCheck.DeprecatedKpi, CheckOutcome.Pass, ConsentCode.Ok, $"no KPI deprecation rules before macOS 10.15 (this Mac runs {d.MacOSVersion})");
        }
        else
        {
            var verdict = KpiRuleEvaluator.Evaluate(imports, libs, context).On(release);
            var rules = string.Join(",", verdict.Findings.Select(f => $"{f.Finding.Rule.Id}:{f.Status}"));
            if (verdict.BlocksLoad)
            {
                Step(DecisionCheck.DeprecatedKpi, CheckOutcome.Fail, ConsentCode.UnsupportedKpi, $"uses KPIs unsupported on {release.DisplayName}", ("rules", rules), ("release", release.Key));
            }
            else if (context.IsExempt && verdict.Status == KpiSupportStatus.Unsupported)
            {
                Step(DecisionCheck.DeprecatedKpi, CheckOutcome.NotEnforced, ConsentCode.Ok,
                    $"unsupported KPIs not enforced: {(context.SipDisabled ? "SIP disabled" : "approved by MDM")}", ("rules", rules), ("release", release.Key));
            }
            else
            {
                Step(DecisionCheck.DeprecatedKpi, CheckOutcome.Pass, ConsentCode.Ok, verdict.Findings.Length == 0 ? "no deprecated KPI used" : $"deprecated KPIs still load on {release.DisplayName}", ("rules", rules), ("release", release.Key));
            }
        }

        var fail = steps.FirstOrDefault(x => x.Outcome == CheckOutcome.Fail);
        return new KextDecision(bundleId, bundle.VersionString ?? "", "/" + rel, fail is null, fail?.Code ?? ConsentCode.Ok,
            fail is null ? $"allowed ({consent.Source})" : $"blocked by {fail.Check}: {fail.Rule}", consent.Source, sig, steps);
    }

    private static string TreeHash(string dir)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var f in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(dir, f)).Order(StringComparer.Ordinal))
        {
            h.AppendData(System.Text.Encoding.UTF8.GetBytes(f + "\0"));
            h.AppendData(SHA256.HashData(File.ReadAllBytes(Path.Combine(dir, f))));
        }
        return Convert.ToHexString(h.GetHashAndReset());
    }

    // ---------------------------------------------------------------- UAKL

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
    public UserApprovedKextList WriteUakl()
    {
        var uakl = BuildUakl();
        var tx = Store.Begin();
        tx.StageFile(MachineLayout.Uakl, uakl.ToBytes());
        tx.Commit();
        return uakl;
    }

    /// <summary>Releases the machine lock.</summary>
    public void Dispose() => Store.Dispose();
}

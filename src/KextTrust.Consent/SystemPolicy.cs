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

/// <summary>
/// Stages files of a new Mac in <see cref="SystemPolicy.Init"/>'s transaction, before its description: they are committed
/// with the Mac or not at all (the secure-boot layer's Secure Enclave and first LocalPolicy).
/// </summary>
internal delegate void MachineInitStage(MachineStore store, MachineDescription description, MachineTransaction transaction);

/// <summary>Options of <c>machine init</c>.</summary>
public sealed record MachineInitOptions(MacPlatform Platform, string MacOSVersion, string AdminName, string AdminPassword)
{
    /// <summary>An optional standard (non-admin) user.</summary>
    public (string Name, string Password)? StandardUser { get; init; }
    /// <summary>MDM enrollment.</summary>
    public MdmEnrollment Mdm { get; init; } = MdmEnrollment.None;
    /// <summary>SIP configuration (<see cref="CsrConfig.None"/> = fully enabled).</summary>
    public CsrConfig CsrActiveConfig { get; init; }
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

/// <summary>What <see cref="SystemPolicy.Install"/> did with one kext.</summary>
public sealed record InstallResult(string BundleId, string Version, string InstalledPath, bool Staged, bool Replaced, bool AlertShown, DateTimeOffset? AlertTime, KextSignatureVerification Signature, string? DeveloperName);

/// <summary>What <see cref="SystemPolicy.Approve"/> recorded.</summary>
public sealed record ApprovalResult(string TeamId, IReadOnlyList<string> BundleIds, string User, DateTimeOffset Time);

/// <summary>
/// The consent side of a simulated Mac (syspolicyd, kext staging, the KextPolicy database, MDM, spctl, the exclude list):
/// install, approve, <c>why</c>, profiles, the UAKL. The public way to a Mac is the secure-boot layer's <c>Mac</c>, which
/// composes this with iBoot, the LocalPolicy and kmd: creating, opening, starting up and changing SIP are internal here, so
/// every startup runs iBoot on Apple silicon and every SIP change goes through the LocalPolicy. Every change goes through
/// one <see cref="MachineTransaction"/> and is atomic.
/// </summary>
public sealed partial class SystemPolicy : IDisposable
{
    /// <summary>The approval window after the "blocked" alert.</summary>
    public static readonly TimeSpan ApprovalWindow = TimeSpan.FromMinutes(30);

    private readonly IKextSignatureVerifier _verifier;

    private SystemPolicy(MachineStore store, MachineDescription description, IKextSignatureVerifier verifier)
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
    internal static SystemPolicy Init(string directory, MachineInitOptions options, IMachineFileSystem? fs = null, IKextSignatureVerifier? verifier = null,
        MachineInitStage? stage = null)
    {
        if (!Kexts.Kpi.MacOSVersion.TryParse(options.MacOSVersion, out var version))
        {
            throw new ConsentException(ConsentCode.InvalidArgument, null, $"'{options.MacOSVersion}' is not a macOS version");
        }
        if (options.Platform == MacPlatform.AppleSilicon && version < new MacOSVersion(11, 0))
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
                tx.StageDatabase(_ => { });
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
            return new SystemPolicy(store, d, verifier ?? DefaultVerifier(store));
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
    internal static SystemPolicy Open(string directory, IMachineFileSystem? fs = null, IKextSignatureVerifier? verifier = null, TimeSpan? lockTimeout = null)
    {
        var store = MachineStore.Open(directory, fs, lockTimeout);
        try
        {
            var path = store.PathOf(MachineLayout.Description);
            if (!File.Exists(path))
            {
                throw new MachineException(MachineCode.MachineInvalid, store.Root, "no simulated Mac here (run `kextrust machine init`)");
            }
            return new SystemPolicy(store, MachineDescription.Parse(File.ReadAllBytes(path), path), verifier ?? DefaultVerifier(store));
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
    /// Starts the Mac up into macOS, or recoveryOS (Apple silicon: One True Recovery, power button held). A new boot session
    /// UUID is drawn; <paramref name="boot"/> (the secure-boot layer's iBoot and kernel) runs before the commit and may stage
    /// changes or throw to refuse the startup.
    /// </summary>
    internal MachineDescription Startup(bool recovery, Action<MachineDescription, MachineTransaction>? boot = null)
    {
        var os = !recovery ? RunningOS.MacOS : Description.Platform == MacPlatform.AppleSilicon ? RunningOS.OneTrueRecovery : RunningOS.RecoveryOS;
        var next = Description with { RunningOS = os, BootSessionUuid = Guid.NewGuid().ToString("D").ToUpperInvariant() };
        var tx = Store.Begin();
        boot?.Invoke(next, tx);
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
            tx.StageDatabase(db =>
            {
                foreach (var (k, sig) in kexts)
                {
                    db.Allow(PolicyTeamId(sig), k.BundleId, sig.Signer ?? "", KextPolicyFlags.Grandfathered, updateDeveloperName: false);
                    grandfathered.Add(k.BundleId);
                }
            });
        }
        CommitDescription(tx, Description with { MacOSVersion = to.ToString(), OSHistory = [.. Description.OSHistory, to.ToString()] });
        return grandfathered;
    }

    /// <summary>
    /// Sets the SIP configuration (csrutil, only from recoveryOS) and commits it in <paramref name="transaction"/>, together
    /// with whatever else the caller staged there (the LocalPolicy with its <c>sip0</c> on Apple silicon).
    /// </summary>
    internal void SetCsr(CsrConfig csrActiveConfig, MachineTransaction transaction)
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
            var root = PropertyList.ReadFile(path) as PlistDictionary ?? throw new MachineException(MachineCode.MachineInvalid, path, "NVRAM root is not a dictionary");
            var kc = root.GetDictionary("kext-consent") ?? throw new MachineException(MachineCode.MachineInvalid, path, "kext-consent is missing");
            var teams = kc.GetArray("teams")?.Items.Select(t => (t as PlistString)?.Value ?? throw new MachineException(MachineCode.MachineInvalid, path, "kext-consent teams must be strings")).ToArray() ?? [];
            return new KextConsentNvram(kc.GetBoolean("enabled") ?? true, teams);
        }
        catch (KextTrustFormatException e)
        {
            throw new MachineException(MachineCode.MachineInvalid, path, e.Message, e);
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


    /// <summary>Releases the machine lock.</summary>
    public void Dispose() => Store.Dispose();
}

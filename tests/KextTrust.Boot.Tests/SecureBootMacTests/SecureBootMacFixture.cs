using System.Text.Json.Nodes;
using KextTrust.Boot.Policy;
using KextTrust.Boot.Receipt;
using KextTrust.Boot.SecureBoot;
using KextTrust.Consent;
using KextTrust.Consent.Policy;
using KextTrust.Formats.Image4;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;
using KextTrust.Kexts.Signing;
using KextTrust.Machine;
using KextTrust.TestSupport;

namespace KextTrust.Boot.Tests.SecureBootMacTests;

/// <summary>
/// One Apple-silicon Mac in its last good state, built once per test class and copied for each test:
/// <list type="bullet">
/// <item>Reduced Security with third-party kexts (bputil -g -k, in One True Recovery), team <see cref="Team"/> approved;</item>
/// <item>kmd rebuilt twice (the first build's LocalPolicy, AuxKC, Image4 and receipt are kept in <see cref="Older"/>);</item>
/// <item>a restart loads <see cref="Driver"/>; <see cref="Second"/> (same team) is installed since the last rebuild, so a
///   new rebuild would add it;</item>
/// <item><see cref="OtherMacPolicy"/>: the LocalPolicy of another Mac, signed by its own Secure Enclave.</item>
/// </list>
/// </summary>
public sealed class SecureBootMacFixture : IDisposable
{
    public const string Admin = "admin", Password = "pw", Team = "TEAM000001";
    public const string Driver = "com.acme.drv", Second = "com.acme.second", Unsigned = "com.acme.unsigned", Banned = "com.example.banned";
    public const MacPlatform Platform = MacPlatform.AppleSilicon;

    private readonly TempDir _root = new("kextrust-sbfix");
    private readonly Dictionary<string, string> _kexts = new(StringComparer.Ordinal);
    private int _copies;

    public SecureBootMacFixture()
    {
        using var pki = TestPki.Create(new TestPki.Options("Acme Developer", Team));
        using (var identity = KextSigningIdentity.Create(pki.Leaf, [pki.Intermediate, pki.Root]))
        {
            foreach (var id in new[] { Driver, Second, Unsigned, Banned })
            {
                var parent = Directory.CreateDirectory(_root.Combine("kexts", id)).FullName;
                var path = KextBundleWriter.Write(parent, new KextBundleSpec(id, "1.0.0")
                {
                    Libraries = new Dictionary<string, string> { ["com.apple.kpi.iokit"] = "20.0", ["com.apple.kpi.libkern"] = "20.0" },
                    Slices = [new KextSliceSpec(MachOTargetArchitecture.Arm64e, ["_IOLog"])],
                });
                if (id != Unsigned)
                {
                    KextSigner.Sign(path, new KextSigningOptions { Identity = identity });
                }
                _kexts[id] = path;
            }
        }
        GoodMac = _root.Combine("good");
        using (var mac = NewMac(GoodMac, pki))
        {
            mac.Install([_kexts[Driver]]);
            mac.Startup(recovery: true);
            mac.Bputil(new BputilRequest(SecurityMode.Reduced, EnableKexts: true, EnableMdm: false, Admin, Password));
            mac.Startup(recovery: false);
            mac.Approve(Team, null, Admin, Password);
            mac.KmutilCreate(Admin, Password);
            Older = BootFiles.ToDictionary(f => f, f => File.ReadAllBytes(mac.Store.PathOf(f)));
            mac.KmutilCreate(Admin, Password);
            mac.Install([_kexts[Second]]);
            GoodBoot = mac.Startup(recovery: false);
        }
        GoodApplePay = ApplePayStatus(GoodMac);
        using (var other = NewMac(_root.Combine("other"), pki))
        {
            OtherMacPolicy = File.ReadAllBytes(other.Store.PathOf(SecureBootLayout.LocalPolicy));
        }
    }

    /// <summary>The last good state (do not modify: copy it with <see cref="Copy"/>).</summary>
    public string GoodMac { get; }

    /// <summary>What a restart of the good state does: <see cref="Driver"/> loaded.</summary>
    public StartupReport GoodBoot { get; }

    /// <summary>Apple Pay's status in the good state.</summary>
    public string GoodApplePay { get; }

    /// <summary>The first kmd build's files (machine-relative path → bytes): SEP-signed, but older than the LocalPolicy in force.</summary>
    public IReadOnlyDictionary<string, byte[]> Older { get; }

    /// <summary>A LocalPolicy signed by another Mac's Secure Enclave.</summary>
    public byte[] OtherMacPolicy { get; }

    /// <summary>The LocalPolicy and the AuxKC files iBoot reads.</summary>
    public static IReadOnlyList<string> BootFiles { get; } =
        [SecureBootLayout.LocalPolicy, SecureBootLayout.AuxKc(Platform), SecureBootLayout.AuxKcImage4(Platform), SecureBootLayout.Receipt(Platform)];

    /// <summary>The source bundle of one of the fixture's kexts (signed by <see cref="Team"/>, except <see cref="Unsigned"/>).</summary>
    public string Kext(string bundleId) => _kexts[bundleId];

    /// <summary>A fresh copy of the good state; returns its folder.</summary>
    public string Copy(string? from = null)
    {
        var to = _root.Combine("copies", Interlocked.Increment(ref _copies).ToString(System.Globalization.CultureInfo.InvariantCulture));
        MachineFolder.Copy(from ?? GoodMac, to);
        return to;
    }

    /// <summary>Restarts the Mac in <paramref name="dir"/> into macOS.</summary>
    public static StartupReport Restart(string dir)
    {
        using var mac = Mac.Open(dir);
        return mac.Startup(recovery: false);
    }

    /// <summary>
    /// The machine's state: every file but the startup log, with the boot session masked in <c>machine.json</c> (a
    /// restart always draws a new one); with <paramref name="withDatabase"/> false also without the KextPolicy database
    /// (a restart that loads kexts records them in its load history).
    /// </summary>
    public static string State(string dir, bool withDatabase = true) => MachineFolder.Snapshot(dir,
        f => f == SecureBootLayout.LastStartup || (!withDatabase && f == MachineLayout.KextPolicy),
        (f, bytes) => f == MachineLayout.Description ? MaskBootSession(bytes) : bytes);

    private static byte[] MaskBootSession(byte[] json)
    {
        var node = JsonNode.Parse(json)!.AsObject();
        var key = node.Select(p => p.Key).Single(k => k.Equals(nameof(MachineDescription.BootSessionUuid), StringComparison.OrdinalIgnoreCase));
        node[key] = "";
        return System.Text.Encoding.UTF8.GetBytes(node.ToJsonString());
    }

    /// <summary>Bundle ids the startup loaded.</summary>
    public static string[] LoadedIds(StartupReport report) => [.. report.Loaded.Select(k => k.BundleId)];

    /// <summary>Flips the low bit of the first byte of the first occurrence of <paramref name="marker"/> in a machine file.</summary>
    public static void FlipByteAt(string dir, string relative, ReadOnlySpan<byte> marker)
    {
        var path = Path.Combine(dir, relative);
        var bytes = File.ReadAllBytes(path);
        var at = bytes.AsSpan().IndexOf(marker);
        Assert.True(at >= 0, $"{relative} does not contain the marker");
        bytes[at] ^= 1;
        File.WriteAllBytes(path, bytes);
    }

    /// <summary>Adds an allowed, user-approved <c>kext_policy</c> row with sqlite, behind syspolicyd's back.</summary>
    public static void AddPolicyRowByHand(string dir, string teamId, string bundleId)
    {
        using var db = KextPolicyDatabase.OpenReadWrite(Path.Combine(dir, MachineLayout.KextPolicy));
        using var cmd = db.CreateCommand();
        cmd.CommandText = "INSERT INTO kext_policy (team_id, bundle_id, allowed, developer_name, flags) VALUES ($t, $b, 1, 'Attacker', $f)";
        cmd.Parameters.AddWithValue("$t", teamId);
        cmd.Parameters.AddWithValue("$b", bundleId);
        cmd.Parameters.AddWithValue("$f", KextPolicyFlags.UserApproved);
        Assert.Equal(1, cmd.ExecuteNonQuery());
    }

    /// <summary>True when the LocalPolicy on disk verifies against the Mac's Secure Enclave (signature, ECID, current nonce).</summary>
    public static bool PolicyVerifies(string dir)
    {
        using var mac = Mac.Open(dir);
        using var sep = mac.OpenEnclave();
        return LocalPolicyVerifier.Verify(Im4Manifest.FromBytes(File.ReadAllBytes(mac.Store.PathOf(SecureBootLayout.LocalPolicy))), sep).Valid;
    }

    /// <summary>Apple Pay's status as the receipt on disk gives it.</summary>
    public static string ApplePayStatus(string dir)
    {
        using var mac = Mac.Open(dir);
        return ApplePay.Status(mac.ReadReceipt()).Describe();
    }

    private static Mac NewMac(string dir, TestPki pki)
    {
        return Mac.Init(dir, new MachineInitOptions(Platform, "14.5", Admin, Password)
        {
            TrustRootPem = pki.Root.ExportCertificatePem(),
            PasswordIterations = 1000,
        });
    }

    public void Dispose() => _root.Dispose();
}

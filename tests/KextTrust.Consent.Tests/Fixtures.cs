using System.Security.Cryptography;
using KextTrust.Consent;
using KextTrust.Kexts.Kpi;
using KextTrust.Kexts.Signing;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Bundles;
using KextTrust.Machine;
using KextTrust.TestSupport;

namespace KextTrust.Consent.Tests;

/// <summary>
/// Signature verdicts by bundle id (kexts not listed are unsigned): consent's rules are tested over many signature kinds
/// without signing each kext; the verdicts are of the one type the real verifier returns (<see cref="SignatureVerdicts"/>).
/// The tamper tests (Boot.Tests, <c>TamperedKextTests</c>) sign real kexts and use the real verifier.
/// </summary>
public sealed class FixtureVerifier : IKextSignatureVerifier
{
    public Dictionary<string, Func<string, KextSignatureVerification>> Facts { get; } = new(StringComparer.Ordinal);

    public static Func<string, KextSignatureVerification> Signed(string team, string name = "Example Developer") => path => SignatureVerdicts.Valid(path, team, name);
    public static Func<string, KextSignatureVerification> AdHoc { get; } = SignatureVerdicts.AdHoc;

    public KextSignatureVerification Verify(string bundlePath)
    {
        var id = KextBundle.Open(bundlePath).BundleId ?? "";
        return Facts.TryGetValue(id, out var f) ? f(bundlePath) : SignatureVerdicts.Unsigned(bundlePath);
    }
}

public sealed class MacFixture : IDisposable
{
    public TempDir Temp { get; } = new("kextrust-consent");
    public FixtureVerifier Verifier { get; } = new();
    public string MacDir => Temp.Combine("mac");
    public static readonly DateTimeOffset T0 = new(2025, 1, 6, 9, 0, 0, TimeSpan.Zero);

    public void Init(string macos = "14.5", MacPlatform platform = MacPlatform.Intel, MdmEnrollment mdm = MdmEnrollment.None, CsrConfig csr = CsrConfig.None)
    {
        using var mac = SystemPolicy.Init(MacDir, new MachineInitOptions(platform, macos, "admin", "admin-pw")
        {
            StandardUser = ("alice", "alice-pw"), Mdm = mdm, CsrActiveConfig = csr, PasswordIterations = 1000, Clock = T0,
        }, verifier: Verifier);
    }

    public SystemPolicy Open(IMachineFileSystem? fs = null) => SystemPolicy.Open(MacDir, fs, Verifier);

    public string Kext(string bundleId, string version = "1.0.0", string[]? imports = null, MachOTargetArchitecture arch = MachOTargetArchitecture.X86_64)
    {
        var parent = Temp.Combine("src", bundleId + "-" + version);
        Directory.CreateDirectory(parent);
        var path = KextBundleWriter.Write(parent, new KextBundleSpec(bundleId, version)
        {
            Libraries = new Dictionary<string, string> { ["com.apple.kpi.libkern"] = "8.0" },
            Slices = [new KextSliceSpec(arch, imports ?? ["_IOLog"])],
        });
        foreach (var p in Directory.EnumerateFileSystemEntries(path, "*", SearchOption.AllDirectories).Prepend(path).Where(_ => !OperatingSystem.IsWindows()))
        {
            if (OperatingSystem.IsWindows()) { continue; }
            File.SetUnixFileMode(p, Directory.Exists(p) ? (UnixFileMode)0b111_101_101 : (UnixFileMode)0b110_100_100);
        }
        return path;
    }

    public string Snapshot() => Snapshot(MacDir);

    /// <summary>SHA-256 over every file's path and content (the lock file excluded).</summary>
    public static string Snapshot(string dir) => MachineFolder.Snapshot(dir);

    public void Dispose() => Temp.Dispose();
}

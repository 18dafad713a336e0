using KextTrust.Kexts.Signing;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Bundles;
using KextTrust.TestSupport;

namespace KextTrust.Cli.Tests;

/// <summary>
/// Signature verdicts by bundle id for CLI tests (kexts not listed are unsigned), of the one type the real verifier returns
/// (<see cref="SignatureVerdicts"/>), passed through <see cref="MachineOption.VerifierOverride"/>. Tests that pass none use
/// the real verifier.
/// </summary>
public sealed class ConsentFixtureVerifier : IKextSignatureVerifier
{
    public Dictionary<string, Func<string, KextSignatureVerification>> Facts { get; } = new(StringComparer.Ordinal);

    public static Func<string, KextSignatureVerification> Signed(string team, string name = "Example Developer") => path => SignatureVerdicts.Valid(path, team, name);

    public KextSignatureVerification Verify(string bundlePath)
    {
        var id = KextBundle.Open(bundlePath).BundleId ?? "";
        return Facts.TryGetValue(id, out var f) ? f(bundlePath) : SignatureVerdicts.Unsigned(bundlePath);
    }
}

/// <summary>A temp folder with a simulated Mac in it, driven only through the CLI.</summary>
public sealed class ConsentCliFixture : IDisposable
{
    public TempDir Temp { get; } = new("kextrust-consentcli");

    /// <summary>Null: the real Mach-O signature verifier.</summary>
    public ConsentFixtureVerifier? Verifier { get; set; }

    public string MacDir => Temp.Combine("mac");

    /// <summary>Runs kextrust with <c>--machine MacDir</c> appended.</summary>
    public CliRunner.Result K(params string[] args) => Raw([.. args, "--machine", MacDir]);

    /// <summary>Runs kextrust as given (the verifier seam set for this call).</summary>
    public CliRunner.Result Raw(params string[] args)
    {
        MachineOption.VerifierOverride.Value = Verifier;
        try
        {
            return CliRunner.Run(args);
        }
        finally
        {
            MachineOption.VerifierOverride.Value = null;
        }
    }

    public CliRunner.Result Init(string macos = "11.7", string platform = "intel", params string[] extra) =>
        Raw(["machine", "init", MacDir, "--platform", platform, "--macos", macos, "--admin", "admin:admin-pw", "--user", "alice:alice-pw", .. extra]);

    /// <summary>Writes a kext (x86_64, importing _IOLog) with installer-like permissions (0755 folders, 0644 files).</summary>
    public string Kext(string bundleId, string version = "1.0.0", MachOTargetArchitecture arch = MachOTargetArchitecture.X86_64)
    {
        var parent = Temp.Combine("src", bundleId + "-" + version);
        Directory.CreateDirectory(parent);
        var path = KextBundleWriter.Write(parent, new KextBundleSpec(bundleId, version)
        {
            Libraries = new Dictionary<string, string> { ["com.apple.kpi.libkern"] = "8.0" },
            Slices = [new KextSliceSpec(arch, ["_IOLog"])],
        });
        if (!OperatingSystem.IsWindows())
        {
            foreach (var p in Directory.EnumerateFileSystemEntries(path, "*", SearchOption.AllDirectories).Prepend(path))
            {
                File.SetUnixFileMode(p, Directory.Exists(p) ? (UnixFileMode)0b111_101_101 : (UnixFileMode)0b110_100_100);
            }
        }
        return path;
    }

    /// <summary>Writes a .mobileconfig with one payload of <paramref name="type"/> whose keys are <paramref name="body"/>.</summary>
    public string Profile(string payloadUuid, string body, string type = "com.apple.syspolicy.kernel-extension-policy")
    {
        var path = Temp.Combine(payloadUuid + ".mobileconfig");
        File.WriteAllText(path, $"""
            <?xml version="1.0" encoding="UTF-8"?>
            <!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
            <plist version="1.0"><dict>
              <key>PayloadType</key><string>Configuration</string><key>PayloadVersion</key><integer>1</integer>
              <key>PayloadIdentifier</key><string>com.example.profile.{payloadUuid}</string>
              <key>PayloadDisplayName</key><string>Example kext policy</string>
              <key>PayloadUUID</key><string>{Guid.NewGuid()}</string><key>PayloadScope</key><string>System</string>
              <key>PayloadContent</key><array><dict>
                <key>PayloadType</key><string>{type}</string><key>PayloadVersion</key><integer>1</integer>
                <key>PayloadIdentifier</key><string>com.example.kext.{payloadUuid}</string>
                <key>PayloadUUID</key><string>{payloadUuid}</string>
                {body}
              </dict></array>
            </dict></plist>
            """);
        return path;
    }

    public void Dispose() => Temp.Dispose();
}

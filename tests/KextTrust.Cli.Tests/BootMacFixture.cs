using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Bundles;
using KextTrust.TestSupport;

namespace KextTrust.Cli.Tests;

/// <summary>The result of one kextrust run with <c>--json</c>: exit code, stderr and the parsed standard output.</summary>
public sealed record JsonResult(int ExitCode, JsonElement Json, string StdErr)
{
    /// <summary>The <c>error.code</c> of a failed run.</summary>
    public string? ErrorCode => Json.TryGetProperty("error", out var e) ? e.GetProperty("code").GetString() : null;

    /// <summary>A string property of the root object (null when JSON null).</summary>
    public string? Str(string name) => Json.GetProperty(name).GetString();

    /// <summary>The <c>bundleId</c>s of an array property.</summary>
    public string[] BundleIds(string arrayName) => [.. Json.GetProperty(arrayName).EnumerateArray().Select(k => k.GetProperty("bundleId").GetString()!)];

    /// <summary>The <c>code</c> of the entry for <paramref name="bundleId"/> in an array of excluded kexts.</summary>
    public string? ExclusionCode(string bundleId, string arrayName = "excluded") => Json.GetProperty(arrayName).EnumerateArray()
        .Where(k => k.GetProperty("bundleId").GetString() == bundleId).Select(k => k.GetProperty("code").GetString()).FirstOrDefault();
}

/// <summary>
/// One Apple-silicon Mac (macOS 14.5) built once through the CLI only, the way the seeds tell it: a private PKI
/// (<c>pki init</c>), four kexts (signed driver, unsigned, signed KAUTH user, signed banned — <c>codesign</c>), <c>machine
/// init --trust-root</c>, <c>install</c>, One True Recovery + <c>bputil -g -k</c>, <c>approve</c> (the team and the unsigned
/// kext), <c>kmutil create</c>, <c>startup</c>. Tests work on <see cref="Clone"/>s of it: a copy of the folder is the same
/// Mac (same Secure Enclave, same files). A second Mac (<see cref="OtherMacDir"/>) has its own Secure Enclave.
/// </summary>
public sealed class BootMacFixture : IDisposable
{
    public const string Team = "KT4TEST001";
    public const string Admin = "admin", AdminPassword = "admin-pw", User = "alice", UserPassword = "alice-pw";
    public const string Driver = "com.example.driver", Unsigned = "com.example.unsigned", Kauth = "com.example.kauthwatch",
        Banned = "com.example.banned", Rootkit = "com.evil.rootkit";

    public TempDir Temp { get; } = new("kextrust-bootmac");

    public BootMacFixture()
    {
        var pki = Temp.Combine("pki");
        Check(CliRunner.Run("pki", "init", pki, "--team", Team));
        var sources = Temp.Combine("src");
        string Write(string id, string kpi, string symbol) => KextBundleWriter.Write(sources, new KextBundleSpec(id, "1.0.0")
        {
            Libraries = new Dictionary<string, string> { [kpi] = "20.0", ["com.apple.kpi.libkern"] = "20.0" },
            Slices = [new KextSliceSpec(MachOTargetArchitecture.Arm64e, [symbol]), new KextSliceSpec(MachOTargetArchitecture.X86_64, [symbol])],
        });
        var driver = Write(Driver, "com.apple.kpi.iokit", "_IOLog");
        var unsigned = Write(Unsigned, "com.apple.kpi.iokit", "_IOLog");
        var kauth = Write(Kauth, "com.apple.kpi.bsd", "_kauth_listen_scope");
        var banned = Write(Banned, "com.apple.kpi.iokit", "_IOLog");
        RootkitSource = KextBundleWriter.Write(Temp.Combine("evil"), new KextBundleSpec(Rootkit, "6.6.6")
        {
            Libraries = new Dictionary<string, string> { ["com.apple.kpi.iokit"] = "20.0" },
            Slices = [new KextSliceSpec(MachOTargetArchitecture.Arm64e, ["_IOLog"])],
        });
        Check(CliRunner.Run("codesign", driver, kauth, banned, "--p12", Path.Combine(pki, "leaf.p12"), "--password", "kextrust"));

        Check(Init(MacDir, Path.Combine(pki, "root.pem")));
        Check(K(MacDir, "install", driver, unsigned, kauth, banned));
        Check(K(MacDir, "startup", "--recovery"));
        Check(K(MacDir, "bputil", "-g", "-k", "-u", Admin, "-p", AdminPassword));
        Check(K(MacDir, "startup"));
        Check(K(MacDir, "approve", "--team", Team, "--user", Admin, "--password", AdminPassword));
        Check(K(MacDir, "approve", "--bundle", Unsigned, "--user", Admin, "--password", AdminPassword));
        Create = Json(MacDir, "kmutil", "create", "-u", Admin, "-p", AdminPassword);
        Assert.True(Create.ExitCode == 0, Create.StdErr);
        var boot = Json(MacDir, "startup");
        Assert.True(boot.ExitCode == 0, boot.Json.ToString());
        Assert.Equal([Driver], boot.BundleIds("loaded"));

        Check(Init(OtherMacDir, null));
        Check(K(OtherMacDir, "startup", "--recovery"));
        Check(K(OtherMacDir, "bputil", "-g", "-k", "-u", Admin, "-p", AdminPassword));
    }

    /// <summary>The private PKI's root certificate (PEM) the Macs trust.</summary>
    public string TrustRootPem => Path.Combine(Temp.Combine("pki"), "root.pem");

    /// <summary>The built Mac (do not change it: clone it).</summary>
    public string MacDir => Temp.Combine("mac");

    /// <summary>A second Mac, Reduced Security with kexts allowed, with its own Secure Enclave.</summary>
    public string OtherMacDir => Temp.Combine("other-mac");

    /// <summary>An unsigned kext that was never installed nor approved.</summary>
    public string RootkitSource { get; }

    /// <summary>What <c>kmutil create --json</c> said when the Mac was built (SIP on).</summary>
    public JsonResult Create { get; }

    /// <summary>A copy of the built Mac in a fresh folder.</summary>
    public BootMac Clone()
    {
        var dir = new TempDir("kextrust-bootclone");
        CopyTree(MacDir, dir.Path);
        return new BootMac(dir);
    }

    public static CliRunner.Result K(string mac, params string[] args) => CliRunner.Run([.. args, "--machine", mac]);

    public static JsonResult Json(string mac, params string[] args)
    {
        var r = K(mac, [.. args, "--json"]);
        using var doc = JsonDocument.Parse(r.StdOut);
        return new JsonResult(r.ExitCode, doc.RootElement.Clone(), r.StdErr);
    }

    private static CliRunner.Result Init(string dir, string? trustRoot) => CliRunner.Run(["machine", "init", dir, "--platform", "apple-silicon", "--macos", "14.5",
        "--admin", $"{Admin}:{AdminPassword}", "--user", $"{User}:{UserPassword}", .. trustRoot is null ? Array.Empty<string>() : ["--trust-root", trustRoot]]);

    private static void Check(CliRunner.Result r) => Assert.True(r.ExitCode == 0, r.StdOut + r.StdErr);

    /// <summary>Copies a folder tree (files keep their Unix modes).</summary>
    public static void CopyTree(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var d in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
        {
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, d)));
        }
        foreach (var f in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            File.Copy(f, Path.Combine(to, Path.GetRelativePath(from, f)));
        }
    }

    public void Dispose() => Temp.Dispose();
}

/// <summary>A clone of the fixture's Mac, driven through the CLI.</summary>
public sealed class BootMac(TempDir dir) : IDisposable
{
    public const string AuxKcFolder = "Preboot/boot/AuxiliaryKernelExtensions";
    public const string AuxKc = AuxKcFolder + "/AuxiliaryKernelExtensions.kc";
    public const string Image4 = AuxKcFolder + "/AuxiliaryKernelExtensions.img4";
    public const string Receipt = AuxKcFolder + "/KextReceipt.plist";
    public const string LocalPolicy = "Preboot/LocalPolicy/LocalPolicy.im4m";
    public const string KextPolicy = "var/db/SystemPolicyConfiguration/KextPolicy";

    public string Dir => dir.Path;

    /// <summary>A file of the Mac by its path in the machine folder.</summary>
    public string PathOf(string relative) => Path.Combine(Dir, relative);

    public CliRunner.Result K(params string[] args) => BootMacFixture.K(Dir, args);

    public JsonResult Json(params string[] args) => BootMacFixture.Json(Dir, args);

    /// <summary>Runs a command that must succeed and returns its JSON.</summary>
    public JsonResult Ok(params string[] args)
    {
        var r = Json(args);
        Assert.True(r.ExitCode == 0, $"{string.Join(' ', args)}: exit {r.ExitCode}: {r.Json}{r.StdErr}");
        return r;
    }

    /// <summary>Runs a command that must succeed, without JSON.</summary>
    public void Run(params string[] args)
    {
        var r = K(args);
        Assert.True(r.ExitCode == 0, $"{string.Join(' ', args)}: exit {r.ExitCode}: {r.StdOut}{r.StdErr}");
    }

    public JsonResult Rebuild() => Ok("kmutil", "create", "-u", BootMacFixture.Admin, "-p", BootMacFixture.AdminPassword);

    /// <summary>Changes one byte (XOR 0x01) of a file of the Mac.</summary>
    public void FlipByte(string relative, long offset)
    {
        var path = PathOf(relative);
        var bytes = File.ReadAllBytes(path);
        bytes[offset] ^= 0x01;
        File.WriteAllBytes(path, bytes);
    }

    public byte[] Read(string relative) => File.ReadAllBytes(PathOf(relative));

    /// <summary>SHA-256 over every file's path and content (the machine lock file aside): any change shows.</summary>
    public string FolderHash()
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var f in Directory.EnumerateFiles(Dir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var rel = Path.GetRelativePath(Dir, f);
            if (rel == ".kextrust.lock")
            {
                continue;
            }
            h.AppendData(Encoding.UTF8.GetBytes(rel + "\0"));
            h.AppendData(File.ReadAllBytes(f));
        }
        return Convert.ToHexString(h.GetHashAndReset());
    }

    public void Dispose() => dir.Dispose();
}

[CollectionDefinition(Name)]
public sealed class BootMacCollection : ICollectionFixture<BootMacFixture>
{
    public const string Name = "boot mac";
}

using KextTrust.Boot.KernelManagement;
using KextTrust.Boot.Policy;
using KextTrust.Consent.Policy;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;
using KextTrust.Kexts.Signing;
using KextTrust.TestSupport;

namespace KextTrust.Boot.Tests.KernelManagement;

/// <summary>
/// A simulated volume with real kext bundles in <c>Library/Extensions</c> (written by <see cref="KextBundleWriter"/>),
/// the signature verdict for each (standing in for the bundle verifier), a UAKL and an exclude list.
/// </summary>
internal sealed class KextFixtures : IDisposable
{
    public const string Acme = "ACME000001";
    public const string Other = "OTHER00002";

    private static readonly Lazy<KpiCatalog> SharedCatalog = new(KpiCatalog.Load);

    private readonly Dictionary<string, KextSignatureVerification> _signatures = new(StringComparer.Ordinal);
    private readonly List<UaklEntry> _uakl = [];
    private readonly HashSet<string> _banned = new(StringComparer.Ordinal);

    public KextFixtures(string prefix = "kextrust-kmd")
    {
        Root = new TempDir(prefix);
        Extensions = Root.Combine("Library", "Extensions");
        Directory.CreateDirectory(Extensions);
    }

    public static KpiCatalog Catalog => SharedCatalog.Value;

    public TempDir Root { get; }
    public string Extensions { get; }

    public static KextSliceSpec Arm64e(params string[] imports) => new(MachOTargetArchitecture.Arm64e, imports);
    public static KextSliceSpec X86(params string[] imports) => new(MachOTargetArchitecture.X86_64, imports);

    public static Func<string, KextSignatureVerification> Signed(string team, string bundleId) => path =>
        SignatureVerdicts.Valid(path, team, cdhash: Convert.ToHexStringLower(System.Security.Cryptography.SHA1.HashData(System.Text.Encoding.UTF8.GetBytes(bundleId))));

    /// <summary>Writes a kext, records its signature verdict and (unless <paramref name="consent"/> is null) its UAKL entry.</summary>
    public string Add(KextBundleSpec spec, Func<string, KextSignatureVerification> verdict, ConsentSource? consent = ConsentSource.User, string? uaklTeam = null)
    {
        var path = KextBundleWriter.Write(Extensions, spec);
        var signature = verdict(path);
        _signatures[spec.BundleId] = signature;
        if (consent is { } source)
        {
            _uakl.Add(new UaklEntry(uaklTeam ?? signature.TeamId ?? "", spec.BundleId, source, null));
        }
        return path;
    }

    /// <summary>A signed, UAKL-approved kext for both architectures importing <paramref name="imports"/>.</summary>
    public string AddSigned(string bundleId, string[] imports, Dictionary<string, string>? libraries = null, ConsentSource consent = ConsentSource.User,
        string version = "1.0.0", string? compatible = null, string[]? defines = null, string team = Acme)
    {
        var slices = new[] { Arm64e(imports), X86(imports) };
        if (defines is not null)
        {
            slices = [.. slices.Select(s => s with { DefinedSymbols = ["_kmod_info", "_start", "_stop", .. defines] })];
        }
        return Add(new KextBundleSpec(bundleId, version)
        {
            Libraries = libraries ?? Kpis,
            Slices = slices,
            CompatibleVersion = compatible,
        }, Signed(team, bundleId), consent);
    }

    public static Dictionary<string, string> Kpis => new() { ["com.apple.kpi.iokit"] = "20.0", ["com.apple.kpi.libkern"] = "20.0" };

    public void Ban(string bundleId) => _banned.Add(bundleId);

    public void Approve(UaklEntry entry) => _uakl.Add(entry);

    public UserApprovedKextList Uakl => UserApprovedKextList.Create(_uakl);

    public AuxKcBuildRequest Request(KextArchitecture arch = KextArchitecture.Arm64, CsrConfig sip = CsrConfig.None, MacOSRelease? release = null) => new()
    {
        Candidates = [.. KextDiscovery.FindKexts(Extensions).Select(KextBundle.Open)],
        Uakl = Uakl,
        Architecture = arch,
        Release = release ?? MacOSRelease.Sequoia15_4,
        Sip = sip,
        IsBanned = (id, _) => _banned.Contains(id),
        VerifySignature = b => _signatures.GetValueOrDefault(b.BundleId ?? "") ?? SignatureVerdicts.Unsigned(b.Path),
        Catalog = Catalog,
        VolumeRoot = Root.Path,
    };

    public void Dispose() => Root.Dispose();
}

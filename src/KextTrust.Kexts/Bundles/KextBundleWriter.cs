using System.Security.Cryptography;
using System.Text;
using KextTrust.Formats.MachO;
using KextTrust.Formats.PropertyLists;

namespace KextTrust.Kexts.Bundles;

/// <summary>One architecture of a kext executable to write.</summary>
public sealed record KextSliceSpec(MachOTargetArchitecture Architecture, IReadOnlyList<string> UndefinedSymbols)
{
    /// <summary>External symbols the kext defines (e.g. its kmod_info and start/stop routines).</summary>
    public IReadOnlyList<string> DefinedSymbols { get; init; } = ["_kmod_info", "_start", "_stop"];

    public MachOVersion MinOS { get; init; } = MachOVersion.Create(11, 0);
}

/// <summary>A kext bundle to write: identity, libraries, executable slices, plug-ins.</summary>
public sealed record KextBundleSpec(string BundleId, string Version)
{
    /// <summary>Folder name; defaults to the last component of the bundle id plus ".kext".</summary>
    public string? FolderName { get; init; }

    /// <summary>CFBundleExecutable; null with no slices makes a codeless kext.</summary>
    public string? ExecutableName { get; init; }

    public IReadOnlyDictionary<string, string> Libraries { get; init; } = new Dictionary<string, string>();
    public IReadOnlyList<KextSliceSpec> Slices { get; init; } = [];
    public string? CompatibleVersion { get; init; }
    public string? OSBundleRequired { get; init; }
    public IReadOnlyList<KextBundleSpec> PlugIns { get; init; } = [];

    /// <summary>Use the old flat layout instead of <c>Contents/</c>.</summary>
    public bool FlatLayout { get; init; }

    /// <summary>Extra Info.plist keys (e.g. IOKitPersonalities).</summary>
    public IReadOnlyList<KeyValuePair<string, PlistNode>> ExtraInfo { get; init; } = [];

    internal string EffectiveFolderName => FolderName ?? BundleId[(BundleId.LastIndexOf('.') + 1)..] + KextDiscovery.KextExtension;
    internal string EffectiveExecutableName => ExecutableName ?? BundleId[(BundleId.LastIndexOf('.') + 1)..];
}

/// <summary>
/// Writes real kext bundles: an XML Info.plist in Apple's layout and a Mach-O <c>MH_KEXT_BUNDLE</c>
/// executable (thin, or fat when several slices are given) with the requested imports. Output is
/// deterministic: the UUID of each slice is derived from the bundle id, version and architecture.
/// </summary>
public static class KextBundleWriter
{
    /// <summary>Writes the bundle into <paramref name="parentDirectory"/> and returns its path.</summary>
    public static string Write(string parentDirectory, KextBundleSpec spec)
    {
        var bundle = Path.Combine(parentDirectory, spec.EffectiveFolderName);
        var contents = spec.FlatLayout ? bundle : Path.Combine(bundle, "Contents");
        Directory.CreateDirectory(contents);
        var hasCode = spec.Slices.Count > 0;
        File.WriteAllBytes(Path.Combine(contents, "Info.plist"), PropertyList.ToXml(InfoPlist(spec, hasCode)));
        if (hasCode)
        {
            var exeDir = spec.FlatLayout ? bundle : Path.Combine(contents, "MacOS");
            Directory.CreateDirectory(exeDir);
            File.WriteAllBytes(Path.Combine(exeDir, spec.EffectiveExecutableName), BuildExecutable(spec));
        }
        if (spec.PlugIns.Count > 0)
        {
            var plugins = Path.Combine(contents, "PlugIns");
            Directory.CreateDirectory(plugins);
            foreach (var p in spec.PlugIns)
            {
                Write(plugins, p);
            }
        }
        return bundle;
    }

    /// <summary>The Info.plist dictionary for <paramref name="spec"/>.</summary>
    public static PlistDictionary InfoPlist(KextBundleSpec spec, bool hasCode)
    {
        var entries = new List<KeyValuePair<string, PlistNode>>
        {
            new("CFBundleDevelopmentRegion", new PlistString("en")),
        };
        if (hasCode)
        {
            entries.Add(new("CFBundleExecutable", new PlistString(spec.EffectiveExecutableName)));
        }
        entries.Add(new("CFBundleIdentifier", new PlistString(spec.BundleId)));
        entries.Add(new("CFBundleInfoDictionaryVersion", new PlistString("6.0")));
        entries.Add(new("CFBundleName", new PlistString(spec.BundleId[(spec.BundleId.LastIndexOf('.') + 1)..])));
        entries.Add(new("CFBundlePackageType", new PlistString("KEXT")));
        entries.Add(new("CFBundleShortVersionString", new PlistString(spec.Version)));
        entries.Add(new("CFBundleVersion", new PlistString(spec.Version)));
        if (spec.CompatibleVersion is not null)
        {
            entries.Add(new("OSBundleCompatibleVersion", new PlistString(spec.CompatibleVersion)));
        }
        if (spec.Libraries.Count > 0)
        {
            entries.Add(new("OSBundleLibraries", new PlistDictionary(
                spec.Libraries.OrderBy(kv => kv.Key, StringComparer.Ordinal)
                    .Select(kv => new KeyValuePair<string, PlistNode>(kv.Key, new PlistString(kv.Value))))));
        }
        if (spec.OSBundleRequired is not null)
        {
            entries.Add(new("OSBundleRequired", new PlistString(spec.OSBundleRequired)));
        }
        entries.AddRange(spec.ExtraInfo);
        return new PlistDictionary(entries);
    }

    /// <summary>The executable bytes: thin for one slice, fat for several.</summary>
    internal static byte[] BuildExecutable(KextBundleSpec spec)
    {
        var slices = spec.Slices.Select(s => BuildSlice(spec, s)).ToArray();
        return slices.Length == 1 ? slices[0] : MachOFatBuilder.Build(slices.Select(s => (ReadOnlyMemory<byte>)s).ToArray());
    }

    private static byte[] BuildSlice(KextBundleSpec spec, KextSliceSpec slice)
    {
        // A few real instructions: x86_64 "xor eax,eax; ret", arm64 "mov w0,#0; ret".
        byte[] text = slice.Architecture == MachOTargetArchitecture.X86_64
            ? [0x31, 0xC0, 0xC3, 0x90]
            : [0x00, 0x00, 0x80, 0x52, 0xC0, 0x03, 0x5F, 0xD6];
        var builder = new KextBinaryBuilder(slice.Architecture, text)
        {
            Uuid = DeterministicUuid($"{spec.BundleId}/{spec.Version}/{slice.Architecture}"),
            MinOS = slice.MinOS,
            Data = new byte[16],
        };
        foreach (var d in slice.DefinedSymbols)
        {
            builder.AddDefinedSymbol(d, d == "_kmod_info" ? KextSymbolSection.Data : KextSymbolSection.Text);
        }
        foreach (var u in slice.UndefinedSymbols.Distinct(StringComparer.Ordinal))
        {
            builder.AddUndefinedSymbol(u);
        }
        return builder.Build();
    }

    private static Guid DeterministicUuid(string seed)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(seed), hash);
        var bytes = hash[..16].ToArray();
        bytes[6] = (byte)((bytes[6] & 0x0F) | 0x50); // version 5-style marker
        bytes[8] = (byte)((bytes[8] & 0x3F) | 0x80);
        return new Guid(bytes, bigEndian: true);
    }
}

using KextTrust.Formats;
using KextTrust.Formats.PropertyLists;

namespace KextTrust.Kexts.Bundles;

/// <summary>Where a bundle keeps its files.</summary>
public enum KextBundleLayout
{
    /// <summary><c>X.kext/Contents/{Info.plist, MacOS/exe, _CodeSignature/, PlugIns/}</c>.</summary>
    Contents,
    /// <summary>The old flat layout: <c>X.kext/{Info.plist, exe, _CodeSignature/, PlugIns/}</c>.</summary>
    Flat,
}

/// <summary>A library a kext links against: an <c>OSBundleLibraries</c> entry.</summary>
public sealed record KextLibraryReference(string BundleId, string RequestedVersion, KextVersion? Version);

/// <summary>
/// A kext bundle as it is on disk: its identity from <c>Info.plist</c>, the libraries it declares, its
/// executable (absent for a codeless kext), its nested plug-ins, and every problem found, each as a
/// typed <see cref="KextProblem"/> on the result rather than an exception. Opening reads only
/// Info.plist files and the folder tree; the executable is parsed on demand by the caller.
/// </summary>
public sealed class KextBundle
{
    private KextBundle(string path, KextBundleLayout layout)
    {
        Path = path;
        Layout = layout;
    }

    /// <summary>Full path of the bundle folder.</summary>
    public string Path { get; }

    public KextBundleLayout Layout { get; }

    /// <summary>Folder holding Info.plist (<c>Contents</c> or the bundle itself).</summary>
    public string ContentsPath => Layout == KextBundleLayout.Contents ? System.IO.Path.Combine(Path, "Contents") : Path;

    public string InfoPlistPath => System.IO.Path.Combine(ContentsPath, "Info.plist");

    /// <summary>The parsed Info.plist, when it is a readable dictionary.</summary>
    public PlistDictionary? InfoPlist { get; private set; }

    /// <summary>
    /// The bytes of Info.plist exactly as read and parsed when the bundle was opened (so that a signature check hashes
    /// the very bytes the facts came from); null when it was missing, an escaping link or unreadable.
    /// </summary>
    public ReadOnlyMemory<byte>? InfoPlistBytes { get; private set; }

    public string? BundleId { get; private set; }
    public string? VersionString { get; private set; }
    public KextVersion? Version { get; private set; }
    public string? CompatibleVersionString { get; private set; }
    public KextVersion? CompatibleVersion { get; private set; }
    public string? PackageType { get; private set; }
    public string? OSBundleRequired { get; private set; }

    /// <summary>CFBundleExecutable, or null for a codeless kext.</summary>
    public string? ExecutableName { get; private set; }

    /// <summary>Where the executable should be (null for a codeless kext); see <see cref="HasExecutable"/>.</summary>
    public string? ExecutablePath { get; private set; }

    public bool IsCodeless => ExecutableName is null;

    /// <summary>The executable exists inside the bundle and may be read.</summary>
    public bool HasExecutable { get; private set; }

    /// <summary><c>_CodeSignature</c> folder path (may not exist).</summary>
    public string CodeSignaturePath => System.IO.Path.Combine(ContentsPath, "_CodeSignature");

    public IReadOnlyList<KextLibraryReference> Libraries { get; private set; } = [];

    /// <summary>
    /// <c>OSBundleLibraries_&lt;arch&gt;</c> entries (e.g. <c>OSBundleLibraries_x86_64</c>), by architecture name: xnu's
    /// <c>OSKext::getPropertyForHostArch</c> reads <c>&lt;key&gt;_&lt;arch of the running kernel&gt;</c> before
    /// <c>&lt;key&gt;</c>, so a kernel of that architecture links against these instead of <see cref="Libraries"/>.
    /// </summary>
    public IReadOnlyDictionary<string, IReadOnlyList<KextLibraryReference>> ArchitectureLibraries { get; private set; } =
        new Dictionary<string, IReadOnlyList<KextLibraryReference>>(StringComparer.Ordinal);

    /// <summary>The libraries a kernel of <paramref name="architecture"/> (x86_64, arm64e, …) links this kext against.</summary>
    public IReadOnlyList<KextLibraryReference> LibrariesFor(string architecture)
    {
        ArgumentNullException.ThrowIfNull(architecture);
        return ArchitectureLibraries.TryGetValue(architecture, out var specific) ? specific : Libraries;
    }

    /// <summary>Names of the IOKitPersonalities entries.</summary>
    public IReadOnlyList<string> PersonalityNames { get; private set; } = [];

    public IReadOnlyList<KextBundle> PlugIns { get; private set; } = [];

    public IReadOnlyList<KextProblem> Problems { get; private set; } = [];

    /// <summary>Display name: the bundle id, else the folder name.</summary>
    public string DisplayName => BundleId ?? System.IO.Path.GetFileName(Path);

    /// <summary>
    /// Opens the bundle at <paramref name="path"/>. Throws <see cref="KextBundleException"/> only when
    /// the path is not a readable folder; everything wrong inside the bundle is in <see cref="Problems"/>.
    /// </summary>
    public static KextBundle Open(string path) => Open(path, depth: 0);

    private const int MaxPlugInDepth = 8;

    private static KextBundle Open(string path, int depth)
    {
        var full = System.IO.Path.GetFullPath(path).TrimEnd(System.IO.Path.DirectorySeparatorChar);
        var dir = new DirectoryInfo(full);
        if (!dir.Exists)
        {
            throw new KextBundleException(path, File.Exists(full) ? "not a folder (a kext is a bundle folder)" : "no such folder");
        }
        var layout = Directory.Exists(System.IO.Path.Combine(full, "Contents")) ? KextBundleLayout.Contents : KextBundleLayout.Flat;
        var bundle = new KextBundle(full, layout);
        var problems = new List<KextProblem>();
        var escaping = FindEscapingLinks(full, problems);
        bundle.ReadInfoPlist(problems, escaping);
        bundle.ReadPlugIns(problems, depth);
        bundle.Problems = problems;
        return bundle;
    }

    private void ReadInfoPlist(List<KextProblem> problems, HashSet<string> escaping)
    {
        var infoPath = InfoPlistPath;
        if (escaping.Contains(infoPath))
        {
            problems.Add(new(KextProblemCode.RequiredFileIsEscapingLink, "Info.plist is a link out of the bundle; not read", infoPath));
            return;
        }
        if (!File.Exists(infoPath))
        {
            problems.Add(new(KextProblemCode.InfoPlistMissing, "no Info.plist", infoPath));
            return;
        }
        PlistNode root;
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(infoPath);
            root = PropertyList.Parse(bytes, infoPath);
        }
        catch (KextTrustFormatException ex)
        {
            problems.Add(new(KextProblemCode.InfoPlistUnreadable, ex.Message, infoPath));
            return;
        }
        catch (IOException ex)
        {
            problems.Add(new(KextProblemCode.InfoPlistUnreadable, ex.Message, infoPath));
            return;
        }
        if (root is not PlistDictionary info)
        {
            problems.Add(new(KextProblemCode.InfoPlistNotDictionary, $"Info.plist's root is {root.GetType().Name}, not a dictionary", infoPath));
            return;
        }
        InfoPlist = info;
        InfoPlistBytes = bytes;

        BundleId = info.GetString("CFBundleIdentifier");
        if (string.IsNullOrEmpty(BundleId))
        {
            BundleId = null;
            problems.Add(new(KextProblemCode.BundleIdentifierMissing, "CFBundleIdentifier is missing or not a string", infoPath));
        }

        VersionString = info.GetString("CFBundleVersion");
        if (KextVersion.TryParse(VersionString, out var v))
        {
            Version = v;
        }
        else
        {
            problems.Add(new(KextProblemCode.BundleVersionInvalid,
                VersionString is null ? "CFBundleVersion is missing or not a string" : $"CFBundleVersion '{VersionString}' is not a kext version", infoPath));
        }

        CompatibleVersionString = info.GetString("OSBundleCompatibleVersion");
        if (CompatibleVersionString is not null)
        {
            if (!KextVersion.TryParse(CompatibleVersionString, out var cv))
            {
                problems.Add(new(KextProblemCode.CompatibleVersionInvalid, $"OSBundleCompatibleVersion '{CompatibleVersionString}' is not a kext version", infoPath));
            }
            else
            {
                CompatibleVersion = cv;
                if (Version is { } ver && cv > ver)
                {
                    problems.Add(new(KextProblemCode.CompatibleVersionInvalid, $"OSBundleCompatibleVersion {cv} is newer than CFBundleVersion {ver}", infoPath));
                }
            }
        }

        PackageType = info.GetString("CFBundlePackageType");
        if (PackageType is not null && PackageType != "KEXT")
        {
            problems.Add(new(KextProblemCode.PackageTypeNotKext, $"CFBundlePackageType is '{PackageType}', not KEXT", infoPath));
        }
        OSBundleRequired = info.GetString("OSBundleRequired");

        ReadLibraries(info, problems, infoPath);

        if (info.GetDictionary("IOKitPersonalities") is { } personalities)
        {
            PersonalityNames = personalities.Keys.ToArray();
        }

        ExecutableName = info.GetString("CFBundleExecutable");
        if (ExecutableName is not null)
        {
            var exeDir = Layout == KextBundleLayout.Contents ? System.IO.Path.Combine(ContentsPath, "MacOS") : Path;
            ExecutablePath = System.IO.Path.GetFullPath(System.IO.Path.Combine(exeDir, ExecutableName));
            if (!IsInside(Path, ExecutablePath) || escaping.Contains(ExecutablePath))
            {
                problems.Add(new(KextProblemCode.RequiredFileIsEscapingLink, $"CFBundleExecutable '{ExecutableName}' leads out of the bundle; not read", ExecutablePath));
            }
            else if (!File.Exists(ExecutablePath))
            {
                problems.Add(new(KextProblemCode.ExecutableMissing, $"CFBundleExecutable '{ExecutableName}' is not in the bundle", ExecutablePath));
            }
            else
            {
                HasExecutable = true;
            }
        }
    }

    private void ReadLibraries(PlistDictionary info, List<KextProblem> problems, string infoPath)
    {
        const string Key = "OSBundleLibraries";
        if (ReadLibraries(info, Key, problems, infoPath) is { } list)
        {
            Libraries = list;
        }
        Dictionary<string, IReadOnlyList<KextLibraryReference>>? byArch = null;
        foreach (var key in info.Keys)
        {
            if (key.Length > Key.Length + 1 && key[Key.Length] == '_' && key.StartsWith(Key, StringComparison.Ordinal)
                && ReadLibraries(info, key, problems, infoPath) is { } archList)
            {
                (byArch ??= new(StringComparer.Ordinal))[key[(Key.Length + 1)..]] = archList;
            }
        }
        if (byArch is not null)
        {
            ArchitectureLibraries = byArch;
        }
    }

    private static List<KextLibraryReference>? ReadLibraries(PlistDictionary info, string key, List<KextProblem> problems, string infoPath)
    {
        if (!info.ContainsKey(key))
        {
            return null;
        }
        if (info.GetDictionary(key) is not { } libs)
        {
            problems.Add(new(KextProblemCode.LibrariesNotDictionary, $"{key} is not a dictionary", infoPath));
            return null;
        }
        var list = new List<KextLibraryReference>();
        foreach (var id in libs.Keys)
        {
            var requested = libs.GetString(id);
            if (requested is null)
            {
                problems.Add(new(KextProblemCode.LibraryVersionInvalid, $"{key}['{id}'] is not a string", infoPath));
                list.Add(new(id, "", null));
                continue;
            }
            if (KextVersion.TryParse(requested, out var rv))
            {
                list.Add(new(id, requested, rv));
            }
            else
            {
                problems.Add(new(KextProblemCode.LibraryVersionInvalid, $"{key}['{id}'] = '{requested}' is not a kext version", infoPath));
                list.Add(new(id, requested, null));
            }
        }
        return list;
    }

    private void ReadPlugIns(List<KextProblem> problems, int depth)
    {
        var plugInsDir = System.IO.Path.Combine(ContentsPath, "PlugIns");
        if (!Directory.Exists(plugInsDir) || new DirectoryInfo(plugInsDir).LinkTarget is not null)
        {
            return;
        }
        var list = new List<KextBundle>();
        foreach (var child in Directory.EnumerateDirectories(plugInsDir).Order(StringComparer.Ordinal))
        {
            if (!child.EndsWith(KextDiscovery.KextExtension, StringComparison.OrdinalIgnoreCase) || new DirectoryInfo(child).LinkTarget is not null)
            {
                continue;
            }
            if (depth + 1 > MaxPlugInDepth)
            {
                problems.Add(new(KextProblemCode.PlugInUnreadable, $"plug-ins nested deeper than {MaxPlugInDepth} levels are not read", child));
                continue;
            }
            try
            {
                list.Add(Open(child, depth + 1));
            }
            catch (KextBundleException ex)
            {
                problems.Add(new(KextProblemCode.PlugInUnreadable, ex.Reason, child));
            }
        }
        PlugIns = list;
    }

    /// <summary>Reports every symbolic link in the bundle that is absolute or resolves outside it.</summary>
    private static HashSet<string> FindEscapingLinks(string root, List<KextProblem> problems)
    {
        var escaping = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Stack<string>();
        pending.Push(root);
        while (pending.Count > 0)
        {
            var dir = pending.Pop();
            IEnumerable<FileSystemInfo> entries;
            try
            {
                entries = new DirectoryInfo(dir).EnumerateFileSystemInfos().ToArray();
            }
            catch (Exception ex) when (ex is UnauthorizedAccessException or IOException)
            {
                continue;
            }
            foreach (var entry in entries)
            {
                var target = entry.LinkTarget;
                if (target is not null)
                {
                    var resolved = System.IO.Path.IsPathRooted(target)
                        ? target
                        : System.IO.Path.GetFullPath(System.IO.Path.Combine(dir, target));
                    if (System.IO.Path.IsPathRooted(target) || !IsInside(root, resolved))
                    {
                        escaping.Add(entry.FullName);
                        problems.Add(new(KextProblemCode.SymlinkEscapesBundle, $"symbolic link to '{target}' leaves the bundle", entry.FullName));
                    }
                    continue; // never follow links
                }
                if (entry is DirectoryInfo)
                {
                    pending.Push(entry.FullName);
                }
            }
        }
        return escaping;
    }

    private static bool IsInside(string root, string path)
    {
        var rel = System.IO.Path.GetRelativePath(root, path);
        return rel != ".." && !rel.StartsWith(".." + System.IO.Path.DirectorySeparatorChar, StringComparison.Ordinal) && !System.IO.Path.IsPathRooted(rel);
    }

    /// <summary>This bundle and all nested plug-ins, depth first.</summary>
    public IEnumerable<KextBundle> SelfAndPlugIns()
    {
        yield return this;
        foreach (var p in PlugIns)
        {
            foreach (var q in p.SelfAndPlugIns())
            {
                yield return q;
            }
        }
    }
}

using System.Collections.Concurrent;
using System.Collections.Immutable;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;

namespace KextTrust.Kexts.Audit;

/// <summary>
/// The kernel linker's view of a kext, per slice and macOS release: every imported symbol resolved against the
/// libraries the kext declares in OSBundleLibraries — KPI pseudo-kexts from the <see cref="KpiCatalog"/>,
/// <c>com.apple.kernel</c>, kexts found beside it (by their own exports), and Apple family kexts accepted by name
/// (C++ symbols naming a class of a <see cref="KpiFamilies"/> family resolve to that family; other C++ symbols are
/// "assumed" from the declared Apple families). Reports unresolved symbols, assumed symbols, unused and unknown
/// libraries, and requested versions outside a library's OSBundleCompatibleVersion…CFBundleVersion range.
/// </summary>
public sealed class KextLinkChecker
{
    /// <summary>The pseudo-kext standing for the whole kernel.</summary>
    public const string KernelBundleId = "com.apple.kernel";

    private const string KpiPrefix = "com.apple.kpi.";
    private const string ApplePrefix = "com.apple.";

    /// <summary>Families whose classes are known, in the order a symbol is matched against them.</summary>
    private static readonly ImmutableArray<KpiFamily> ClassFamilies =
    [
        KpiFamilies.IOHID, KpiFamilies.IOUSB, KpiFamilies.IOUSBHost, KpiFamilies.IONetworking, KpiFamilies.IOSerial,
        KpiFamilies.IOPCI, KpiFamilies.IOStorage, KpiFamilies.IOAudio, KpiFamilies.IOSCSI,
    ];

    private readonly KpiCatalog _catalog;

    // Memo of catalog lookups: symbol → exporting bundles per (release, architecture) slot. Kexts share most of their
    // imports, so a scan does one catalog lookup per distinct symbol and slot. Grows with the distinct imports seen.
    private readonly ConcurrentDictionary<string, IReadOnlyCollection<string>?[]> _exporters = new(StringComparer.Ordinal);

    /// <summary>A checker over a loaded catalog (load it once per process). Thread-safe.</summary>
    public KextLinkChecker(KpiCatalog catalog)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        _catalog = catalog;
    }

    /// <summary>Checks a kext's slices against its declared libraries.</summary>
    /// <param name="declared">The kext's OSBundleLibraries.</param>
    /// <param name="slices">Its executable's slices (empty for a codeless kext: only libraries are checked).</param>
    /// <param name="findLibrary">Finds a non-kernel library kext by bundle id (beside the kext, in its PlugIns, or given); null when none.</param>
    /// <param name="releases">Releases to check; null = <see cref="MacOSRelease.All"/>.</param>
    public KextLinkReport Check(
        IReadOnlyList<KextLibraryReference> declared,
        IReadOnlyList<KextSliceFacts> slices,
        Func<string, KextLibrary?>? findLibrary = null,
        IReadOnlyList<MacOSRelease>? releases = null)
    {
        ArgumentNullException.ThrowIfNull(declared);
        ArgumentNullException.ThrowIfNull(slices);
        releases ??= MacOSRelease.All;
        var libs = declared.Select(l => Classify(l, findLibrary)).ToArray();
        var ctx = new Context(libs);
        var used = new HashSet<string>(StringComparer.Ordinal);
        var results = ImmutableArray.CreateBuilder<KextLinkResult>();
        var familyOf = new Dictionary<string, KpiFamily?>(StringComparer.Ordinal);

        foreach (var slice in slices)
        {
            if (slice.KextArchitecture is not { } arch)
            {
                continue;
            }
            var bundledExports = ctx.Bundled.Select(b => (b.Reference.BundleId, Exports: b.Library!.Executable?.ExportsFor(arch))).ToArray();
            foreach (var release in releases)
            {
                if (!KpiCatalog.Supports(release, arch))
                {
                    continue;
                }
                var unresolved = ImmutableArray.CreateBuilder<KextUnresolvedSymbol>();
                var assumed = ImmutableArray.CreateBuilder<KextAssumedSymbol>();
                foreach (var symbol in slice.UndefinedSymbols)
                {
                    Resolve(symbol, release, arch, ctx, bundledExports, familyOf, used, unresolved, assumed);
                }
                results.Add(new KextLinkResult(release, slice.Architecture, arch, unresolved.ToImmutable(), assumed.ToImmutable()));
            }
        }

        var hasCode = slices.Any(s => s.KextArchitecture is not null);
        var uses = libs.Select(l => new KextLibraryUse(
            l.Reference.BundleId,
            l.Reference.RequestedVersion,
            l.Kind,
            l.Library?.Path,
            !hasCode || l.Kind is KextLibraryKind.AppleFamily or KextLibraryKind.Unknown or KextLibraryKind.KernelResource
                ? null
                : used.Contains(l.Reference.BundleId)));
        var checks = releases.Select(r => new KextLibraryCheck(r, LibraryProblems(libs, r)));
        return new KextLinkReport([.. uses], results.ToImmutable(), [.. checks]);
    }

    private void Resolve(
        string symbol,
        MacOSRelease release,
        KextArchitecture arch,
        Context ctx,
        (string BundleId, IReadOnlySet<string>? Exports)[] bundledExports,
        Dictionary<string, KpiFamily?> familyOf,
        HashSet<string> used,
        ImmutableArray<KextUnresolvedSymbol>.Builder unresolved,
        ImmutableArray<KextAssumedSymbol>.Builder assumed)
    {
        var resolved = false;
        var exporters = Exporters(release, arch, symbol);
        foreach (var b in exporters)
        {
            if (ctx.Declared.Contains(b))
            {
                used.Add(b);
                resolved = true;
            }
        }
        if (!resolved && ctx.KernelDeclared && (exporters.Count > 0 || _catalog.IsKernelOnlyExport(release, arch, symbol)))
        {
            used.Add(KernelBundleId);
            resolved = true;
        }
        foreach (var (id, exports) in bundledExports)
        {
            if (exports is not null && exports.Contains(symbol))
            {
                used.Add(id);
                resolved = true;
            }
        }
        if (resolved)
        {
            return;
        }

        var mangled = ItaniumIdentifiers.IsMangled(symbol);
        var family = mangled ? FamilyOf(symbol, familyOf) : null;
        if (family is not null)
        {
            var lib = family.LibraryIds.FirstOrDefault(ctx.AppleFamilies.Contains);
            if (lib is not null)
            {
                return; // an Apple family accepted by name, and the symbol names one of its classes
            }
        }

        var candidates = ImmutableArray.CreateBuilder<string>();
        if (ctx.KernelDeclared)
        {
            candidates.Add(KernelBundleId);
        }
        if (mangled && family is null)
        {
            candidates.AddRange(ctx.AppleFamilies);
        }
        candidates.AddRange(ctx.Unknown);
        if (candidates.Count > 0)
        {
            assumed.Add(new KextAssumedSymbol(symbol, candidates.ToImmutable()));
            if (ctx.KernelDeclared)
            {
                used.Add(KernelBundleId);
            }
            return;
        }

        var available = new SortedSet<string>(exporters, StringComparer.Ordinal);
        if (family is not null)
        {
            available.Add(family.LibraryIds[0]);
        }
        unresolved.Add(new KextUnresolvedSymbol(symbol, [.. available]));
    }

    private IReadOnlyCollection<string> Exporters(MacOSRelease release, KextArchitecture arch, string symbol)
    {
        var row = _exporters.GetOrAdd(symbol, static _ => new IReadOnlyCollection<string>?[MacOSRelease.All.Count * 2]);
        var slot = release.Index * 2 + (int)arch;
        return row[slot] ??= _catalog.ExportingBundles(release, arch, symbol);
    }

    private static KpiFamily? FamilyOf(string symbol, Dictionary<string, KpiFamily?> cache)
    {
        if (cache.TryGetValue(symbol, out var known))
        {
            return known;
        }
        KpiFamily? hit = null;
        foreach (var identifier in ItaniumIdentifiers.Extract(symbol))
        {
            hit = ClassFamilies.FirstOrDefault(f => f.MatchesIdentifier(identifier));
            if (hit is not null)
            {
                break;
            }
        }
        cache[symbol] = hit;
        return hit;
    }

    private ClassifiedLibrary Classify(KextLibraryReference reference, Func<string, KextLibrary?>? findLibrary)
    {
        var id = reference.BundleId;
        if (_catalog.IsKernelPseudoKext(id))
        {
            var kind = id == KernelBundleId ? KextLibraryKind.Kernel
                : _catalog.IsKpiBundle(id) ? KextLibraryKind.KpiBundle
                : KextLibraryKind.KernelResource;
            return new ClassifiedLibrary(reference, kind, null);
        }
        if (findLibrary?.Invoke(id) is { } found)
        {
            return new ClassifiedLibrary(reference, KextLibraryKind.Bundled, found);
        }
        if (id.StartsWith(ApplePrefix, StringComparison.Ordinal) && !id.StartsWith(KpiPrefix, StringComparison.Ordinal))
        {
            return new ClassifiedLibrary(reference, KextLibraryKind.AppleFamily, null);
        }
        return new ClassifiedLibrary(reference, KextLibraryKind.Unknown, null);
    }

    private ImmutableArray<KextLibraryProblem> LibraryProblems(ClassifiedLibrary[] libs, MacOSRelease release)
    {
        var problems = ImmutableArray.CreateBuilder<KextLibraryProblem>();
        foreach (var l in libs)
        {
            var r = l.Reference;
            switch (l.Kind)
            {
                case KextLibraryKind.KpiBundle or KextLibraryKind.Kernel or KextLibraryKind.KernelResource:
                    var pk = _catalog.FindPseudoKext(release, r.BundleId);
                    if (pk is null)
                    {
                        problems.Add(new(r.BundleId, KextLibraryProblemKind.Missing, r.RequestedVersion, null, null,
                            $"{r.BundleId} does not exist on {release}"));
                        break;
                    }
                    KextVersion.TryParse(pk.CompatibleVersion, out var pkCompat);
                    KextVersion.TryParse(pk.Version, out var pkVersion);
                    AddVersionProblem(problems, r, pk.CompatibleVersion is null ? null : pkCompat, pk.CompatibleVersion, pkVersion, pk.Version, $" on {release}");
                    break;
                case KextLibraryKind.Bundled:
                    var lib = l.Library!;
                    AddVersionProblem(problems, r, lib.CompatibleVersion, lib.CompatibleVersion?.Text, lib.Version, lib.Version?.Text, $" ({lib.Path})");
                    break;
                case KextLibraryKind.Unknown when r.BundleId.StartsWith(KpiPrefix, StringComparison.Ordinal):
                    problems.Add(new(r.BundleId, KextLibraryProblemKind.Missing, r.RequestedVersion, null, null,
                        $"{r.BundleId} is no kernel KPI bundle of {release}"));
                    break;
            }
        }
        return problems.ToImmutable();
    }

    private static void AddVersionProblem(
        ImmutableArray<KextLibraryProblem>.Builder problems,
        KextLibraryReference r,
        KextVersion? compatible,
        string? compatibleText,
        KextVersion? version,
        string? versionText,
        string where)
    {
        if (r.Version is not { } requested)
        {
            problems.Add(new(r.BundleId, KextLibraryProblemKind.RequestedVersionInvalid, r.RequestedVersion, compatibleText, versionText,
                $"{r.BundleId}: requested version '{r.RequestedVersion}' is not a kext version"));
            return;
        }
        if (compatible is not { } c || version is not { } v)
        {
            problems.Add(new(r.BundleId, KextLibraryProblemKind.NotALibrary, r.RequestedVersion, compatibleText, versionText,
                $"{r.BundleId}{where} has no OSBundleCompatibleVersion: no kext can link against it"));
            return;
        }
        if (!v.Satisfies(requested, c))
        {
            problems.Add(new(r.BundleId, KextLibraryProblemKind.VersionOutOfRange, r.RequestedVersion, compatibleText, versionText,
                $"{r.BundleId} {r.RequestedVersion} requested, {where.Trim()} it provides {compatibleText}…{versionText}"));
        }
    }

    private sealed record ClassifiedLibrary(KextLibraryReference Reference, KextLibraryKind Kind, KextLibrary? Library);

    private sealed class Context
    {
        public Context(ClassifiedLibrary[] libs)
        {
            Declared = libs.Select(l => l.Reference.BundleId).ToHashSet(StringComparer.Ordinal);
            KernelDeclared = libs.Any(l => l.Kind == KextLibraryKind.Kernel);
            Bundled = libs.Where(l => l.Kind == KextLibraryKind.Bundled).ToArray();
            // Families whose classes we do not know come first: they are the likelier source of an unknown class.
            AppleFamilies = libs.Where(l => l.Kind == KextLibraryKind.AppleFamily)
                .OrderBy(l => ClassFamilies.Any(f => f.LibraryIds.Contains(l.Reference.BundleId)) ? 1 : 0)
                .Select(l => l.Reference.BundleId)
                .ToArray();
            Unknown = libs.Where(l => l.Kind == KextLibraryKind.Unknown && !l.Reference.BundleId.StartsWith(KpiPrefix, StringComparison.Ordinal))
                .Select(l => l.Reference.BundleId)
                .ToArray();
        }

        public HashSet<string> Declared { get; }

        public bool KernelDeclared { get; }

        public ClassifiedLibrary[] Bundled { get; }

        public string[] AppleFamilies { get; }

        public string[] Unknown { get; }
    }
}

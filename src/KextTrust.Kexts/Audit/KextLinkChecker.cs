using System.Collections.Concurrent;
using System.Collections.Immutable;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;

namespace KextTrust.Kexts.Audit;

/// <summary>
/// The kernel linker's view of a kext, per slice and macOS release: every imported symbol resolved against the
/// libraries the kext declares in OSBundleLibraries — KPI pseudo-kexts from the <see cref="KpiCatalog"/>,
/// <c>com.apple.kernel</c>, kexts found beside it (by their own exports), and Apple family kexts accepted by name
/// (where Apple publishes a family's export list for a release, the catalog's <see cref="KpiSymbolExports.Families"/>
/// decide; where it does not, C++ symbols naming a class of a <see cref="KpiFamilies"/> family resolve to that family,
/// and any other symbol the kernel's KPI sets do not export is "assumed" from the declared families whose exports are
/// unknown — never refused). Reserved vtable slots resolve wherever their class's vtable does (the linker patches
/// them). Reports unresolved symbols (with the libraries that would provide them), assumed symbols (with their
/// candidate libraries), unused and unknown libraries, and requested versions outside a library's
/// OSBundleCompatibleVersion…CFBundleVersion range.
/// </summary>
internal sealed class KextLinkChecker
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
    private readonly KextImportIndex _imports;

    // Parsed versions of the catalog's pseudo-kexts (a few hundred), by instance.
    private readonly ConcurrentDictionary<PseudoKext, (KextVersion? Compatible, KextVersion? Version)> _pseudoKextVersions = new(ReferenceEqualityComparer.Instance);

    /// <summary>A checker over a loaded catalog (load it once per process). Thread-safe.</summary>
    public KextLinkChecker(KpiCatalog catalog)
        : this(catalog, new KextImportIndex(catalog))
    {
    }

    /// <summary>A checker sharing an import index (and its memo) with the caller. Thread-safe.</summary>
    public KextLinkChecker(KpiCatalog catalog, KextImportIndex imports)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(imports);
        _catalog = catalog;
        _imports = imports;
    }

    /// <summary>Checks a kext's slices against its declared libraries.</summary>
    /// <param name="declared">The kext's OSBundleLibraries.</param>
    /// <param name="slices">Its executable's slices (empty for a codeless kext: only libraries are checked).</param>
    /// <param name="findLibrary">Finds a non-kernel library kext by bundle id (beside the kext, in its PlugIns, or given); null when none.</param>
    /// <param name="releases">Releases to check; null = <see cref="MacOSRelease.All"/>.</param>
    /// <param name="explain">Also record, per symbol, which library provided it (<see cref="KextLinkResult.Bindings"/>).</param>
    public KextLinkReport Check(
        IReadOnlyList<KextLibraryReference> declared,
        IReadOnlyList<KextSliceFacts> slices,
        Func<string, KextLibrary?>? findLibrary = null,
        IReadOnlyList<MacOSRelease>? releases = null,
        bool explain = false) =>
        Check(declared, slices, null, findLibrary, releases, explain);

    /// <summary>As <see cref="Check(IReadOnlyList{KextLibraryReference}, IReadOnlyList{KextSliceFacts}, Func{string, KextLibrary?}?, IReadOnlyList{MacOSRelease}?, bool)"/>, with each slice's imports already looked up in this checker's index.</summary>
    internal KextLinkReport Check(
        IReadOnlyList<KextLibraryReference> declared,
        IReadOnlyList<KextSliceFacts> slices,
        IReadOnlyList<KextImportFacts[]>? sliceImports,
        Func<string, KextLibrary?>? findLibrary,
        IReadOnlyList<MacOSRelease>? releases,
        bool explain = false)
    {
        ArgumentNullException.ThrowIfNull(declared);
        ArgumentNullException.ThrowIfNull(slices);
        releases ??= MacOSRelease.All;
        var libs = declared.Select(l => Classify(l, findLibrary)).ToArray();
        var ctx = new Context(libs, _catalog);
        var used = new HashSet<string>(StringComparer.Ordinal);
        var results = ImmutableArray.CreateBuilder<KextLinkResult>();
        var sources = explain ? new List<Provision>() : null;

        for (var sliceIndex = 0; sliceIndex < slices.Count; sliceIndex++)
        {
            var slice = slices[sliceIndex];
            if (slice.KextArchitecture is not { } arch)
            {
                continue;
            }
            var checkedReleases = releases.Where(r => KpiCatalog.Supports(r, arch)).ToArray();
            if (checkedReleases.Length == 0)
            {
                continue;
            }
            var slots = checkedReleases.Select(r => KpiCatalog.Slot(r, arch)).ToArray();
            var checkedSlots = slots.Aggregate(0, (m, b) => m | b);
            var bundledExports = ctx.Bundled.Select(b => (b.Reference.BundleId, Exports: b.Library!.Executable?.ExportsFor(arch))).ToArray();
            var unresolved = new ImmutableArray<KextUnresolvedSymbol>.Builder?[slots.Length];
            var assumed = new ImmutableArray<KextAssumedSymbol>.Builder?[slots.Length];
            var bindings = explain ? slots.Select(_ => ImmutableArray.CreateBuilder<KextSymbolBinding>()).ToArray() : null;
            // Symbol by symbol, every checked release at once: one index lookup per import, slot masks for the rest.
            foreach (var facts in sliceImports?[sliceIndex] ?? _imports.Imports(slice))
            {
                sources?.Clear();
                var resolvedSlots = Provide(facts, ctx, checkedSlots, bundledExports, used, sources, KextSymbolSource.KpiBundle);
                if (facts.ClassVtable is { } vtable && (checkedSlots & ~resolvedSlots) != 0)
                {
                    if (facts.IsPadSlot)
                    {
                        // A reserved vtable slot (_RESERVED<Class><n>): the kernel linker patches it from the class's
                        // vtable (kxld_vtable.c; kmutil likewise), so it resolves wherever that vtable does.
                        resolvedSlots |= Provide(_imports[vtable], ctx, checkedSlots & ~resolvedSlots, bundledExports, used, sources, KextSymbolSource.VtablePatch);
                    }
                    else if (slice.DefinedExternalSymbols.Contains(vtable))
                    {
                        // A member of a class this kext defines (its vtable is here) that the kext does not implement:
                        // a virtual method declared, not defined; the linker patches its vtable entry from the superclass.
                        sources?.Add(new(KextSymbolSource.VtablePatch, vtable, checkedSlots & ~resolvedSlots));
                        resolvedSlots = checkedSlots;
                    }
                }
                if (bindings is null && (checkedSlots & ~resolvedSlots) == 0)
                {
                    continue;
                }
                for (var i = 0; i < slots.Length; i++)
                {
                    if ((resolvedSlots & slots[i]) == 0)
                    {
                        var (source, libraries) = Unresolved(facts, slots[i], ctx, used, ref unresolved[i], ref assumed[i]);
                        bindings?[i].Add(new KextSymbolBinding(facts.Symbol, source, libraries));
                    }
                    else if (bindings is not null)
                    {
                        bindings[i].Add(Binding(facts.Symbol, slots[i], sources!));
                    }
                }
            }
            for (var i = 0; i < slots.Length; i++)
            {
                results.Add(new KextLinkResult(checkedReleases[i], slice.Architecture, arch,
                    unresolved[i]?.ToImmutable() ?? [], assumed[i]?.ToImmutable() ?? [])
                {
                    Bindings = bindings?[i].ToImmutable() ?? [],
                });
            }
        }

        var hasCode = slices.Any(s => s.KextArchitecture is not null);
        var uses = libs.Select(l => new KextLibraryUse(
            l.Reference.BundleId,
            l.Reference.RequestedVersion,
            l.Kind,
            l.Library?.Path,
            !hasCode || l.Kind is KextLibraryKind.Unknown or KextLibraryKind.KernelResource
                || (l.Kind == KextLibraryKind.AppleFamily && (ctx.KnownFamilySlots(l.Reference.BundleId) & ReleaseSlots(releases)) == 0)
                ? null
                : used.Contains(l.Reference.BundleId)));
        var checks = releases.Select(r => new KextLibraryCheck(r, LibraryProblems(libs, r)));
        return new KextLinkReport([.. uses], results.ToImmutable(), [.. checks]);
    }

    /// <summary>One library that provided a symbol on some slots (for <see cref="KextLinkResult.Bindings"/>).</summary>
    private readonly record struct Provision(KextSymbolSource Source, string Library, int Slots);

    /// <summary>
    /// The slots (of <paramref name="checkedSlots"/>) on which a declared library exports <paramref name="facts"/>'s
    /// symbol: a KPI bundle, the kernel (com.apple.kernel), an Apple family's published export list, a library kext
    /// found beside the kext. Marks those libraries used; records them in <paramref name="sources"/> when explaining.
    /// </summary>
    private static int Provide(
        KextImportFacts facts,
        Context ctx,
        int checkedSlots,
        (string BundleId, IReadOnlySet<string>? Exports)[] bundledExports,
        HashSet<string> used,
        List<Provision>? sources,
        KextSymbolSource kind)
    {
        var resolvedSlots = 0;
        foreach (var (bundle, bundleSlots) in facts.Exports.Bundles)
        {
            if ((bundleSlots & checkedSlots) != 0 && ctx.Declared.Contains(bundle))
            {
                used.Add(bundle);
                resolvedSlots |= bundleSlots;
                sources?.Add(new(kind, bundle, bundleSlots));
            }
        }
        var kernelSlots = (facts.Exports.ExportedSlots | facts.Exports.KernelOnlySlots) & checkedSlots & ~resolvedSlots;
        if (ctx.KernelDeclared && kernelSlots != 0)
        {
            used.Add(KernelBundleId);
            resolvedSlots |= kernelSlots;
            sources?.Add(new(kind == KextSymbolSource.KpiBundle ? KextSymbolSource.Kernel : kind, KernelBundleId, kernelSlots));
        }
        foreach (var (family, familySlots) in facts.Exports.Families)
        {
            if ((familySlots & checkedSlots) != 0 && ctx.Declared.Contains(family))
            {
                used.Add(family);
                resolvedSlots |= familySlots;
                sources?.Add(new(kind == KextSymbolSource.KpiBundle ? KextSymbolSource.AppleFamilyExports : kind, family, familySlots));
            }
        }
        foreach (var (id, exports) in bundledExports)
        {
            if (exports is not null && exports.Contains(facts.Symbol))
            {
                used.Add(id);
                resolvedSlots = checkedSlots;
                sources?.Add(new(kind == KextSymbolSource.KpiBundle ? KextSymbolSource.BundledLibrary : kind, id, checkedSlots));
            }
        }
        return resolvedSlots & checkedSlots;
    }

    /// <summary>How a symbol resolved on one slot, from the libraries <see cref="Provide"/> recorded.</summary>
    private static KextSymbolBinding Binding(string symbol, int slot, List<Provision> sources)
    {
        KextSymbolSource? source = null;
        var libraries = ImmutableArray.CreateBuilder<string>();
        foreach (var p in sources)
        {
            if ((p.Slots & slot) != 0 && (source is null || source == p.Source) && !libraries.Contains(p.Library))
            {
                source = p.Source;
                libraries.Add(p.Library);
            }
        }
        return new KextSymbolBinding(symbol, source ?? KextSymbolSource.Unresolved, libraries.ToImmutable());
    }

    private static int ReleaseSlots(IReadOnlyList<MacOSRelease> releases) =>
        releases.Aggregate(0, (m, r) => m | KpiCatalog.ReleaseSlots(r));

    /// <summary>
    /// A symbol no declared library exports on one slot: accepted from a family by class name, assumed from a library
    /// whose exports are not known there, or unresolved. Returns how it was bound and by which libraries.
    /// </summary>
    private static (KextSymbolSource Source, ImmutableArray<string> Libraries) Unresolved(
        KextImportFacts facts,
        int slot,
        Context ctx,
        HashSet<string> used,
        ref ImmutableArray<KextUnresolvedSymbol>.Builder? unresolved,
        ref ImmutableArray<KextAssumedSymbol>.Builder? assumed)
    {
        var family = facts.Family;
        if (family is not null)
        {
            foreach (var id in family.LibraryIds)
            {
                if (Array.IndexOf(ctx.AppleFamilies, id) >= 0 && (ctx.KnownFamilySlots(id) & slot) == 0)
                {
                    // An Apple family accepted by name: the symbol names one of its classes and its exports are not
                    // known on this release (where they are, its list alone decides).
                    return (KextSymbolSource.AppleFamilyClass, family.LibraryIds);
                }
            }
        }

        // Families whose exports are not known here may provide any symbol the kernel's KPI sets do not export there
        // (a C++ name of another family's class excepted): assumed, never refused.
        var fromFamilies = family is null && (facts.IsMangled || (facts.Exports.ExportedSlots & slot) == 0)
            ? ctx.UnknownFamiliesOn(slot)
            : [];
        var count = (ctx.KernelDeclared ? 1 : 0) + fromFamilies.Length + ctx.Unknown.Length;
        if (count > 0)
        {
            var candidates = ImmutableArray.CreateBuilder<string>(count);
            if (ctx.KernelDeclared)
            {
                candidates.Add(KernelBundleId);
            }
            candidates.AddRange(fromFamilies);
            candidates.AddRange(ctx.Unknown);
            var libraries = candidates.MoveToImmutable();
            (assumed ??= ImmutableArray.CreateBuilder<KextAssumedSymbol>()).Add(new KextAssumedSymbol(facts.Symbol, libraries));
            if (ctx.KernelDeclared)
            {
                used.Add(KernelBundleId);
            }
            return (KextSymbolSource.Assumed, libraries);
        }

        var u = facts.UnresolvedOn(slot);
        (unresolved ??= ImmutableArray.CreateBuilder<KextUnresolvedSymbol>()).Add(u);
        return (KextSymbolSource.Unresolved, u.AvailableFrom);
    }

    /// <summary>For a C++ symbol, the first of the known class families one of its identifiers names; else null.</summary>
    internal static KpiFamily? ClassFamilyOf(string symbol)
    {
        foreach (var identifier in ItaniumIdentifiers.Extract(symbol))
        {
            foreach (var family in ClassFamilies)
            {
                if (family.MatchesIdentifier(identifier))
                {
                    return family;
                }
            }
        }
        return null;
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
                    var (pkCompat, pkVersion) = _pseudoKextVersions.GetOrAdd(pk, static p =>
                    {
                        KextVersion.TryParse(p.CompatibleVersion, out var c);
                        KextVersion.TryParse(p.Version, out var v);
                        return (c, v);
                    });
                    AddVersionProblem(problems, r, pk.CompatibleVersion is null ? null : pkCompat, pk.CompatibleVersion, pkVersion, pk.Version, release, null);
                    break;
                case KextLibraryKind.Bundled:
                    var lib = l.Library!;
                    AddVersionProblem(problems, r, lib.CompatibleVersion, lib.CompatibleVersion?.Text, lib.Version, lib.Version?.Text, null, lib.Path);
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
        MacOSRelease? release,
        string? libraryPath)
    {
        // Where the library was looked at, for the message (made only for a problem): " on RELEASE" or " (PATH)".
        string Where() => release is not null ? $" on {release}" : $" ({libraryPath})";

        if (r.Version is not { } requested)
        {
            problems.Add(new(r.BundleId, KextLibraryProblemKind.RequestedVersionInvalid, r.RequestedVersion, compatibleText, versionText,
                $"{r.BundleId}: requested version '{r.RequestedVersion}' is not a kext version"));
            return;
        }
        if (compatible is not { } c || version is not { } v)
        {
            problems.Add(new(r.BundleId, KextLibraryProblemKind.NotALibrary, r.RequestedVersion, compatibleText, versionText,
                $"{r.BundleId}{Where()} has no OSBundleCompatibleVersion: no kext can link against it"));
            return;
        }
        if (!v.Satisfies(requested, c))
        {
            problems.Add(new(r.BundleId, KextLibraryProblemKind.VersionOutOfRange, r.RequestedVersion, compatibleText, versionText,
                $"{r.BundleId} {r.RequestedVersion} requested, {Where().Trim()} it provides {compatibleText}…{versionText}"));
        }
    }

    private sealed record ClassifiedLibrary(KextLibraryReference Reference, KextLibraryKind Kind, KextLibrary? Library);

    private sealed class Context
    {
        private readonly int[] _knownFamilySlots;
        private readonly string[]?[] _unknownFamiliesBySlot = new string[]?[2 * MacOSRelease.All.Count];

        public Context(ClassifiedLibrary[] libs, KpiCatalog catalog)
        {
            Declared = libs.Select(l => l.Reference.BundleId).ToHashSet(StringComparer.Ordinal);
            KernelDeclared = libs.Any(l => l.Kind == KextLibraryKind.Kernel);
            Bundled = libs.Where(l => l.Kind == KextLibraryKind.Bundled).ToArray();
            // Families whose classes we do not know come first: they are the likelier source of an unknown class.
            AppleFamilies = libs.Where(l => l.Kind == KextLibraryKind.AppleFamily)
                .OrderBy(l => ClassFamilies.Any(f => f.LibraryIds.Contains(l.Reference.BundleId)) ? 1 : 0)
                .Select(l => l.Reference.BundleId)
                .ToArray();
            _knownFamilySlots = AppleFamilies.Select(catalog.FamilyExportsKnownSlots).ToArray();
            Unknown = libs.Where(l => l.Kind == KextLibraryKind.Unknown && !l.Reference.BundleId.StartsWith(KpiPrefix, StringComparison.Ordinal))
                .Select(l => l.Reference.BundleId)
                .ToArray();
        }

        public HashSet<string> Declared { get; }

        public bool KernelDeclared { get; }

        public ClassifiedLibrary[] Bundled { get; }

        public string[] AppleFamilies { get; }

        public string[] Unknown { get; }

        /// <summary>The slots on which a declared Apple family's export list is known (0 when never, or not declared).</summary>
        public int KnownFamilySlots(string bundleId)
        {
            var i = Array.IndexOf(AppleFamilies, bundleId);
            return i < 0 ? 0 : _knownFamilySlots[i];
        }

        /// <summary>The declared Apple families whose export list is not known on a slot, in <see cref="AppleFamilies"/> order.</summary>
        public string[] UnknownFamiliesOn(int slot)
        {
            var i = System.Numerics.BitOperations.Log2((uint)slot);
            return _unknownFamiliesBySlot[i] ??= AppleFamilies.Where((_, f) => (_knownFamilySlots[f] & slot) == 0).ToArray();
        }
    }
}

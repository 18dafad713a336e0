using System.Collections.Immutable;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;

namespace KextTrust.Kexts.Audit;

/// <summary>What kind of thing a declared OSBundleLibraries entry is.</summary>
public enum KextLibraryKind
{
    /// <summary>A KPI pseudo-kext of the catalog (<c>com.apple.kpi.bsd</c>, …): its exports are known per release.</summary>
    KpiBundle,

    /// <summary><c>com.apple.kernel</c>: the whole kernel (every KPI plus symbols the catalog does not list).</summary>
    Kernel,

    /// <summary>A codeless pseudo-kext of System.kext (AppleNMI, ApplePlatformFamily, …): exports nothing to link.</summary>
    KernelResource,

    /// <summary>
    /// An Apple kext (<c>com.apple.iokit.IONetworkingFamily</c>, …): its exports are those of Apple's published export
    /// list where the catalog has one for the release (<see cref="KpiCatalog.FamilyExportSources"/>), else unknown.
    /// </summary>
    AppleFamily,

    /// <summary>A kext found beside the audited one (same folder, PlugIns, or given by the caller): exports read from it.</summary>
    Bundled,

    /// <summary>Neither Apple's nor found: exports and versions cannot be checked.</summary>
    Unknown,
}

/// <summary>One declared library and how the link check treated it.</summary>
/// <param name="BundleId">OSBundleLibraries key.</param>
/// <param name="RequestedVersion">OSBundleLibraries value.</param>
/// <param name="Kind">What it is.</param>
/// <param name="Path">Where a <see cref="KextLibraryKind.Bundled"/> library was found.</param>
/// <param name="Used">True when some imported symbol resolves to it, false when none does, null when unknowable
/// (unknown libraries, Apple families whose exports are not known on any checked release, and codeless kexts).</param>
public sealed record KextLibraryUse(string BundleId, string RequestedVersion, KextLibraryKind Kind, string? Path, bool? Used);

/// <summary>Why a declared library does not satisfy the dependency.</summary>
public enum KextLibraryProblemKind
{
    /// <summary>Requested version outside OSBundleCompatibleVersion…CFBundleVersion.</summary>
    VersionOutOfRange,

    /// <summary>The requested version is not a kext version.</summary>
    RequestedVersionInvalid,

    /// <summary>The library has no OSBundleCompatibleVersion (or no valid CFBundleVersion): nothing can link against it.</summary>
    NotALibrary,

    /// <summary>A kernel library that does not exist on that release.</summary>
    Missing,
}

/// <summary>A declared library that does not satisfy the dependency on one release.</summary>
/// <param name="BundleId">The library.</param>
/// <param name="Kind">What is wrong.</param>
/// <param name="RequestedVersion">What the kext asks for.</param>
/// <param name="CompatibleVersion">The library's OSBundleCompatibleVersion there, if known.</param>
/// <param name="Version">The library's CFBundleVersion there, if known.</param>
/// <param name="Message">For people.</param>
public sealed record KextLibraryProblem(
    string BundleId, KextLibraryProblemKind Kind, string RequestedVersion, string? CompatibleVersion, string? Version, string Message);

/// <summary>An imported symbol no declared library provides.</summary>
/// <param name="Symbol">Mangled name.</param>
/// <param name="AvailableFrom">Libraries that would provide it if declared (KPI bundles of that release, Apple families
/// whose export list names it there, a family whose class it names), sorted.</param>
public sealed record KextUnresolvedSymbol(string Symbol, ImmutableArray<string> AvailableFrom);

/// <summary>An imported symbol taken to come from a declared library whose exports are not known.</summary>
/// <param name="Symbol">Mangled name.</param>
/// <param name="Libraries">The declared libraries that may provide it.</param>
public sealed record KextAssumedSymbol(string Symbol, ImmutableArray<string> Libraries);

/// <summary>The link check of one slice against one release.</summary>
/// <param name="Release">The release.</param>
/// <param name="SliceArchitecture">Mach-O architecture name of the slice (x86_64, arm64e, …).</param>
/// <param name="Architecture">Its kext architecture.</param>
/// <param name="Unresolved">Symbols nothing declared provides, in the slice's symbol order: the kernel linker refuses the kext.</param>
/// <param name="Assumed">Symbols assumed to come from libraries whose exports are unknown, in import order.</param>
public sealed record KextLinkResult(
    MacOSRelease Release,
    string SliceArchitecture,
    KextArchitecture Architecture,
    ImmutableArray<KextUnresolvedSymbol> Unresolved,
    ImmutableArray<KextAssumedSymbol> Assumed)
{
    /// <summary>True when every symbol resolves.</summary>
    public bool Resolves => Unresolved.IsEmpty;

    /// <summary>
    /// How each imported symbol was bound, in import order — only when the check was asked to explain
    /// (<see cref="KextLinkChecker.Check(IReadOnlyList{KextLibraryReference}, IReadOnlyList{KextSliceFacts}, Func{string, KextLibrary?}?, IReadOnlyList{MacOSRelease}?, bool)"/>
    /// with <c>explain</c>, <see cref="KextAuditOptions.ExplainLinks"/>); empty otherwise.
    /// </summary>
    public ImmutableArray<KextSymbolBinding> Bindings { get; init; } = [];
}

/// <summary>Where the link check found an imported symbol.</summary>
public enum KextSymbolSource
{
    /// <summary>A declared KPI pseudo-kext's symbol set (com.apple.kpi.bsd, …).</summary>
    KpiBundle,

    /// <summary>The declared com.apple.kernel (every kernel export).</summary>
    Kernel,

    /// <summary>A declared Apple family's published export list for that release.</summary>
    AppleFamilyExports,

    /// <summary>A reserved vtable slot, patched from its class's vtable, which the named libraries export.</summary>
    VtablePatch,

    /// <summary>A declared library kext found beside the kext (its own exported symbols).</summary>
    BundledLibrary,

    /// <summary>A declared Apple family without a known export list whose class the C++ name names (accepted by name).</summary>
    AppleFamilyClass,

    /// <summary>Assumed from declared libraries whose exports are not known there (the candidates).</summary>
    Assumed,

    /// <summary>No declared library provides it (the libraries that would, if declared): the kernel linker refuses the kext.</summary>
    Unresolved,
}

/// <summary>How one imported symbol was bound on one release and architecture.</summary>
/// <param name="Symbol">Mangled name.</param>
/// <param name="Source">Where it was found.</param>
/// <param name="Libraries">The libraries that provided it (the candidates when assumed; those that would provide it when unresolved; for
/// an unimplemented member of the kext's own class, patched from its superclass, that class's vtable symbol).</param>
public sealed record KextSymbolBinding(string Symbol, KextSymbolSource Source, ImmutableArray<string> Libraries);

/// <summary>The declared libraries' existence and versions on one release (independent of architecture).</summary>
/// <param name="Release">The release.</param>
/// <param name="Problems">Libraries that do not satisfy the dependency there; empty when all do.</param>
public sealed record KextLibraryCheck(MacOSRelease Release, ImmutableArray<KextLibraryProblem> Problems);

/// <summary>The link check of a kext: its declared libraries, one symbol result per slice and release, one library check per release.</summary>
/// <param name="Libraries">Declared libraries in declaration order.</param>
/// <param name="Results">One per (slice, release the slice's architecture runs), slices in file order, releases oldest first.</param>
/// <param name="LibraryChecks">One per release checked, oldest first.</param>
public sealed record KextLinkReport(ImmutableArray<KextLibraryUse> Libraries, ImmutableArray<KextLinkResult> Results, ImmutableArray<KextLibraryCheck> LibraryChecks)
{
    /// <summary>The library problems on one release (empty when that release was not checked).</summary>
    internal ImmutableArray<KextLibraryProblem> LibraryProblemsOn(MacOSRelease release)
    {
        foreach (var c in LibraryChecks)
        {
            if (c.Release == release)
            {
                return c.Problems;
            }
        }
        return [];
    }

    /// <summary>Declared libraries no imported symbol resolves to (where that is knowable).</summary>
    public ImmutableArray<string> UnusedLibraries => [.. Libraries.Where(l => l.Used == false).Select(l => l.BundleId)];

    /// <summary>Declared libraries that are neither Apple's nor found.</summary>
    public ImmutableArray<string> UnknownLibraries => [.. Libraries.Where(l => l.Kind == KextLibraryKind.Unknown).Select(l => l.BundleId)];

    /// <summary>Every symbol unresolved on some slice and release, sorted.</summary>
    public ImmutableArray<string> UnresolvedSymbols =>
        [.. Results.SelectMany(r => r.Unresolved).Select(u => u.Symbol).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];

    /// <summary>
    /// One report from the checks of a kext's slice groups that declare different libraries
    /// (<c>OSBundleLibraries_&lt;arch&gt;</c>): libraries in first-seen order (used when used by any group; unknowable
    /// only when unknowable in every group), results in order, each release's library problems once.
    /// </summary>
    internal static KextLinkReport Merge(IReadOnlyList<KextLinkReport> parts)
    {
        ArgumentNullException.ThrowIfNull(parts);
        if (parts.Count == 1)
        {
            return parts[0];
        }
        var libraries = new List<KextLibraryUse>();
        foreach (var use in parts.SelectMany(p => p.Libraries))
        {
            var at = libraries.FindIndex(l => l.BundleId == use.BundleId);
            if (at < 0)
            {
                libraries.Add(use);
            }
            else if (use.Used is { } used)
            {
                libraries[at] = libraries[at] with { Used = used || libraries[at].Used == true };
            }
        }
        var checks = parts.SelectMany(p => p.LibraryChecks).GroupBy(c => c.Release)
            .Select(g => new KextLibraryCheck(g.Key, [.. g.SelectMany(c => c.Problems).DistinctBy(p => (p.BundleId, p.Kind, p.Message))]));
        return new KextLinkReport([.. libraries], [.. parts.SelectMany(p => p.Results)], [.. checks]);
    }

    /// <summary>The results for one release and architecture (one per slice of that architecture).</summary>
    public IEnumerable<KextLinkResult> For(MacOSRelease release, KextArchitecture architecture) =>
        Results.Where(r => r.Release == release && r.Architecture == architecture);
}

/// <summary>A kext that can satisfy another's OSBundleLibraries entry, with its exports.</summary>
/// <param name="BundleId">CFBundleIdentifier.</param>
/// <param name="Path">Bundle folder.</param>
/// <param name="Version">CFBundleVersion, when valid.</param>
/// <param name="CompatibleVersion">OSBundleCompatibleVersion, when present and valid.</param>
/// <param name="Executable">Its parsed executable; null for a codeless library.</param>
internal sealed record KextLibrary(string BundleId, string Path, KextVersion? Version, KextVersion? CompatibleVersion, KextExecutableFacts? Executable);

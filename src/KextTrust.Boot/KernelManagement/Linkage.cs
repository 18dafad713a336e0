using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;

namespace KextTrust.Boot.KernelManagement;

/// <summary>How a kext's undefined symbols resolved against its declared libraries.</summary>
/// <param name="ViaKpi">Symbols exported by a declared KPI pseudo-kext (or any kernel export with com.apple.kernel).</param>
/// <param name="ViaKext">Symbols defined by a declared third-party library kext.</param>
/// <param name="Assumed">Symbols attributed, by name only, to declared Apple families of the Boot KC.</param>
/// <param name="Unresolved">Symbols nothing declared exports, each with a hint when an undeclared KPI exports it.</param>
/// <param name="Families">The declared Apple families.</param>
internal sealed record SymbolResolution(int ViaKpi, int ViaKext, IReadOnlyList<string> Assumed, IReadOnlyList<string> Unresolved, IReadOnlyList<string> Families);

/// <summary>The linking rules kmd and the kernel share.</summary>
internal static class Linkage
{
    /// <summary>The kernel pseudo-kext that stands for every kernel export.</summary>
    public const string KernelBundleId = "com.apple.kernel";

    /// <summary>True for a library that is an Apple kext of the Boot KC (not a pseudo-kext), accepted by name.</summary>
    public static bool IsAppleFamily(KpiCatalog catalog, MacOSRelease release, string bundleId) =>
        bundleId.StartsWith("com.apple.", StringComparison.Ordinal) && catalog.FindPseudoKext(release, bundleId) is null;

    /// <summary>
    /// Null when the release's pseudo-kext <paramref name="bundleId"/> satisfies <paramref name="requested"/>
    /// (compatible version ≤ requested ≤ version); else why not. Also null when it is no pseudo-kext.
    /// </summary>
    public static string? CheckKpiVersion(KpiCatalog catalog, MacOSRelease release, string bundleId, KextVersion requested)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        if (catalog.FindPseudoKext(release, bundleId) is not { } pseudo)
        {
            return null;
        }
        KextVersion.TryParse(pseudo.Version, out var have);
        KextVersion? compatible = KextVersion.TryParse(pseudo.CompatibleVersion, out var cv) ? cv : null;
        return requested > have || (compatible is { } min && requested < min)
            ? $"{bundleId} {pseudo.Version} (compatible back to {pseudo.CompatibleVersion ?? "none"}) on {release} does not satisfy requested {requested}"
            : null;
    }

    /// <summary>Resolves <paramref name="undefined"/> against the declared libraries.</summary>
    /// <param name="catalog">The KPI catalog.</param>
    /// <param name="release">The macOS release.</param>
    /// <param name="architecture">The architecture.</param>
    /// <param name="undefined">The kext's undefined symbols.</param>
    /// <param name="declared">Its OSBundleLibraries ids.</param>
    /// <param name="definedByLibraryKext">True when a declared third-party library kext defines the symbol.</param>
    public static SymbolResolution Resolve(KpiCatalog catalog, MacOSRelease release, KextArchitecture architecture, IEnumerable<string> undefined,
        IReadOnlyCollection<string> declared, Func<string, bool> definedByLibraryKext)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(undefined);
        ArgumentNullException.ThrowIfNull(declared);
        ArgumentNullException.ThrowIfNull(definedByLibraryKext);
        var declaredSet = declared.ToHashSet(StringComparer.Ordinal);
        var declaresKernel = declaredSet.Contains(KernelBundleId);
        var families = declaredSet.Where(id => IsAppleFamily(catalog, release, id)).Order(StringComparer.Ordinal).ToList();
        int viaKpi = 0, viaKext = 0;
        var assumed = new List<string>();
        var unresolved = new List<string>();
        foreach (var symbol in undefined)
        {
            var exporters = catalog.ExportingBundles(release, architecture, symbol);
            if (exporters.Any(declaredSet.Contains) || (declaresKernel && (exporters.Count > 0 || catalog.IsKernelOnlyExport(release, architecture, symbol))))
            {
                viaKpi++;
            }
            else if (definedByLibraryKext(symbol))
            {
                viaKext++;
            }
            else if (families.Count > 0)
            {
                assumed.Add(symbol);
            }
            else
            {
                unresolved.Add(exporters.Count > 0
                    ? $"{symbol} (exported by {string.Join(", ", exporters.Order(StringComparer.Ordinal))}, which OSBundleLibraries does not declare)"
                    : symbol);
            }
        }
        return new SymbolResolution(viaKpi, viaKext, assumed, unresolved, families);
    }
}

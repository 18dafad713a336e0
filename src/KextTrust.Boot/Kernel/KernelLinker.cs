using KextTrust.Formats.PropertyLists;
using System.Collections.Immutable;
using System.Globalization;
using KextTrust.Boot.KernelManagement;
using KextTrust.Boot.Receipt;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;
using KextTrust.Kexts.Trust;

namespace KextTrust.Boot.Kernel;

/// <summary>A kext the kernel loaded from the AuxKC.</summary>
/// <param name="LoadTag">Its load tag (increasing in load order).</param>
/// <param name="BundleId">CFBundleIdentifier.</param>
/// <param name="Version">CFBundleVersion.</param>
/// <param name="BundlePath">Where the bundle was on the Mac.</param>
/// <param name="TeamId">Signing team from the receipt ("" when unsigned).</param>
/// <param name="CdHash">cdhash from the receipt ("" when unsigned).</param>
/// <param name="LoadAddress">Its fileset entry's vmaddr; null for a codeless kext.</param>
/// <param name="Dependencies">The third-party kexts it links against (loaded before it).</param>
internal sealed record LoadedKext(int LoadTag, string BundleId, string Version, string BundlePath, string TeamId, string CdHash, ulong? LoadAddress,
    ImmutableArray<string> Dependencies)
{
    /// <summary>Bytes of the kext's image in the AuxKC (<c>_PrelinkExecutableSize</c>); 0 for a codeless kext.</summary>
    public ulong Size { get; init; }

    /// <summary>The executable's LC_UUID (upper case), or null for a codeless kext or one without it.</summary>
    public string? Uuid { get; init; }
}

/// <summary>A kext of the AuxKC the kernel did not load, and why: a code of the one vocabulary (<see cref="TrustCode.ReceiptMismatch"/>,
/// <see cref="TrustCode.NotInReceipt"/>, <see cref="TrustCode.MissingLibrary"/>, <see cref="TrustCode.LibraryVersion"/>,
/// <see cref="TrustCode.DependencyNotLoaded"/>, <see cref="TrustCode.UnresolvedSymbols"/>) and the detail.</summary>
public sealed record KextNotLoaded(string BundleId, TrustCode Code, string Detail)
{
    /// <summary>The <c>KMErrorDomain</c> code of <see cref="Code"/> where macOS has one, else null.</summary>
    public int? KMErrorCode => Code.KMErrorCode();
}

/// <summary>
/// A row for the KextPolicy database's <c>kext_load_history_v3</c> (path, team_id, bundle_id, boot_uuid, created_at,
/// last_seen, flags, cdhash), returned as data for the consent layer to insert or update.
/// </summary>
internal sealed record KextLoadHistoryRecord(string Path, string TeamId, string BundleId, string BootUuid, string CreatedAt, string LastSeen, long Flags, string CdHash)
{
    /// <summary>
    /// KextTrust's <c>flags</c> value for a kext loaded from the AuxKC (Apple's bits are undocumented; 16 is a value seen
    /// in real history rows).
    /// </summary>
    public const long LoadedFromAuxKc = 0x10;

    /// <summary>The database's timestamp format.</summary>
    public const string TimestampFormat = "yyyy-MM-dd HH:mm:ss";
}

/// <summary>What the kernel did with the AuxKC.</summary>
/// <param name="Loaded">Loaded kexts in load order (every kext after its dependencies).</param>
/// <param name="NotLoaded">Kexts that did not load, in AuxKC order.</param>
/// <param name="LoadHistory">One <c>kext_load_history_v3</c> row per loaded kext.</param>
internal sealed record KernelLoadResult(ImmutableArray<LoadedKext> Loaded, ImmutableArray<KextNotLoaded> NotLoaded, ImmutableArray<KextLoadHistoryRecord> LoadHistory);

/// <summary>
/// The kernel's side of the AuxKC: checks the collection against its receipt, then loads each kext after its third-party
/// dependencies (recursively, as <c>OSKext::load</c> does), resolving its undefined symbols against the KPI catalog of the
/// running release and the defined externals of the kexts it declares. A kext whose dependency fails does not load.
/// </summary>
internal static class KernelLinker
{
    /// <summary>The first load tag given to an AuxKC kext.</summary>
    public const int FirstLoadTag = 100;

    /// <summary>
    /// Reads <paramref name="auxKcBytes"/> (the file <paramref name="auxKcName"/>) and loads it; malformed bytes load nothing
    /// (one <see cref="TrustCode.ReceiptMismatch"/> entry naming the file, offset and rule).
    /// </summary>
    public static KernelLoadResult LoadAuxKc(ReadOnlyMemory<byte> auxKcBytes, string auxKcName, KextReceipt receipt, KpiCatalog catalog, MacOSRelease release,
        KextArchitecture architecture, Guid bootSessionUuid, DateTimeOffset now)
    {
        AuxiliaryKernelCollection auxKc;
        try
        {
            auxKc = AuxiliaryKernelCollection.Read(auxKcBytes.Span, auxKcName);
        }
        catch (AuxKcFormatException e)
        {
            return new KernelLoadResult([], [new KextNotLoaded("", TrustCode.ReceiptMismatch, e.Message)], []);
        }
        return LoadAuxKc(auxKc, receipt, catalog, release, architecture, bootSessionUuid, now);
    }

    /// <summary>Loads an AuxKC (normally the one iBoot verified) described by <paramref name="receipt"/>.</summary>
    public static KernelLoadResult LoadAuxKc(AuxiliaryKernelCollection auxKc, KextReceipt receipt, KpiCatalog catalog, MacOSRelease release,
        KextArchitecture architecture, Guid bootSessionUuid, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(auxKc);
        ArgumentNullException.ThrowIfNull(receipt);
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(release);
        if (receipt.AuxKcMeasurement != auxKc.ComputeMeasurement())
        {
            return Nothing(auxKc, "the AuxKC's SHA-384 is not the one its receipt records");
        }
        if (auxKc.Architecture != architecture || receipt.Architecture != architecture)
        {
            return Nothing(auxKc, $"the AuxKC is for {auxKc.Architecture.SliceName()}, this Mac is {architecture.SliceName()}");
        }
        var state = new LoadState(auxKc, receipt, catalog, release, architecture);
        foreach (var kext in auxKc.Kexts)
        {
            state.Load(kext, []);
        }
        var stamp = now.UtcDateTime.ToString(KextLoadHistoryRecord.TimestampFormat, CultureInfo.InvariantCulture);
        var boot = bootSessionUuid.ToString("D").ToUpperInvariant();
        var history = state.Loaded.Select(k => new KextLoadHistoryRecord(k.BundlePath, k.TeamId, k.BundleId, boot, stamp, stamp,
            KextLoadHistoryRecord.LoadedFromAuxKc, k.CdHash));
        return new KernelLoadResult([.. state.Loaded], [.. auxKc.Kexts.Where(k => state.Failed.ContainsKey(k.BundleId)).Select(k => state.Failed[k.BundleId])],
            [.. history]);
    }

    private static KernelLoadResult Nothing(AuxiliaryKernelCollection auxKc, string detail) =>
        new([], [.. auxKc.Kexts.Select(k => new KextNotLoaded(k.BundleId, TrustCode.ReceiptMismatch, detail))], []);

    private sealed class LoadState(AuxiliaryKernelCollection auxKc, KextReceipt receipt, KpiCatalog catalog, MacOSRelease release, KextArchitecture architecture)
    {
        private readonly Dictionary<string, AuxKcKext> _byId = auxKc.Kexts.ToDictionary(k => k.BundleId, StringComparer.Ordinal);
        private readonly Dictionary<string, ReceiptIncludedKext> _receipt = receipt.Included.ToDictionary(k => k.BundleId, StringComparer.Ordinal);
        private readonly Dictionary<string, HashSet<string>> _defined = new(StringComparer.Ordinal);

        public List<LoadedKext> Loaded { get; } = [];
        public Dictionary<string, KextNotLoaded> Failed { get; } = new(StringComparer.Ordinal);

        public bool Load(AuxKcKext kext, HashSet<string> visiting)
        {
            var id = kext.BundleId;
            if (Loaded.Any(k => k.BundleId == id))
            {
                return true;
            }
            if (Failed.ContainsKey(id))
            {
                return false;
            }
            if (!_receipt.TryGetValue(id, out var listed) || listed.Version != kext.Version)
            {
                return Fail(id, TrustCode.NotInReceipt, $"{id} {kext.Version} is not in the kext receipt");
            }
            if (!visiting.Add(id))
            {
                return Fail(id, TrustCode.DependencyNotLoaded, $"{id} depends on itself through OSBundleLibraries");
            }
            var dependencies = new List<string>();
            foreach (var (lib, requestedText) in kext.Libraries)
            {
                if (!KextVersion.TryParse(requestedText, out var requested))
                {
                    return Fail(id, TrustCode.LibraryVersion, $"{lib}: '{requestedText}' is not a kext version");
                }
                if (catalog.FindPseudoKext(release, lib) is not null)
                {
                    if (Linkage.CheckKpiVersion(catalog, release, lib, requested) is { } why)
                    {
                        return Fail(id, TrustCode.LibraryVersion, why);
                    }
                }
                else if (_byId.TryGetValue(lib, out var dependency))
                {
                    if (visiting.Contains(lib) || !Load(dependency, visiting))
                    {
                        return Fail(id, TrustCode.DependencyNotLoaded, $"library {lib} did not load");
                    }
                    dependencies.Add(lib);
                }
                else if (!Linkage.IsAppleFamily(catalog, release, lib))
                {
                    return Fail(id, TrustCode.MissingLibrary, $"library {lib} is neither a KPI of {release}, an Apple family, nor in the AuxKC");
                }
            }
            visiting.Remove(id);
            if (kext.Executable is { } executable)
            {
                var resolution = Linkage.Resolve(catalog, release, architecture, executable.UndefinedSymbols, [.. kext.Libraries.Keys],
                    symbol => dependencies.Any(d => Defined(d).Contains(symbol)));
                if (resolution.Unresolved.Count > 0)
                {
                    return Fail(id, TrustCode.UnresolvedSymbols, $"unresolved: {string.Join(", ", resolution.Unresolved.Take(8))}");
                }
            }
            Loaded.Add(new LoadedKext(FirstLoadTag + Loaded.Count, id, kext.Version, kext.BundlePath, listed.TeamId, listed.CdHash,
                kext.FilesetEntry?.VmAddress, [.. dependencies])
            {
                Size = kext.InfoDictionary.Get<PlistInteger>("_PrelinkExecutableSize")?.AsUInt64 ?? 0,
                Uuid = kext.Executable?.UuidString,
            });
            return true;
        }

        private HashSet<string> Defined(string id)
        {
            if (!_defined.TryGetValue(id, out var set))
            {
                set = _byId[id].Executable?.DefinedExternalSymbols.Select(s => s.Name).ToHashSet(StringComparer.Ordinal) ?? [];
                _defined[id] = set;
            }
            return set;
        }

        private bool Fail(string id, TrustCode code, string detail)
        {
            Failed[id] = new KextNotLoaded(id, code, detail);
            return false;
        }
    }
}

using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Runtime.InteropServices;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;
using KextTrust.Kexts.Trust;

namespace KextTrust.Kexts.Audit;

/// <summary>What to audit and under which conditions.</summary>
public sealed record KextAuditOptions
{
    /// <summary>Apple's deprecation footnote: SIP disabled and/or MDM approval (unsupported KPIs then do not refuse). Default: enforced.</summary>
    public KpiEnforcementContext Enforcement { get; init; } = KpiEnforcementContext.Enforced;

    /// <summary>Releases to decide (default all: 10.15, 11, 12, 13, 14, 15, 15.4).</summary>
    public ImmutableArray<MacOSRelease> Releases { get; init; } = [.. MacOSRelease.All];

    /// <summary>Platforms to decide (default Intel and Apple silicon).</summary>
    public ImmutableArray<MacPlatform> Platforms { get; init; } = [MacPlatform.Intel, MacPlatform.AppleSilicon];

    /// <summary>
    /// The signature seam: facts about a bundle's signature (e.g. from the bundle signature verifier). Returning null,
    /// or leaving this null with <see cref="ReadSignaturePresence"/> off, leaves the signature "not checked".
    /// </summary>
    public Func<KextBundle, KextSignatureFacts?>? SignatureFacts { get; init; }

    /// <summary>
    /// When no <see cref="SignatureFacts"/> provider answers, read the executable's signature presence
    /// (unsigned, ad hoc, or "CMS not verified"): unsigned and ad hoc kexts are then refused where SIP requires a signature.
    /// </summary>
    public bool ReadSignaturePresence { get; init; }

    /// <summary>
    /// When set (and no <see cref="SignatureFacts"/> provider answers), each bundle's signature is verified in full by
    /// <see cref="Signing.KextSignatureVerifier"/> with these options, and the audit refuses on the verdict; a bundle the
    /// verifier cannot read falls back to <see cref="ReadSignaturePresence"/>.
    /// </summary>
    public Signing.KextSignatureVerifierOptions? VerifySignatures { get; init; }

    /// <summary>Extra library kexts the audited kexts may declare (besides those found beside them).</summary>
    public IReadOnlyList<KextBundle> LibraryBundles { get; init; } = [];

    /// <summary>Record how each imported symbol was bound (<see cref="KextLinkResult.Bindings"/>); off by default (costs time).</summary>
    public bool ExplainLinks { get; init; }
}

/// <summary>
/// Audits kexts: will each load on macOS 10.15–15.4, on Intel and on Apple silicon, and if not, why (stable reason
/// codes) — from Apple's KPI rules (<see cref="KpiRuleEvaluator"/>), the link check (<see cref="KextLinkChecker"/>),
/// the slices present (arm64e for Apple silicon, x86_64 for Intel) and, when given, the signature.
/// </summary>
/// <remarks>
/// Each executable is parsed once per auditor and library kexts found beside audited ones are indexed once (the
/// instance keeps those caches). Thread-safe: <see cref="AuditMany"/> audits on every core.
/// </remarks>
public sealed class KextAuditor
{
    private readonly KpiCatalog _catalog;
    private readonly KextLinkChecker _linker;
    private readonly KextImportIndex _imports;
    private readonly ConcurrentDictionary<string, KextExecutableFacts> _executables = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, KextBundle> _knownBundles = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Folder, string BundleId), KextBundle> _bundlesByFolder = new();
    private readonly HashSet<string> _scannedFolders = new(StringComparer.Ordinal); // guarded by _scanLock
    private readonly Lock _scanLock = new();
    private readonly ConcurrentDictionary<string, KextLibrary> _libraries = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<KpiRule, string[]> _kpiMessages = new(ReferenceEqualityComparer.Instance);
    private readonly ImmutableArray<string> _exemptions;

    /// <summary>An auditor over a loaded catalog.</summary>
    public KextAuditor(KpiCatalog catalog, KextAuditOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        _catalog = catalog;
        _imports = new KextImportIndex(catalog);
        _linker = new KextLinkChecker(catalog, _imports);
        Options = options ?? new KextAuditOptions();
        _exemptions = ExemptionCodes(Options.Enforcement);
        if (Options.Releases.IsDefaultOrEmpty || Options.Platforms.IsDefaultOrEmpty)
        {
            throw new ArgumentException("at least one release and one platform must be audited", nameof(options));
        }
        foreach (var b in Options.LibraryBundles.SelectMany(b => b.SelfAndPlugIns()))
        {
            Register(b);
        }
    }

    /// <summary>The options in force.</summary>
    public KextAuditOptions Options { get; }

    /// <summary>
    /// Audits a kext bundle, a bare Mach-O file (reported "not a kext" unless it is a kext executable), or every
    /// kext under a folder (<see cref="KextDiscovery"/>); plug-ins are audited inside their parent's report.
    /// </summary>
    /// <exception cref="KextBundleException">The path does not exist.</exception>
    public IReadOnlyList<KextAuditReport> AuditPath(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (File.Exists(path))
        {
            return [AuditFile(path)];
        }
        if (!Directory.Exists(path))
        {
            throw new KextBundleException(path, "no such file or folder");
        }
        return AuditMany(OpenBundles(path));
    }

    /// <summary>
    /// Opens the kexts a folder stands for — the bundle itself, or every kext under a tree — and indexes them (and
    /// their plug-ins) as libraries for one another. Audit them with <see cref="Audit"/>.
    /// </summary>
    /// <exception cref="KextBundleException">The folder does not exist.</exception>
    internal IReadOnlyList<KextBundle> OpenBundles(string folder) => Adopt(OpenTree(folder));

    /// <summary>
    /// Opens the kexts a folder stands for — the bundle itself, or every kext under a tree (on all cores) — without an
    /// auditor (no catalog needed yet); <see cref="Adopt"/> them into one to audit them.
    /// </summary>
    /// <exception cref="KextBundleException">The folder does not exist.</exception>
    public static IReadOnlyList<KextBundle> OpenTree(string folder)
    {
        ArgumentNullException.ThrowIfNull(folder);
        if (!Directory.Exists(folder))
        {
            throw new KextBundleException(folder, File.Exists(folder) ? "not a folder" : "no such file or folder");
        }
        return LooksLikeBundle(folder)
            ? [KextBundle.Open(folder)]
            : OpenAll(KextDiscovery.FindKexts(folder));
    }

    /// <summary>Indexes bundles of one <see cref="OpenTree"/> (and their plug-ins) as libraries for one another; returns them.</summary>
    public IReadOnlyList<KextBundle> Adopt(IReadOnlyList<KextBundle> bundles)
    {
        ArgumentNullException.ThrowIfNull(bundles);
        foreach (var b in bundles.SelectMany(b => b.SelfAndPlugIns()))
        {
            Register(b);
        }
        if (bundles.Count > 1)
        {
            lock (_scanLock)
            {
                foreach (var f in bundles.Select(b => System.IO.Path.GetDirectoryName(b.Path)!).Distinct(StringComparer.Ordinal))
                {
                    _scannedFolders.Add(f); // every kext of these folders is registered already
                }
            }
        }
        return bundles;
    }

    private static KextBundle[] OpenAll(IReadOnlyList<string> paths)
    {
        var bundles = new KextBundle[paths.Count];
        OrderedParallel.Run(paths, KextBundle.Open, (i, b) => bundles[i] = b);
        return bundles;
    }

    /// <summary>
    /// Audits bundles in parallel (one per core), results in input order; <paramref name="audited"/> is called once per
    /// bundle as it completes, from any thread.
    /// </summary>
    public IReadOnlyList<KextAuditReport> AuditMany(IReadOnlyList<KextBundle> bundles, Action<KextAuditReport>? audited = null)
    {
        ArgumentNullException.ThrowIfNull(bundles);
        var reports = new KextAuditReport[bundles.Count];
        Audit(bundles, audited, (i, r) => reports[i] = r);
        return reports;
    }

    /// <summary>
    /// Audits bundles in parallel (one per core) and hands each report to <paramref name="inOrder"/> on the calling
    /// thread, in input order, as soon as it is next in line (e.g. to stream it out).
    /// </summary>
    public void AuditInOrder(IReadOnlyList<KextBundle> bundles, Action<KextAuditReport> inOrder)
    {
        ArgumentNullException.ThrowIfNull(bundles);
        ArgumentNullException.ThrowIfNull(inOrder);
        Audit(bundles, null, (_, r) => inOrder(r));
    }

    private void Audit(IReadOnlyList<KextBundle> bundles, Action<KextAuditReport>? audited, Action<int, KextAuditReport> inOrder)
    {
        foreach (var b in bundles.SelectMany(b => b.SelfAndPlugIns()))
        {
            Register(b);
        }
        OrderedParallel.Run(bundles, b =>
        {
            var report = Audit(b);
            audited?.Invoke(report);
            return report;
        }, inOrder);
    }

    /// <summary>True for a folder that is a bundle rather than a tree to search.</summary>
    internal static bool LooksLikeBundle(string path) =>
        path.TrimEnd('/', '\\').EndsWith(KextDiscovery.KextExtension, StringComparison.OrdinalIgnoreCase)
        || File.Exists(System.IO.Path.Combine(path, "Contents", "Info.plist"))
        || File.Exists(System.IO.Path.Combine(path, "Info.plist"));

    /// <summary>Audits a bare file: a non-kext Mach-O is "not a kext", anything unreadable says why.</summary>
    public KextAuditReport AuditFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var exe = Executable(path);
        if (exe.Error is not null)
        {
            return Unreadable(exe.Path, null, null, null, exe.Error, [], []);
        }
        var archs = exe.Slices.Select(s => s.Architecture).ToImmutableArray();
        if (exe.Slices.All(s => s.IsKextBundle))
        {
            return Unreadable(exe.Path, null, null, null,
                $"{exe.Path} is a kext executable outside its bundle: audit the .kext folder (its Info.plist declares the libraries)", [], archs);
        }
        return NotAKext(exe.Path, null, null, null, exe, [], []);
    }

    /// <summary>Audits one bundle and its plug-ins.</summary>
    public KextAuditReport Audit(KextBundle bundle)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        foreach (var b in bundle.SelfAndPlugIns())
        {
            Register(b);
        }
        var plugIns = bundle.PlugIns.Select(Audit).ToImmutableArray();
        var problems = bundle.Problems.Select(p => p.ToString()).ToImmutableArray();
        if (bundle.InfoPlist is null || bundle.BundleId is null)
        {
            var why = bundle.Problems.FirstOrDefault(p => p.Code is KextProblemCode.InfoPlistMissing or KextProblemCode.InfoPlistUnreadable
                or KextProblemCode.InfoPlistNotDictionary or KextProblemCode.BundleIdentifierMissing or KextProblemCode.RequiredFileIsEscapingLink);
            return Unreadable(bundle.Path, bundle.InfoPlistPath, bundle.BundleId, bundle.VersionString,
                why?.Message ?? "no readable Info.plist with a CFBundleIdentifier", problems, [], plugIns);
        }

        KextExecutableFacts? exe = null;
        if (bundle.HasExecutable && bundle.ExecutablePath is { } exePath)
        {
            exe = AuditedExecutable(exePath);
            if (exe.Error is not null)
            {
                return Unreadable(bundle.Path, bundle.InfoPlistPath, bundle.BundleId, bundle.VersionString, exe.Error, problems, [], plugIns);
            }
            if (!exe.Slices.Any(s => s.IsKextBundle))
            {
                return NotAKext(bundle.Path, bundle.InfoPlistPath, bundle.BundleId, bundle.VersionString, exe, problems, plugIns);
            }
        }
        var missingExecutable = !bundle.IsCodeless && exe is null;
        // Every slice, for the architectures listed and each platform's choice: as xnu does, each Mac's kernel takes
        // the slice of its own architecture (x86_64 on Intel, arm64e on Apple silicon) and ignores the others, so an
        // i386 MH_OBJECT slice beside an x86_64 MH_KEXT_BUNDLE (acidanthera's fat kexts) does not matter. Only the
        // kext slices are linked, checked against the rules and read for a signature.
        var allSlices = exe?.Slices ?? [];
        var slices = allSlices.All(s => s.IsKextBundle) ? allSlices : [.. allSlices.Where(s => s.IsKextBundle)];

        var libraries = LibraryMap(bundle.Libraries);
        var enforcement = Options.Enforcement;
        var intelSlices = allSlices.Where(s => s.IsIntel).ToArray();
        var arm64eSlices = allSlices.Where(s => s.IsArm64e).ToArray();
        // Only symbols that can match a rule are evaluated (same findings, far less work); identical import sets share one evaluation.
        var sliceImports = slices.Select(_imports.Imports).ToArray();
        var allImports = KextImportIndex.RuleRelevant(sliceImports);
        var intelImports = KextImportIndex.RuleRelevant(sliceImports.Where((_, i) => slices[i].IsIntel));
        var asImports = KextImportIndex.RuleRelevant(sliceImports.Where((_, i) => slices[i].IsArm64e));
        var all = KpiRuleEvaluator.Evaluate(allImports, libraries, enforcement);
        // Each platform's kernel reads OSBundleLibraries_<its arch> when the kext has one.
        var intelLibraries = bundle.LibrariesFor(KextArchitecture.X86_64.SliceName()) is var il && ReferenceEquals(il, bundle.Libraries) ? libraries : LibraryMap(il);
        var asLibraries = bundle.LibrariesFor(KextArchitecture.Arm64.SliceName()) is var al && ReferenceEquals(al, bundle.Libraries) ? libraries : LibraryMap(al);
        var intel = SameSet(intelImports, allImports) && ReferenceEquals(intelLibraries, libraries) ? all : KpiRuleEvaluator.Evaluate(intelImports, intelLibraries, enforcement);
        var appleSilicon = SameSet(asImports, allImports) && ReferenceEquals(asLibraries, libraries) ? all : KpiRuleEvaluator.Evaluate(asImports, asLibraries, enforcement);

        var link = CheckLinks(bundle, slices, sliceImports);
        var signature = Signature(bundle, slices);

        var verdicts = ImmutableArray.CreateBuilder<KextVerdict>();
        foreach (var release in Options.Releases)
        {
            foreach (var platform in Options.Platforms)
            {
                verdicts.Add(Decide(release, platform, bundle, allSlices, missingExecutable,
                    platform == MacPlatform.Intel ? intelSlices : arm64eSlices,
                    platform == MacPlatform.Intel ? intel : appleSilicon,
                    link, signature));
            }
        }
        return new KextAuditReport(
            bundle.Path, bundle.InfoPlistPath, KextAuditSubjectKind.Kext, bundle.BundleId, bundle.VersionString,
            [.. allSlices.Select(s => s.Architecture)], all.Findings, link, signature, verdicts.ToImmutable(), plugIns, problems, null);
    }

    /// <summary>
    /// The link check. A kext with <c>OSBundleLibraries_&lt;arch&gt;</c> declares other libraries to the kernel of that
    /// architecture: each group of slices is checked against its own list and the reports are merged.
    /// </summary>
    private KextLinkReport CheckLinks(KextBundle bundle, ImmutableArray<KextSliceFacts> slices, KextImportFacts[][] sliceImports)
    {
        KextLibrary? Find(string id) => FindLibrary(bundle, id);
        if (bundle.ArchitectureLibraries.Count == 0 || slices.IsEmpty)
        {
            return _linker.Check(bundle.Libraries, slices, sliceImports, Find, Options.Releases, Options.ExplainLinks);
        }
        var parts = new List<KextLinkReport>();
        foreach (var group in Enumerable.Range(0, slices.Length).GroupBy(i => bundle.LibrariesFor(slices[i].Architecture)))
        {
            parts.Add(_linker.Check(group.Key, [.. group.Select(i => slices[i])], [.. group.Select(i => sliceImports[i])], Find,
                Options.Releases, Options.ExplainLinks));
        }
        return KextLinkReport.Merge(parts);
    }

    /// <summary>"an Intel Mac" or "Apple silicon", as the reasons name the Mac.</summary>
    private static string TheMac(MacPlatform platform) => platform == MacPlatform.Intel ? "an Intel Mac" : platform.DisplayName();

    private KextVerdict Decide(
        MacOSRelease release,
        MacPlatform platform,
        KextBundle bundle,
        ImmutableArray<KextSliceFacts> slices,
        bool missingExecutable,
        KextSliceFacts[] platformSlices,
        KpiEvaluation kpi,
        KextLinkReport link,
        KextSignatureFacts? signature)
    {
        if (platform == MacPlatform.AppleSilicon && !KpiCatalog.Supports(release, KextArchitecture.Arm64))
        {
            return NotApplicableVerdict(release);
        }
        var reasons = new List<KextAuditReason>();
        if (missingExecutable)
        {
            reasons.Add(Refuse(TrustCode.MissingExecutable,
                $"CFBundleExecutable '{bundle.ExecutableName}' is not in the bundle"));
        }
        else if (!slices.IsEmpty && platformSlices.Length == 0)
        {
            reasons.Add(platform == MacPlatform.Intel
                ? Refuse(TrustCode.MissingArchitecture, $"no x86_64 slice (has {string.Join(", ", slices.Select(s => s.Architecture))}): an Intel Mac cannot load it")
                : Refuse(TrustCode.MissingArchitecture, slices.Any(s => s.Architecture == "arm64")
                    ? "the arm64 slice is not arm64e: Apple silicon loads only arm64e kexts (KMErrorDomain code 71)"
                    : $"no arm64e slice (has {string.Join(", ", slices.Select(s => s.Architecture))}): Apple silicon cannot load it (KMErrorDomain code 71)"));
        }
        else if (platformSlices.FirstOrDefault(s => !s.IsKextBundle) is { } notKext)
        {
            reasons.Add(Refuse(TrustCode.NotAKext,
                $"the {notKext.Architecture} slice {TheMac(platform)} loads is {FileTypeName(notKext.FileType)}, not a kext (MH_KEXT_BUNDLE)"));
        }
        else if (platformSlices.Length > 0)
        {
            foreach (var ignored in slices)
            {
                if (!ignored.IsKextBundle && Array.IndexOf(platformSlices, ignored) < 0)
                {
                    reasons.Add(new KextAuditReason(TrustCode.IgnoredSlice, KextReasonSeverity.Informs,
                        $"{ignored.Architecture} slice ignored ({FileTypeName(ignored.FileType)}): {TheMac(platform)}'s kernel loads the {platform.Architecture().SliceName()} slice",
                        [], [], []));
                }
            }
            var arch = platform.Architecture();
            var unresolved = UnresolvedOn(link, release, arch, platformSlices);
            if (unresolved.Count > 0)
            {
                reasons.Add(UnresolvedReason(unresolved));
            }
            AddKpiReasons(reasons, kpi.On(release));
        }

        foreach (var p in link.LibraryProblemsOn(release))
        {
            reasons.Add(Refuse(p.Kind == KextLibraryProblemKind.Missing ? TrustCode.MissingLibrary : TrustCode.LibraryVersion,
                p.Message, [], [p.BundleId]));
        }

        if (signature is not null && !Options.Enforcement.SipDisabled && signature.LacksKextSignature)
        {
            reasons.Add(Refuse(signature.RefusalCode,
                $"no Developer ID kext signature ({signature.Detail}) and SIP requires one"));
        }

        var ordered = BySeverity(reasons);
        var verdict = ordered.Any(r => r.Severity == KextReasonSeverity.Refuses) ? KextLoadVerdict.Refused
            : ordered.Any(r => r.Severity == KextReasonSeverity.Warns) ? KextLoadVerdict.LoadsWithWarning
            : KextLoadVerdict.Loads;
        return new KextVerdict(release, platform, verdict, ordered);
    }

    /// <summary>
    /// The distinct symbols unresolved on a release by the slices of one platform, sorted (ordinal). One slice's
    /// results are in its symbol order, usually already ascending: then they are taken as they are.
    /// </summary>
    private static IReadOnlyList<KextUnresolvedSymbol> UnresolvedOn(KextLinkReport link, MacOSRelease release, KextArchitecture arch, KextSliceFacts[] platformSlices)
    {
        List<KextUnresolvedSymbol>? all = null;
        foreach (var r in link.Results)
        {
            if (r.Release == release && r.Architecture == arch && !r.Unresolved.IsEmpty && HasSlice(platformSlices, r.SliceArchitecture))
            {
                (all ??= new List<KextUnresolvedSymbol>(r.Unresolved.Length)).AddRange(r.Unresolved);
            }
        }
        if (all is null)
        {
            return [];
        }
        for (var i = 1; i < all.Count; i++)
        {
            if (string.CompareOrdinal(all[i - 1].Symbol, all[i].Symbol) >= 0)
            {
                return [.. all.DistinctBy(u => u.Symbol).OrderBy(u => u.Symbol, StringComparer.Ordinal)];
            }
        }
        return all; // strictly ascending: distinct and sorted
    }

    private static bool HasSlice(KextSliceFacts[] slices, string architecture)
    {
        foreach (var s in slices)
        {
            if (s.Architecture == architecture)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>The unresolved-symbols refusal: count, the first five (with where they are available), every symbol, every library that would provide one.</summary>
    private static KextAuditReason UnresolvedReason(IReadOnlyList<KextUnresolvedSymbol> unresolved)
    {
        var message = new System.Runtime.CompilerServices.DefaultInterpolatedStringHandler(0, 0, null, stackalloc char[1024]);
        message.AppendFormatted(unresolved.Count);
        message.AppendLiteral(" symbol(s) no declared library provides: ");
        var symbols = new string[unresolved.Count];
        List<string>? libraries = null;
        for (var i = 0; i < unresolved.Count; i++)
        {
            var u = unresolved[i];
            symbols[i] = u.Symbol;
            if (!u.AvailableFrom.IsEmpty)
            {
                (libraries ??= []).AddRange(u.AvailableFrom);
            }
            if (i < 5)
            {
                if (i > 0)
                {
                    message.AppendLiteral(", ");
                }
                message.AppendLiteral(u.Symbol);
                if (!u.AvailableFrom.IsEmpty)
                {
                    message.AppendLiteral(" (in ");
                    for (var j = 0; j < u.AvailableFrom.Length; j++)
                    {
                        message.AppendLiteral(j == 0 ? "" : " / ");
                        message.AppendLiteral(u.AvailableFrom[j]);
                    }
                    message.AppendLiteral(")");
                }
            }
        }
        if (unresolved.Count > 5)
        {
            message.AppendLiteral(", …");
        }
        return Refuse(TrustCode.UnresolvedSymbols, message.ToStringAndClear(),
            ImmutableCollectionsMarshal.AsImmutableArray(symbols), SortedDistinct(libraries));
    }

    private static ImmutableArray<string> SortedDistinct(List<string>? values)
    {
        if (values is null)
        {
            return [];
        }
        values.Sort(StringComparer.Ordinal);
        var kept = 0;
        for (var i = 0; i < values.Count; i++)
        {
            if (kept == 0 || !string.Equals(values[kept - 1], values[i], StringComparison.Ordinal))
            {
                values[kept++] = values[i];
            }
        }
        return [.. System.Runtime.InteropServices.CollectionsMarshal.AsSpan(values)[..kept]];
    }

    /// <summary>The reasons ordered by severity, stably (a handful: insertion sort).</summary>
    private static ImmutableArray<KextAuditReason> BySeverity(List<KextAuditReason> reasons)
    {
        if (reasons.Count == 0)
        {
            return [];
        }
        var sorted = reasons.ToArray();
        for (var i = 1; i < sorted.Length; i++)
        {
            var r = sorted[i];
            var j = i - 1;
            for (; j >= 0 && sorted[j].Severity > r.Severity; j--)
            {
                sorted[j + 1] = sorted[j];
            }
            sorted[j + 1] = r;
        }
        return ImmutableCollectionsMarshal.AsImmutableArray(sorted);
    }

    private void AddKpiReasons(List<KextAuditReason> reasons, KpiReleaseVerdict onRelease)
    {
        foreach (var fs in onRelease.Findings)
        {
            var rule = fs.Finding.Rule;
            var symbols = fs.Finding.TriggeringSymbols;
            var libraries = fs.Finding.TriggeringLibraries;
            switch (fs.Status)
            {
                case KpiSupportStatus.Unsupported when fs.BlocksLoad:
                    reasons.Add(new(TrustCode.UnsupportedKpi, KextReasonSeverity.Refuses,
                        KpiMessage(rule, KpiMessageKind.Unsupported), symbols, libraries, []) { Rule = rule.Id });
                    break;
                case KpiSupportStatus.Unsupported:
                    reasons.Add(new(TrustCode.KpiNotEnforced, KextReasonSeverity.Warns,
                        KpiMessage(rule, KpiMessageKind.NotEnforced), symbols, libraries, _exemptions) { Rule = rule.Id });
                    break;
                case KpiSupportStatus.Deprecated:
                    reasons.Add(new(TrustCode.DeprecatedKpi, KextReasonSeverity.Warns,
                        KpiMessage(rule, KpiMessageKind.Deprecated), symbols, libraries, []) { Rule = rule.Id });
                    break;
            }
        }
    }

    private enum KpiMessageKind
    {
        Unsupported,
        NotEnforced,
        Deprecated,
    }

    /// <summary>A KPI reason's message: the same for every kext under these options, so made once per rule (by instance).</summary>
    private string KpiMessage(KpiRule rule, KpiMessageKind kind) =>
        _kpiMessages.GetOrAdd(rule, static (rule, exemptions) =>
        {
            var advice = $"move to {rule.Replacement} ({string.Join(", ", rule.ReplacementEntitlements)})";
            return
            [
                $"{rule.Title} KPI unsupported since macOS {rule.UnsupportedSince}: {advice}",
                $"{rule.Title} KPI unsupported since macOS {rule.UnsupportedSince}, not enforced ({string.Join(", ", exemptions.Select(DescribeExemption))}): {advice}",
                $"{rule.Title} KPI deprecated since macOS {rule.DeprecatedSince}: loads with the \"legacy system extension\" alert (from 10.15.4); {advice}",
            ];
        }, _exemptions)[(int)kind];

    /// <summary>The footnote's exemption codes that apply under an enforcement context, in <see cref="KpiRules.EnforcementExemptions"/> order.</summary>
    public static ImmutableArray<string> ExemptionCodes(KpiEnforcementContext enforcement)
    {
        ArgumentNullException.ThrowIfNull(enforcement);
        var codes = ImmutableArray.CreateBuilder<string>();
        if (enforcement.SipDisabled)
        {
            codes.Add(KpiRules.EnforcementExemptions[0].Id);
        }
        if (enforcement.ApprovedByMdm)
        {
            codes.Add(KpiRules.EnforcementExemptions[1].Id);
        }
        return codes.ToImmutable();
    }

    private static string DescribeExemption(string code) =>
        code == KpiRules.EnforcementExemptions[0].Id ? "SIP disabled" : "approved through MDM";

    private KextSignatureFacts? Signature(KextBundle bundle, ImmutableArray<KextSliceFacts> slices)
    {
        if (Options.SignatureFacts?.Invoke(bundle) is { } given)
        {
            return given;
        }
        if (Options.VerifySignatures is { } verify)
        {
            try
            {
                return KextSignatureFacts.From(Signing.KextSignatureVerifier.Verify(bundle.Path, verify));
            }
            catch (Signing.KextSignatureInputException)
            {
                // Not readable as signed code at all: what the presence reader sees is all there is to say.
            }
        }
        if (!Options.ReadSignaturePresence)
        {
            return null;
        }
        if (!slices.IsEmpty)
        {
            return KextSignaturePresence.Combine(slices.Select(s => s.Signature).ToArray());
        }
        // A codeless bundle keeps its signature as files in _CodeSignature.
        var dir = bundle.CodeSignaturePath;
        return File.Exists(System.IO.Path.Combine(dir, "CodeSignature"))
            ? new KextSignatureFacts(KextSignatureState.CmsNotVerified, false, null, "_CodeSignature/CodeSignature present, not verified")
            : File.Exists(System.IO.Path.Combine(dir, "CodeDirectory"))
                ? new KextSignatureFacts(KextSignatureState.AdHoc, false, null, "_CodeSignature/CodeDirectory without a CMS signature")
                : new KextSignatureFacts(KextSignatureState.Unsigned, false, null, "no _CodeSignature");
    }

    private KextAuditReport NotAKext(
        string path, string? infoPlist, string? bundleId, string? version, KextExecutableFacts exe,
        ImmutableArray<string> problems, ImmutableArray<KextAuditReport> plugIns)
    {
        var other = exe.Slices.First(s => !s.IsKextBundle);
        var message = $"{System.IO.Path.GetFileName(exe.Path)} is {FileTypeName(other.FileType)}, not a kext (MH_KEXT_BUNDLE)";
        var verdicts = ImmutableArray.CreateBuilder<KextVerdict>();
        foreach (var release in Options.Releases)
        {
            foreach (var platform in Options.Platforms)
            {
                verdicts.Add(platform == MacPlatform.AppleSilicon && !KpiCatalog.Supports(release, KextArchitecture.Arm64)
                    ? NotApplicableVerdict(release)
                    : new KextVerdict(release, platform, KextLoadVerdict.Refused, [Refuse(TrustCode.NotAKext, message)]));
            }
        }
        return new KextAuditReport(path, infoPlist, KextAuditSubjectKind.NotAKext, bundleId, version,
            [.. exe.Slices.Select(s => s.Architecture)], [], null, null, verdicts.ToImmutable(), plugIns, problems, null);
    }

    private static string FileTypeName(MachOFileType type) => type switch
    {
        MachOFileType.Dylib => "a dynamic library (MH_DYLIB)",
        MachOFileType.Execute => "an executable (MH_EXECUTE)",
        MachOFileType.Bundle => "a loadable bundle (MH_BUNDLE)",
        MachOFileType.Object => "an object file (MH_OBJECT)",
        _ => $"a Mach-O of type {type}",
    };

    private static KextAuditReport Unreadable(
        string path, string? infoPlist, string? bundleId, string? version, string error,
        ImmutableArray<string> problems, ImmutableArray<string> architectures, ImmutableArray<KextAuditReport> plugIns = default) =>
        new(path, infoPlist, KextAuditSubjectKind.Unreadable, bundleId, version, architectures, [], null, null, [],
            plugIns.IsDefault ? [] : plugIns, problems, error);

    private static KextVerdict NotApplicableVerdict(MacOSRelease release) =>
        new(release, MacPlatform.AppleSilicon, KextLoadVerdict.NotApplicable,
            [new(TrustCode.NotApplicable, KextReasonSeverity.Informs, $"no Apple silicon Mac runs {release}", [], [], [])]);

    private static KextAuditReason Refuse(TrustCode code, string message, ImmutableArray<string> symbols = default, ImmutableArray<string> libraries = default) =>
        new(code, KextReasonSeverity.Refuses, message, symbols.IsDefault ? [] : symbols, libraries.IsDefault ? [] : libraries, []);

    private static Dictionary<string, string> LibraryMap(IReadOnlyList<KextLibraryReference> references)
    {
        var map = new Dictionary<string, string>(references.Count, StringComparer.Ordinal);
        foreach (var l in references)
        {
            map[l.BundleId] = l.RequestedVersion;
        }
        return map;
    }

    private static bool SameSet(IReadOnlyCollection<string> a, IReadOnlyCollection<string> b) =>
        a.Count == b.Count && (a.Count == 0 || a.ToHashSet(StringComparer.Ordinal).SetEquals(b));

    private KextExecutableFacts Executable(string path)
    {
        return _executables.GetOrAdd(System.IO.Path.GetFullPath(path), static (p, imports) => KextExecutableFacts.Read(p, imports), _imports);
    }

    /// <summary>
    /// An audited kext's executable: from the cache when it was read as some kext's library, else read without
    /// keeping it (a scan then holds no kext's symbols beyond its own audit; a kext found to be a library later is
    /// read again through <see cref="Executable"/>).
    /// </summary>
    private KextExecutableFacts AuditedExecutable(string path) =>
        _executables.TryGetValue(System.IO.Path.GetFullPath(path), out var known) ? known : KextExecutableFacts.Read(path, _imports);

    private void Register(KextBundle bundle)
    {
        if (bundle.BundleId is { } id)
        {
            _knownBundles.TryAdd(id, bundle);
            _bundlesByFolder.TryAdd((System.IO.Path.GetDirectoryName(bundle.Path) ?? "", id), bundle);
        }
    }

    private KextLibrary? FindLibrary(KextBundle dependent, string bundleId)
    {
        if (bundleId == dependent.BundleId)
        {
            return null;
        }
        if (!_knownBundles.ContainsKey(bundleId))
        {
            lock (_scanLock)
            {
                ScanFolder(System.IO.Path.GetDirectoryName(dependent.Path));
            }
        }
        // The nearest library first: beside the dependent, then beside the kext enclosing a plug-in, and so on up (a
        // tree may hold several EFI folders, each with its own version of the same library); else any found.
        KextBundle? bundle = null;
        var folder = System.IO.Path.GetDirectoryName(dependent.Path);
        for (var level = 0; folder is not null && level < 8 && bundle is null; level++, folder = System.IO.Path.GetDirectoryName(folder))
        {
            _bundlesByFolder.TryGetValue((folder, bundleId), out bundle);
        }
        if (bundle is null && !_knownBundles.TryGetValue(bundleId, out bundle))
        {
            return null;
        }
        return _libraries.GetOrAdd(bundle.Path, _ =>
        {
            var exe = bundle.HasExecutable && bundle.ExecutablePath is { } p ? Executable(p) : null;
            return new KextLibrary(bundleId, bundle.Path, bundle.Version, bundle.CompatibleVersion, exe);
        });
    }

    private void ScanFolder(string? folder)
    {
        if (folder is null || !_scannedFolders.Add(folder) || !Directory.Exists(folder))
        {
            return;
        }
        IEnumerable<string> kexts;
        try
        {
            kexts = Directory.EnumerateDirectories(folder, "*" + KextDiscovery.KextExtension).Order(StringComparer.Ordinal).ToArray();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return;
        }
        foreach (var k in kexts)
        {
            try
            {
                foreach (var b in KextBundle.Open(k).SelfAndPlugIns())
                {
                    Register(b);
                }
            }
            catch (KextBundleException)
            {
                // Not readable as a bundle: it cannot satisfy a dependency either.
            }
        }
    }
}

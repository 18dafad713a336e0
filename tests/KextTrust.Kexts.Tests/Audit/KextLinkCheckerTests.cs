using KextTrust.Formats.MachO;
using KextTrust.Kexts.Audit;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;
using static KextTrust.Kexts.Tests.Audit.AuditFixtures;

namespace KextTrust.Kexts.Tests.Audit;

public sealed class KextLinkCheckerTests
{
    private static KextSliceFacts Slice(string arch, params string[] symbols) =>
        new(arch, KextArchitectures.TryParse(arch, out var a) ? a : null, MachOFileType.KextBundle, [.. symbols],
            new HashSet<string>(StringComparer.Ordinal), new KextSignatureFacts(KextSignatureState.Unsigned, false, null, "test"));

    private static KextLibraryReference Lib(string id, string version = "8.0") =>
        new(id, version, KextVersion.TryParse(version, out var v) ? v : null);

    private readonly KextLinkChecker _checker = new(Catalog);

    [Fact]
    public void Kpi_symbols_resolve_only_through_declared_bundles_and_unused_ones_are_reported()
    {
        var report = _checker.Check([Lib(Bsd), Lib(IOKit), Lib(Mach)], [Slice("x86_64", "_IOLog", "_proc_selfpid")]);

        Assert.All(report.Results, r => Assert.True(r.Resolves));
        Assert.Equal<string>([Mach], report.UnusedLibraries);
        Assert.Equal<bool?>([true, true, false], report.Libraries.Select(l => l.Used));
        Assert.All(report.Libraries, l => Assert.Equal(KextLibraryKind.KpiBundle, l.Kind));
        // x86_64 slice: every release (10.15 … 15.4); no arm64 results.
        Assert.Equal(MacOSRelease.All, report.Results.Select(r => r.Release));
    }

    [Fact]
    public void Com_apple_kernel_resolves_kernel_only_exports_and_assumes_the_rest()
    {
        var kernelOnly = Catalog.IsKernelOnlyExport(MacOSRelease.Sonoma, KextArchitecture.X86_64, "_gLoadedKextSummaries");
        Assert.True(kernelOnly);

        var withKernel = _checker.Check([Lib("com.apple.kernel", "23.3.0")], [Slice("x86_64", "_gLoadedKextSummaries", "_IOLog", "_secret_internal")],
            releases: [MacOSRelease.Sonoma]);
        var r = withKernel.Results.Single();
        Assert.True(r.Resolves);
        Assert.Equal<string>(["_secret_internal"], r.Assumed.Select(a => a.Symbol));
        Assert.Equal(KextLibraryKind.Kernel, withKernel.Libraries.Single().Kind);
        Assert.Empty(withKernel.LibraryProblemsOn(MacOSRelease.Sonoma));

        var withoutKernel = _checker.Check([Lib(IOKit)], [Slice("x86_64", "_gLoadedKextSummaries", "_IOLog")], releases: [MacOSRelease.Sonoma]);
        Assert.Equal<string>(["_gLoadedKextSummaries"], withoutKernel.UnresolvedSymbols);
    }

    [Fact]
    public void Com_apple_kernel_must_be_requested_at_exactly_the_kernel_version()
    {
        var report = _checker.Check([Lib("com.apple.kernel", "20.6.0")], [Slice("x86_64", "_IOLog")]);
        Assert.Empty(report.LibraryProblemsOn(MacOSRelease.BigSur));
        var p = Assert.Single(report.LibraryProblemsOn(MacOSRelease.Monterey));
        Assert.Equal(KextLibraryProblemKind.VersionOutOfRange, p.Kind);
        Assert.Equal("21.4.0", p.CompatibleVersion);
    }

    [Fact]
    public void An_unparseable_requested_version_is_a_library_problem()
    {
        var report = _checker.Check([Lib(IOKit, "eight")], [Slice("x86_64", "_IOLog")], releases: [MacOSRelease.Sonoma]);
        Assert.Equal(KextLibraryProblemKind.RequestedVersionInvalid, Assert.Single(report.LibraryProblemsOn(MacOSRelease.Sonoma)).Kind);
    }

    [Fact]
    public void Arm64_slices_are_not_checked_against_10_15()
    {
        var report = _checker.Check([Lib(IOKit)], [Slice("arm64e", "_IOLog"), Slice("x86_64h", "_IOLog")]);
        Assert.Equal(6, report.Results.Count(r => r.SliceArchitecture == "arm64e"));
        Assert.DoesNotContain(report.Results, r => r.SliceArchitecture == "arm64e" && r.Release == MacOSRelease.Catalina);
        Assert.Equal(7, report.Results.Count(r => r.SliceArchitecture == "x86_64h" && r.Architecture == KextArchitecture.X86_64));
    }

    [Fact]
    public void A_known_family_class_resolves_only_when_its_family_is_declared()
    {
        var declared = _checker.Check([Lib(IOKit), Lib(IOUSBHostFamily, "1.2")], [Slice("x86_64", UsbHostOpen, IOServiceStart)], releases: [MacOSRelease.Sonoma]);
        Assert.True(declared.Results.Single().Resolves);
        Assert.Empty(declared.Results.Single().Assumed);
        Assert.Equal(KextLibraryKind.AppleFamily, declared.Libraries[1].Kind);

        var other = _checker.Check([Lib(IOKit), Lib(IONetworkingFamily, "1.0")], [Slice("x86_64", UsbHostOpen)], releases: [MacOSRelease.Sonoma]);
        var u = other.Results.Single().Unresolved.Single();
        Assert.Equal(UsbHostOpen, u.Symbol);
        Assert.Equal<string>([IOUSBHostFamily], u.AvailableFrom);
    }

    [Fact]
    public void A_c_symbol_is_assumed_from_a_family_whose_exports_are_not_known()
    {
        var report = _checker.Check([Lib(IOKit), Lib("com.apple.iokit.IOBluetoothFamily", "1.0")], [Slice("x86_64", "_bt_c_function")],
            releases: [MacOSRelease.Sonoma]);
        Assert.Empty(report.UnresolvedSymbols);
        var assumed = Assert.Single(report.Results.Single().Assumed);
        Assert.Equal("_bt_c_function", assumed.Symbol);
        Assert.Equal<string>(["com.apple.iokit.IOBluetoothFamily"], assumed.Libraries);
    }

    [Fact]
    public void A_family_with_a_published_list_provides_exactly_that_list()
    {
        KextLibraryReference[] libs = [Lib(IOKit), Lib("com.apple.iokit.IONetworkingFamily", "1.0")];
        var report = _checker.Check(libs, [Slice("x86_64", "_gIOEthernetWakeOnLANFilterGroup", "_not_in_the_list")], explain: true);
        // 10.15's IONetworkingFamily tag publishes no list: both assumed there, never refused.
        var catalina = report.Results.Single(r => r.Release == MacOSRelease.Catalina);
        Assert.Equal(["_gIOEthernetWakeOnLANFilterGroup", "_not_in_the_list"], catalina.Assumed.Select(a => a.Symbol));
        Assert.Empty(catalina.Unresolved);
        foreach (var r in report.Results.Where(r => r.Release != MacOSRelease.Catalina))
        {
            var wol = r.Bindings.Single(b => b.Symbol == "_gIOEthernetWakeOnLANFilterGroup");
            Assert.Equal(KextSymbolSource.AppleFamilyExports, wol.Source);
            Assert.Equal(["_not_in_the_list"], r.Unresolved.Select(u => u.Symbol));
        }
        Assert.True(report.Libraries.Single(l => l.BundleId == "com.apple.iokit.IONetworkingFamily").Used);
    }

    [Fact]
    public void An_undeclared_family_symbol_is_unresolved_and_names_the_family()
    {
        var report = _checker.Check([Lib(IOKit)], [Slice("x86_64", "_gIOEthernetWakeOnLANFilterGroup")], releases: [MacOSRelease.Sonoma]);
        var u = Assert.Single(report.Results.Single().Unresolved);
        Assert.Equal<string>(["com.apple.iokit.IONetworkingFamily"], u.AvailableFrom);
    }

    [Fact]
    public void A_kpi_symbol_is_not_assumed_from_a_family_when_its_kpi_bundle_is_not_declared()
    {
        var report = _checker.Check([Lib(IOKit), Lib("com.apple.iokit.IOBluetoothFamily", "1.0")], [Slice("x86_64", "_kauth_listen_scope")],
            releases: [MacOSRelease.Sonoma]);
        var u = Assert.Single(report.Results.Single().Unresolved);
        Assert.Equal<string>(["com.apple.kpi.bsd"], u.AvailableFrom);
    }

    [Fact]
    public void Reserved_vtable_slots_resolve_where_their_class_vtable_does()
    {
        var report = _checker.Check([Lib(IOKit), Lib("com.apple.iokit.IONetworkingFamily", "1.0")],
            [Slice("x86_64", "__ZN20IOEthernetController30_RESERVEDIOEthernetController2Ev")], releases: [MacOSRelease.Sonoma], explain: true);
        var b = report.Results.Single().Bindings.Single();
        Assert.Equal(KextSymbolSource.VtablePatch, b.Source);
        Assert.Equal<string>(["com.apple.iokit.IONetworkingFamily"], b.Libraries);
    }

    [Fact]
    public void An_unknown_kpi_bundle_id_is_missing_on_every_release()
    {
        var report = _checker.Check([Lib("com.apple.kpi.nonesuch")], [Slice("x86_64", "_x")]);
        Assert.All(report.LibraryChecks, c => Assert.Equal(KextLibraryProblemKind.Missing, Assert.Single(c.Problems).Kind));
        Assert.Equal<string>(["_x"], report.UnresolvedSymbols);
    }
}

using KextTrust.Kexts.Kpi;

namespace KextTrust.Kexts.Tests.Kpi;

public sealed class KpiCatalogTests
{
    private static readonly KpiCatalog Catalog = KpiCatalog.Load();

    private static IReadOnlyCollection<string> On(string release, KextArchitecture arch, string symbol) =>
        Catalog.ExportingBundles(MacOSRelease.Parse(release), arch, symbol);

    [Theory]
    [InlineData("10.15", KextArchitecture.X86_64)]
    [InlineData("11", KextArchitecture.X86_64)]
    [InlineData("11", KextArchitecture.Arm64)]
    [InlineData("15.4", KextArchitecture.Arm64)]
    public void IOLog_is_exported_by_the_iokit_kpi_only(string release, KextArchitecture arch)
    {
        // IOKit.exports line "_IOLog"; no other set lists it.
        Assert.Equal(["com.apple.kpi.iokit"], On(release, arch, "_IOLog"));
    }

    [Theory]
    [InlineData("10.15")]
    [InlineData("11")]
    [InlineData("15.4")]
    public void Kauth_listener_and_socket_kpis_are_in_the_bsd_kpi(string release)
    {
        Assert.Equal(["com.apple.kpi.bsd"], On(release, KextArchitecture.X86_64, "_kauth_listen_scope"));
        Assert.Equal(["com.apple.kpi.bsd"], On(release, KextArchitecture.X86_64, "_sock_socket"));
        Assert.Equal(["com.apple.kpi.bsd"], On(release, KextArchitecture.X86_64, "_kauth_cred_getuid"));
    }

    [Fact]
    public void Every_symbol_the_seed_names_is_a_kpi_export_on_10_15_and_in_the_bsd_kpi_from_11()
    {
        var names = KpiRules.All.Select(r => r.Trigger).OfType<KpiSymbolTrigger>().SelectMany(t => t.Symbols).ToList();
        Assert.Equal(2 + 21 + 18, names.Count);
        foreach (var name in names)
        {
            Assert.NotEmpty(Catalog.ExportingBundles(MacOSRelease.Catalina, KextArchitecture.X86_64, name));
            foreach (var release in MacOSRelease.All.Skip(1))
            {
                foreach (var arch in new[] { KextArchitecture.X86_64, KextArchitecture.Arm64 })
                {
                    Assert.True(Catalog.ExportingBundles(release, arch, name).Contains("com.apple.kpi.bsd"), $"{name} on {release} {arch}");
                }
            }
        }
    }

    [Fact]
    public void Sock_retain_and_release_moved_from_unsupported_to_bsd_in_11()
    {
        // 10.15: Private.exports and Unsupported.x86_64.exports; 11: BSDKernel.exports.
        Assert.Equal(["com.apple.kpi.private", "com.apple.kpi.unsupported"], On("10.15", KextArchitecture.X86_64, "_sock_release").Order(StringComparer.Ordinal));
        Assert.Equal(["com.apple.kpi.bsd"], On("11", KextArchitecture.X86_64, "_sock_release"));
    }

    [Fact]
    public void An_x86_64_only_symbol_is_not_exported_for_arm64()
    {
        // Unsupported.x86_64.exports: _rdmsr_carefully
        Assert.Equal(["com.apple.kpi.unsupported"], On("14", KextArchitecture.X86_64, "_rdmsr_carefully"));
        Assert.Empty(On("14", KextArchitecture.Arm64, "_rdmsr_carefully"));
    }

    [Fact]
    public void An_arm64_only_symbol_is_not_exported_for_x86_64()
    {
        // Libkern.arm64.exports: _PAGE_SHIFT_CONST
        Assert.Equal(["com.apple.kpi.libkern"], On("14", KextArchitecture.Arm64, "_PAGE_SHIFT_CONST"));
        Assert.Empty(On("14", KextArchitecture.X86_64, "_PAGE_SHIFT_CONST"));
    }

    [Fact]
    public void MacOSX_platform_files_are_included()
    {
        // Only in IOKit.arm64.MacOSX.exports (macOS 11), not in IOKit.exports / IOKit.arm64.exports / x86_64 files.
        const string symbol = "__ZN12IODMACommand22_RESERVEDIODMACommand0Ev";
        Assert.Equal(["com.apple.kpi.iokit"], On("11", KextArchitecture.Arm64, symbol));
        Assert.Empty(On("11", KextArchitecture.X86_64, symbol));
    }

    [Fact]
    public void No_macOS_10_15_on_Apple_silicon()
    {
        Assert.False(KpiCatalog.Supports(MacOSRelease.Catalina, KextArchitecture.Arm64));
        Assert.Empty(On("10.15", KextArchitecture.Arm64, "_IOLog"));
        Assert.Empty(Catalog.ExportedSymbols(MacOSRelease.Catalina, KextArchitecture.Arm64));
    }

    [Fact]
    public void An_alias_is_exported_and_knows_its_target()
    {
        // BSDKernel.exports: _in_cksum:_inet_cksum_simple ; Libkern.exports: _kmod_info:_invalid_kmod_info
        Assert.Equal(["com.apple.kpi.bsd"], On("13", KextArchitecture.X86_64, "_in_cksum"));
        Assert.Equal("_inet_cksum_simple", Catalog.AliasTarget(MacOSRelease.Ventura, KextArchitecture.X86_64, "_in_cksum"));
        Assert.Equal(["com.apple.kpi.libkern"], On("12", KextArchitecture.Arm64, "_kmod_info"));
        Assert.Equal("_invalid_kmod_info", Catalog.AliasTarget(MacOSRelease.Monterey, KextArchitecture.Arm64, "_kmod_info"));
        Assert.Null(Catalog.AliasTarget(MacOSRelease.Monterey, KextArchitecture.Arm64, "_IOLog"));
    }

    [Fact]
    public void A_prefix_rule_covers_every_symbol_with_the_prefix_and_nothing_else()
    {
        // Private.x86_64.exports: _hv_get*
        Assert.Equal(["com.apple.kpi.private"], On("12", KextArchitecture.X86_64, "_hv_get_vmx_capabilities"));
        Assert.Equal(["com.apple.kpi.private"], On("12", KextArchitecture.X86_64, "_hv_get"));
        Assert.Empty(On("12", KextArchitecture.X86_64, "_hv_ge"));
        Assert.Empty(On("12", KextArchitecture.Arm64, "_hv_get_vmx_capabilities"));
        // Private.exports: __ZN16IOPlatformExpert*
        Assert.Contains("com.apple.kpi.private", On("15", KextArchitecture.Arm64, "__ZN16IOPlatformExpert5startEP9IOService"));
        Assert.Contains(("_hv_get", "com.apple.kpi.private"), Catalog.PrefixRules(MacOSRelease.Monterey, KextArchitecture.X86_64));
    }

    [Fact]
    public void A_symbol_in_two_sets_lists_both_bundles()
    {
        // _PE_i_can_has_debugger is in Private.exports and Unsupported.exports.
        var bundles = On("15.4", KextArchitecture.Arm64, "_PE_i_can_has_debugger");
        Assert.Equal(["com.apple.kpi.private", "com.apple.kpi.unsupported"], bundles.Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("_this_symbol_is_in_no_set")]
    [InlineData("_IOLo")]
    [InlineData("_iolog")]
    [InlineData("")]
    public void A_symbol_in_no_set_has_no_bundle(string symbol)
    {
        foreach (var release in MacOSRelease.All)
        {
            Assert.Empty(Catalog.ExportingBundles(release, KextArchitecture.X86_64, symbol));
        }
    }

    [Fact]
    public void Unused_exports_are_kernel_global_but_in_no_kpi_bundle()
    {
        // Unused.exports: "_gLoadedKextSummaries", "_atm_mana*"
        Assert.Empty(On("13", KextArchitecture.X86_64, "_gLoadedKextSummaries"));
        Assert.True(Catalog.IsKernelOnlyExport(MacOSRelease.Ventura, KextArchitecture.X86_64, "_gLoadedKextSummaries"));
        Assert.True(Catalog.IsKernelOnlyExport(MacOSRelease.Ventura, KextArchitecture.Arm64, "_atm_manager_x"));
        Assert.False(Catalog.IsKernelOnlyExport(MacOSRelease.Ventura, KextArchitecture.X86_64, "_IOLog"));
    }

    [Fact]
    public void Pseudo_kexts_carry_bundle_id_compatible_version_and_kernel_version()
    {
        var bsd = Catalog.FindPseudoKext(MacOSRelease.BigSur, "com.apple.kpi.bsd");
        Assert.Equal(new PseudoKext(MacOSRelease.BigSur, "com.apple.kpi.bsd", "BSDKernel", "8.0.0b1", "20.6.0"), bsd);
        Assert.Equal("7.0", Catalog.FindPseudoKext(MacOSRelease.Sonoma, "com.apple.kpi.iokit")!.CompatibleVersion);
        Assert.Equal("8.0.0d0", Catalog.FindPseudoKext(MacOSRelease.Sonoma, "com.apple.kpi.libkern")!.CompatibleVersion);
        Assert.Equal("19.6.0", Catalog.FindPseudoKext(MacOSRelease.Catalina, "com.apple.kpi.mach")!.Version);
        var kernel = Catalog.FindPseudoKext(MacOSRelease.Sequoia15_4, "com.apple.kernel")!;
        Assert.Null(kernel.SymbolSet);
        Assert.Equal("24.4.0", kernel.CompatibleVersion); // ###KERNEL_VERSION_LONG### substituted
        Assert.Null(Catalog.FindPseudoKext(MacOSRelease.BigSur, "com.apple.kpi.kcov")); // Kcov.kext appears in 12
        Assert.NotNull(Catalog.FindPseudoKext(MacOSRelease.Monterey, "com.apple.kpi.kcov"));
        foreach (var release in MacOSRelease.All)
        {
            Assert.All(Catalog.PseudoKexts(release), p => Assert.StartsWith(release.KernelMajor + ".", p.Version, StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Releases_record_their_xnu_tag()
    {
        Assert.Equal(MacOSRelease.All, Catalog.Releases.Select(r => r.Release));
        Assert.Equal(new KpiCatalogRelease(MacOSRelease.BigSur, "xnu-7195.141.2", "20.6.0"), Catalog.Releases[1]);
        Assert.Equal("xnu-11417.101.15", Catalog.Releases[6].XnuTag);
    }

    [Theory]
    [InlineData("com.apple.kpi.bsd", true, true)]
    [InlineData("com.apple.kpi.iokit", true, true)]
    [InlineData("com.apple.kpi.unsupported", true, true)]
    [InlineData("com.apple.kpi.dsep", true, true)]
    [InlineData("com.apple.kernel", false, true)]
    [InlineData("com.apple.iokit.IONVRAMFamily", false, true)]
    [InlineData("com.apple.iokit.IOHIDFamily", false, false)]
    [InlineData("com.apple.kpi.BSD", false, false)]
    public void Kpi_bundles_are_recognised(string id, bool kpi, bool pseudo)
    {
        Assert.Equal(kpi, Catalog.IsKpiBundle(id));
        Assert.Equal(pseudo, Catalog.IsKernelPseudoKext(id));
    }

    [Fact]
    public void Symbol_counts_are_plausible_and_grow_little()
    {
        foreach (var release in MacOSRelease.All.Skip(1))
        {
            foreach (var arch in new[] { KextArchitecture.X86_64, KextArchitecture.Arm64 })
            {
                var n = Catalog.ExportedSymbols(release, arch).Count();
                Assert.InRange(n, 4000, 8000);
            }
        }
    }

    [Fact]
    public void Malformed_catalog_text_is_rejected()
    {
        Assert.Throws<InvalidDataException>(() => KpiCatalog.Parse("hello\n"));
        Assert.Throws<InvalidDataException>(() => KpiCatalog.Parse("# KextTrust KPI catalog, format 1\nR 11 macos-11 x 20.6.0\n"));
        Assert.Throws<InvalidDataException>(() => KpiCatalog.Parse("# KextTrust KPI catalog, format 1\nS _x 0 1\n"));
    }
}

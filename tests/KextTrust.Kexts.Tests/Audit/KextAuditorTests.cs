using KextTrust.Formats.MachO;
using KextTrust.Kexts.Audit;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;
using KextTrust.TestSupport;
using static KextTrust.Kexts.Tests.Audit.AuditFixtures;

namespace KextTrust.Kexts.Tests.Audit;

public sealed class KextAuditorTests
{
    private static readonly MacPlatform Intel = MacPlatform.Intel;
    private static readonly MacPlatform AS = MacPlatform.AppleSilicon;

    [Fact]
    public void Socket_kpi_only_is_deprecated_everywhere_and_never_refused()
    {
        using var tmp = new TempDir();
        var r = AuditSpec(tmp.Path, Spec("com.example.Sock", ["_sock_socket", "_sock_send", "_IOLog"], Libs(Bsd, IOKit)));

        Assert.Equal(KextAuditSubjectKind.Kext, r.Kind);
        Assert.Equal("WWWWWWW", Row(r, Intel));
        Assert.Equal("-WWWWWW", Row(r, AS));
        var reason = Assert.Single(r.VerdictFor(MacOSRelease.BigSur, AS)!.Reasons);
        Assert.Equal("deprecated-kpi:KPI-SOCKET", reason.Key);
        Assert.Equal(KextReasonSeverity.Warns, reason.Severity);
        Assert.Equal<string>(["_sock_send", "_sock_socket"], reason.Symbols);
        Assert.Contains("NetworkExtension", reason.Message);
        Assert.Equal<string>(["KPI-SOCKET"], r.Findings.Select(f => f.Rule.Id));
    }

    [Fact]
    public void Kauth_listener_is_refused_from_11_on_both_platforms_and_warns_on_10_15()
    {
        using var tmp = new TempDir();
        var r = AuditSpec(tmp.Path, Spec("com.example.Av", ["_kauth_listen_scope", "_kauth_unlisten_scope", "_kauth_cred_getuid"], Libs(Bsd)));

        Assert.Equal("WRRRRRR", Row(r, Intel));
        Assert.Equal("-RRRRRR", Row(r, AS));
        Assert.Equal<string>(["deprecated-kpi:KPI-KAUTH"], Codes(r, MacOSRelease.Catalina, Intel));
        foreach (var release in MacOSRelease.All.Skip(1))
        {
            Assert.Equal<string>(["unsupported-kpi:KPI-KAUTH"], Codes(r, release, Intel));
            Assert.Equal<string>(["unsupported-kpi:KPI-KAUTH"], Codes(r, release, AS));
        }
        var refusal = r.VerdictFor(MacOSRelease.Sonoma, AS)!.Reasons[0];
        Assert.Equal<string>(["_kauth_listen_scope", "_kauth_unlisten_scope"], refusal.Symbols);
        Assert.Contains("EndpointSecurity", refusal.Message);
        Assert.Contains(KpiRules.EndpointSecurityEntitlement, refusal.Message);
        var n = r.VerdictFor(MacOSRelease.Catalina, AS)!;
        Assert.Equal(KextLoadVerdict.NotApplicable, n.Verdict);
        Assert.Equal("not-applicable", Assert.Single(n.Reasons).Key);
    }

    [Fact]
    public void Kauth_credential_accessors_alone_load_everywhere()
    {
        using var tmp = new TempDir();
        var r = AuditSpec(tmp.Path, Spec("com.example.Fuse", ["_kauth_cred_getuid", "_proc_selfpid"], Libs(Bsd)));

        Assert.Equal("LLLLLLL", Row(r, Intel));
        Assert.Equal("-LLLLLL", Row(r, AS));
        Assert.Empty(r.Findings);
        Assert.All(r.Verdicts.Where(v => v.Verdict == KextLoadVerdict.Loads), v => Assert.Empty(v.Reasons));
    }

    [Fact]
    public void Usb_kext_without_networking_is_not_caught_by_usb_networking()
    {
        using var tmp = new TempDir();
        var r = AuditSpec(tmp.Path, Spec("com.example.UsbGadget", [UsbHostOpen, IOServiceStart, "_IOLog"], Libs(IOKit, IOUSBHostFamily)));

        Assert.Empty(r.Findings);
        Assert.Equal("LLLLLLL", Row(r, Intel));
        Assert.Equal("-LLLLLL", Row(r, AS));
        Assert.Empty(r.Link!.UnresolvedSymbols);
    }

    [Fact]
    public void Usb_networking_is_refused_from_11()
    {
        using var tmp = new TempDir();
        var r = AuditSpec(tmp.Path, Spec("com.example.UsbEth", [UsbHostOpen, EthernetMeta, IOServiceStart], Libs(IOKit, IOUSBHostFamily, IONetworkingFamily)));

        Assert.Equal("WRRRRRR", Row(r, Intel));
        Assert.Equal("-RRRRRR", Row(r, AS));
        var reason = r.VerdictFor(MacOSRelease.Monterey, Intel)!.Reasons.Single();
        Assert.Equal("unsupported-kpi:KPI-USB-NETWORKING", reason.Key);
        Assert.Equal<string>([IONetworkingFamily, IOUSBHostFamily], reason.Libraries);
        Assert.Contains(EthernetMeta, reason.Symbols);
        Assert.Contains(UsbHostOpen, reason.Symbols);
    }

    [Fact]
    public void Pci_networking_warns_and_is_never_refused()
    {
        using var tmp = new TempDir();
        var r = AuditSpec(tmp.Path, Spec("com.example.PciEth", [PciConfigRead, EthernetMeta, IOServiceStart], Libs(IOKit, IOPCIFamily, IONetworkingFamily)));

        Assert.Equal("WWWWWWW", Row(r, Intel));
        Assert.Equal("-WWWWWW", Row(r, AS));
        Assert.Equal<string>(["deprecated-kpi:KPI-PCI-NETWORKING"], Codes(r, MacOSRelease.Sequoia15_4, AS));
    }

    [Theory]
    [InlineData("KPI-NETFILTER", new[] { "_sflt_register", "_sock_socket" }, new[] { Bsd })]
    [InlineData("KPI-IOHID", new[] { HidDeviceStart, IOServiceStart }, new[] { IOKit, IOHIDFamily })]
    [InlineData("KPI-IOUSB", new[] { LegacyUsbOpen, IOServiceStart }, new[] { IOKit, IOUSBFamily })]
    [InlineData("KPI-USB-SERIAL", new[] { SerialMeta, UsbHostOpen, IOServiceStart }, new[] { IOKit, IOSerialFamily, IOUSBHostFamily })]
    [InlineData("KPI-USB-VENDOR-IPC", new[] { UsbHostOpen, UserClientVtable, IOServiceStart }, new[] { IOKit, IOUSBHostFamily })]
    public void Every_unsupported_group_refuses_from_11_on_both_platforms(string ruleId, string[] symbols, string[] libraries)
    {
        using var tmp = new TempDir();
        var r = AuditSpec(tmp.Path, Spec("com.example.K", symbols, Libs(libraries)));

        Assert.Contains(ruleId, r.Findings.Select(f => f.Rule.Id));
        Assert.Equal('W', Row(r, Intel)[0]);
        Assert.Equal("RRRRRR", Row(r, Intel)[1..]);
        Assert.Equal("-RRRRRR", Row(r, AS));
        Assert.Contains($"unsupported-kpi:{ruleId}", Codes(r, MacOSRelease.Ventura, AS));
        Assert.DoesNotContain("unresolved-symbols", Codes(r, MacOSRelease.Ventura, AS));
    }

    [Fact]
    public void X86_64_only_kext_loads_on_intel_and_is_refused_on_apple_silicon()
    {
        using var tmp = new TempDir();
        var r = AuditSpec(tmp.Path, Spec("com.example.Intel", ["_IOLog", IOServiceStart], Libs(IOKit), MachOTargetArchitecture.X86_64));

        Assert.Equal("LLLLLLL", Row(r, Intel));
        Assert.Equal("-RRRRRR", Row(r, AS));
        Assert.Equal<string>(["missing-architecture"], Codes(r, MacOSRelease.BigSur, AS));
        Assert.Contains("KMErrorDomain code 71", r.VerdictFor(MacOSRelease.BigSur, AS)!.Reasons[0].Message);
        Assert.Equal<string>(["x86_64"], r.Architectures);
    }

    [Fact]
    public void A_plain_arm64_slice_is_not_arm64e()
    {
        using var tmp = new TempDir();
        var r = AuditSpec(tmp.Path, Spec("com.example.Arm64", ["_IOLog"], Libs(IOKit), MachOTargetArchitecture.X86_64, MachOTargetArchitecture.Arm64));

        Assert.Equal("LLLLLLL", Row(r, Intel));
        Assert.Equal("-RRRRRR", Row(r, AS));
        var reason = Assert.Single(r.VerdictFor(MacOSRelease.Sonoma, AS)!.Reasons);
        Assert.Equal("missing-architecture", reason.Key);
        Assert.Contains("arm64 slice is not arm64e", reason.Message);
    }

    [Fact]
    public void Arm64e_only_kext_is_refused_on_intel()
    {
        using var tmp = new TempDir();
        var r = AuditSpec(tmp.Path, Spec("com.example.AS", ["_IOLog"], Libs(IOKit), MachOTargetArchitecture.Arm64e));

        Assert.Equal("RRRRRRR", Row(r, Intel));
        Assert.Equal("-LLLLLL", Row(r, AS));
        Assert.Equal<string>(["missing-architecture"], Codes(r, MacOSRelease.Catalina, Intel));
    }

    [Fact]
    public void An_unresolved_symbol_is_refused_and_says_where_a_kpi_symbol_would_come_from()
    {
        using var tmp = new TempDir();
        var r = AuditSpec(tmp.Path, Spec("com.example.Broken", ["_IOLog", "_no_such_kernel_function", "_proc_selfpid"], Libs(IOKit)));

        Assert.Equal("RRRRRRR", Row(r, Intel));
        Assert.Equal("-RRRRRR", Row(r, AS));
        var reason = Assert.Single(r.VerdictFor(MacOSRelease.Sequoia, Intel)!.Reasons);
        Assert.Equal("unresolved-symbols", reason.Key);
        Assert.Equal<string>(["_no_such_kernel_function", "_proc_selfpid"], reason.Symbols);
        Assert.Equal<string>([Bsd], reason.Libraries);
        Assert.Equal<string>(["_no_such_kernel_function", "_proc_selfpid"], r.Link!.UnresolvedSymbols);
        var u = r.Link.For(MacOSRelease.Sequoia, KextArchitecture.X86_64).Single().Unresolved;
        Assert.Equal<string>([Bsd], u.Single(x => x.Symbol == "_proc_selfpid").AvailableFrom);
        Assert.Empty(u.Single(x => x.Symbol == "_no_such_kernel_function").AvailableFrom);
    }

    [Fact]
    public void A_library_requested_newer_than_the_pseudo_kext_is_refused_on_older_releases()
    {
        using var tmp = new TempDir();
        var libs = Libs(IOKit);
        libs[Bsd] = "21.0";
        var r = AuditSpec(tmp.Path, Spec("com.example.New", ["_IOLog", "_proc_selfpid"], libs));

        Assert.Equal("RRLLLLL", Row(r, Intel));
        Assert.Equal("-RLLLLL", Row(r, AS));
        var reason = Assert.Single(r.VerdictFor(MacOSRelease.BigSur, Intel)!.Reasons);
        Assert.Equal("library-version", reason.Key);
        Assert.Equal<string>([Bsd], reason.Libraries);
        Assert.Contains("8.0.0b1…20.6.0", reason.Message);
    }

    [Fact]
    public void A_kpi_bundle_that_a_release_lacks_is_a_missing_library()
    {
        using var tmp = new TempDir();
        var r = AuditSpec(tmp.Path, Spec("com.example.Cov", ["_IOLog"], Libs(IOKit, "com.apple.kpi.kcov")));

        Assert.Equal("RRLLLLL", Row(r, Intel));
        Assert.Equal<string>(["missing-library"], Codes(r, MacOSRelease.Catalina, Intel));
        Assert.Contains("com.apple.kpi.kcov", r.Link!.UnusedLibraries);
    }

    [Theory]
    [InlineData(true, false, "KPI-EXEMPT-SIP-DISABLED")]
    [InlineData(false, true, "KPI-EXEMPT-MDM-APPROVED")]
    public void With_sip_disabled_or_mdm_approval_an_unsupported_kpi_does_not_refuse_and_says_why(bool sipDisabled, bool mdm, string exemption)
    {
        using var tmp = new TempDir();
        var options = new KextAuditOptions { Enforcement = new KpiEnforcementContext(sipDisabled, mdm) };
        var r = AuditSpec(tmp.Path, Spec("com.example.Av", ["_kauth_listen_scope"], Libs(Bsd)), options);

        Assert.Equal("WWWWWWW", Row(r, Intel));
        Assert.Equal("-WWWWWW", Row(r, AS));
        var reason = Assert.Single(r.VerdictFor(MacOSRelease.Sonoma, AS)!.Reasons);
        Assert.Equal("kpi-not-enforced:KPI-KAUTH", reason.Key);
        Assert.Equal<string>([exemption], reason.Exemptions);
        Assert.Contains("not enforced", reason.Message);
        Assert.Equal<string>(["deprecated-kpi:KPI-KAUTH"], Codes(r, MacOSRelease.Catalina, Intel));
    }

    [Fact]
    public void The_footnote_does_not_excuse_a_missing_arm64e_slice_or_unresolved_symbols()
    {
        using var tmp = new TempDir();
        var options = new KextAuditOptions { Enforcement = new KpiEnforcementContext(true, true) };
        var r = AuditSpec(tmp.Path, Spec("com.example.Old", ["_kauth_listen_scope", "_no_such_fn"], Libs(Bsd), MachOTargetArchitecture.X86_64), options);

        Assert.Equal("RRRRRRR", Row(r, Intel));
        Assert.Equal("-RRRRRR", Row(r, AS));
        Assert.Equal<string>(["unresolved-symbols", "kpi-not-enforced:KPI-KAUTH"], Codes(r, MacOSRelease.BigSur, Intel));
        Assert.Equal<string>(["missing-architecture"], Codes(r, MacOSRelease.BigSur, AS));
    }

    [Fact]
    public void Signature_is_not_checked_without_facts()
    {
        using var tmp = new TempDir();
        var r = AuditSpec(tmp.Path, Spec("com.example.Plain", ["_IOLog"], Libs(IOKit)));
        Assert.Null(r.Signature);
        Assert.Equal("LLLLLLL", Row(r, Intel));
    }

    [Theory]
    [InlineData(KextSignatureState.Unsigned, false, false, "RRRRRRR")]
    [InlineData(KextSignatureState.AdHoc, false, false, "RRRRRRR")]
    [InlineData(KextSignatureState.Invalid, true, false, "RRRRRRR")]
    [InlineData(KextSignatureState.Valid, false, false, "RRRRRRR")]
    [InlineData(KextSignatureState.Valid, true, false, "LLLLLLL")]
    [InlineData(KextSignatureState.CmsNotVerified, false, false, "LLLLLLL")]
    [InlineData(KextSignatureState.Unsigned, false, true, "LLLLLLL")]
    public void Signature_facts_refuse_where_sip_requires_a_developer_id_kext_signature(KextSignatureState state, bool authorized, bool sipDisabled, string row)
    {
        using var tmp = new TempDir();
        var facts = new KextSignatureFacts(state, authorized, "TEAM123456", "test facts");
        var options = new KextAuditOptions { SignatureFacts = _ => facts, Enforcement = new KpiEnforcementContext(sipDisabled, false) };
        var r = AuditSpec(tmp.Path, Spec("com.example.Signed", ["_IOLog"], Libs(IOKit)), options);

        Assert.Same(facts, r.Signature);
        Assert.Equal(row, Row(r, Intel));
        Assert.Equal("-" + row[1..], Row(r, AS));
        if (row[0] == 'R')
        {
            // The code the one signature verdict gives in why and kmd (KMErrorDomain 29).
            var code = state switch
            {
                KextSignatureState.Unsigned => "signature-unsigned",
                KextSignatureState.AdHoc => "signature-ad-hoc",
                KextSignatureState.Valid => "not-kext-signing-authority",
                _ => "signature-invalid",
            };
            Assert.Equal<string>([code], Codes(r, MacOSRelease.Monterey, AS));
            Assert.Equal(29, r.VerdictFor(MacOSRelease.Monterey, AS)!.Reasons.Single().KMErrorCode);
        }
    }

    [Fact]
    public void Reading_signature_presence_finds_an_unsigned_fixture_unsigned()
    {
        using var tmp = new TempDir();
        var r = AuditSpec(tmp.Path, Spec("com.example.Unsigned", ["_IOLog"], Libs(IOKit)), new KextAuditOptions { ReadSignaturePresence = true });
        Assert.Equal(KextSignatureState.Unsigned, r.Signature!.State);
        Assert.Equal<string>(["signature-unsigned"], Codes(r, MacOSRelease.Ventura, Intel));
    }

    [Fact]
    public void Signature_presence_of_real_developer_id_binaries_is_cms_not_verified()
    {
        var file = Corpus.RuntimePackMachOFiles().First(f => f.EndsWith("libSystem.Native.dylib", StringComparison.Ordinal));
        var facts = KextExecutableFacts.Read(file);
        Assert.Null(facts.Error);
        Assert.All(facts.Slices, s => Assert.Equal(KextSignatureState.CmsNotVerified, s.Signature.State));
        Assert.Equal("UBF8T346G9", facts.Slices[0].Signature.TeamId);
    }

    [Fact]
    public void Real_microsoft_binaries_are_not_kexts_and_never_crash_the_audit()
    {
        var auditor = new KextAuditor(Catalog);
        var files = Corpus.RuntimePackMachOFiles();
        Assert.NotEmpty(files);
        foreach (var file in files)
        {
            var r = auditor.AuditFile(file);
            Assert.Equal(KextAuditSubjectKind.NotAKext, r.Kind);
            Assert.Null(r.Error);
            Assert.Equal("RRRRRRR", Row(r, Intel));
            Assert.Equal("-RRRRRR", Row(r, AS));
            var reason = Assert.Single(r.VerdictFor(MacOSRelease.Sonoma, Intel)!.Reasons);
            Assert.Equal("not-a-kext", reason.Key);
            Assert.Contains("not a kext (MH_KEXT_BUNDLE)", reason.Message);
        }
        var dylib = auditor.AuditPath(files.First(f => f.EndsWith(".dylib", StringComparison.Ordinal))).Single();
        Assert.Contains("dynamic library (MH_DYLIB)", dylib.Verdicts[0].Reasons[0].Message);
    }

    [Fact]
    public void A_bundle_whose_executable_is_a_dylib_is_not_a_kext()
    {
        using var tmp = new TempDir();
        var path = KextBundleWriter.Write(tmp.Path, Spec("com.example.Fake", ["_IOLog"], Libs(IOKit)));
        var dylib = Corpus.RuntimePackMachOFiles().First(f => f.EndsWith("libSystem.Native.dylib", StringComparison.Ordinal));
        File.Copy(dylib, Path.Combine(path, "Contents", "MacOS", "Fake"), overwrite: true);

        var r = new KextAuditor(Catalog).AuditPath(path).Single();
        Assert.Equal(KextAuditSubjectKind.NotAKext, r.Kind);
        Assert.Equal("com.example.Fake", r.BundleId);
        Assert.Equal<string>(["not-a-kext"], Codes(r, MacOSRelease.BigSur, Intel));
    }

    [Fact]
    public void A_malformed_executable_is_unreadable_with_the_reason()
    {
        using var tmp = new TempDir();
        var path = KextBundleWriter.Write(tmp.Path, Spec("com.example.Bad", ["_IOLog"], Libs(IOKit)));
        File.WriteAllBytes(Path.Combine(path, "Contents", "MacOS", "Bad"), [0xCF, 0xFA, 0xED, 0xFE, 1, 2, 3]);

        var r = new KextAuditor(Catalog).AuditPath(path).Single();
        Assert.Equal(KextAuditSubjectKind.Unreadable, r.Kind);
        Assert.False(string.IsNullOrEmpty(r.Error));
        Assert.Empty(r.Verdicts);
    }

    [Fact]
    public void A_missing_executable_is_refused()
    {
        using var tmp = new TempDir();
        var path = KextBundleWriter.Write(tmp.Path, Spec("com.example.Gone", ["_IOLog"], Libs(IOKit)));
        File.Delete(Path.Combine(path, "Contents", "MacOS", "Gone"));

        var r = new KextAuditor(Catalog).Audit(KextBundle.Open(path));
        Assert.Equal("RRRRRRR", Row(r, Intel));
        Assert.Equal<string>(["missing-executable"], Codes(r, MacOSRelease.BigSur, AS));
    }

    [Fact]
    public void A_codeless_kext_loads_everywhere()
    {
        using var tmp = new TempDir();
        var r = AuditSpec(tmp.Path, new KextBundleSpec("com.example.Codeless", "1.0") { Libraries = Libs(IOKit) });
        Assert.Equal("LLLLLLL", Row(r, Intel));
        Assert.Equal("-LLLLLL", Row(r, AS));
        Assert.Empty(r.Architectures);
        Assert.Null(r.Link!.Libraries.Single().Used);
    }

    [Fact]
    public void Options_restrict_the_releases_and_platforms()
    {
        using var tmp = new TempDir();
        var options = new KextAuditOptions { Releases = [MacOSRelease.BigSur], Platforms = [MacPlatform.AppleSilicon] };
        var r = AuditSpec(tmp.Path, Spec("com.example.Av", ["_kauth_listen_scope"], Libs(Bsd)), options);
        var v = Assert.Single(r.Verdicts);
        Assert.Equal("11/apple-silicon", v.Key);
        Assert.Equal("refused", v.VerdictCode);
    }

    [Fact]
    public void Plug_ins_are_audited_and_resolve_against_their_parent()
    {
        using var tmp = new TempDir();
        var spec = new KextBundleSpec("com.example.Parent", "2.1.0")
        {
            CompatibleVersion = "2.0.0",
            Libraries = Libs(IOKit),
            Slices = Universal.Select(a => new KextSliceSpec(a, ["_IOLog"]) { DefinedSymbols = ["_kmod_info", "_parent_api"] }).ToArray(),
            PlugIns =
            [
                new KextBundleSpec("com.example.Parent.Child", "1.0")
                {
                    Libraries = new Dictionary<string, string> { [IOKit] = "8.0", ["com.example.Parent"] = "2.0" },
                    Slices = Universal.Select(a => new KextSliceSpec(a, ["_IOLog", "_parent_api"])).ToArray(),
                },
                new KextBundleSpec("com.example.Parent.TooNew", "1.0")
                {
                    Libraries = new Dictionary<string, string> { [IOKit] = "8.0", ["com.example.Parent"] = "3.0" },
                    Slices = Universal.Select(a => new KextSliceSpec(a, ["_parent_api", "_parent_missing"])).ToArray(),
                },
            ],
        };
        var r = AuditSpec(tmp.Path, spec);

        Assert.Equal(2, r.PlugIns.Length);
        var child = r.PlugIns.Single(p => p.BundleId == "com.example.Parent.Child");
        Assert.Equal("LLLLLLL", Row(child, Intel));
        var parentUse = child.Link!.Libraries.Single(l => l.BundleId == "com.example.Parent");
        Assert.Equal(KextLibraryKind.Bundled, parentUse.Kind);
        Assert.True(parentUse.Used);

        var tooNew = r.PlugIns.Single(p => p.BundleId == "com.example.Parent.TooNew");
        Assert.Equal("-RRRRRR", Row(tooNew, AS));
        Assert.Equal<string>(["unresolved-symbols", "library-version"], Codes(tooNew, MacOSRelease.Sonoma, AS));
        Assert.Equal<string>(["_parent_missing"], tooNew.VerdictFor(MacOSRelease.Sonoma, AS)!.Reasons[0].Symbols);
        Assert.Equal<string>([IOKit], tooNew.Link!.UnusedLibraries);
        Assert.Equal(3, r.SelfAndPlugIns().Count());
    }

    [Fact]
    public void A_library_kext_in_the_same_folder_is_found_by_its_exports()
    {
        using var tmp = new TempDir();
        KextBundleWriter.Write(tmp.Path, new KextBundleSpec("com.example.Lib", "1.5")
        {
            CompatibleVersion = "1.0",
            Libraries = Libs(IOKit),
            Slices = [new KextSliceSpec(MachOTargetArchitecture.X86_64, ["_IOLog"]) { DefinedSymbols = ["_kmod_info", "_lib_fn"] }],
        });
        var libs = Libs(IOKit);
        libs["com.example.Lib"] = "1.2";
        var r = AuditSpec(tmp.Path, Spec("com.example.User", ["_IOLog", "_lib_fn"], libs));

        Assert.Equal("LLLLLLL", Row(r, Intel));
        // The library has no arm64e slice: its exports do not exist on Apple silicon.
        Assert.Equal("-RRRRRR", Row(r, AS));
        Assert.Equal<string>(["_lib_fn"], r.VerdictFor(MacOSRelease.BigSur, AS)!.Reasons.Single().Symbols);
    }

    [Fact]
    public void An_unknown_library_makes_its_symbols_assumed_not_unresolved()
    {
        using var tmp = new TempDir();
        var libs = Libs(IOKit);
        libs["com.vendor.Elsewhere"] = "1.0";
        var r = AuditSpec(tmp.Path, Spec("com.example.Client", ["_IOLog", "_vendor_fn"], libs));

        Assert.Equal("LLLLLLL", Row(r, Intel));
        Assert.Equal<string>(["com.vendor.Elsewhere"], r.Link!.UnknownLibraries);
        var assumed = r.Link.For(MacOSRelease.Sonoma, KextArchitecture.Arm64).Single().Assumed.Single();
        Assert.Equal("_vendor_fn", assumed.Symbol);
        Assert.Equal<string>(["com.vendor.Elsewhere"], assumed.Libraries);
    }

    [Fact]
    public void A_cpp_symbol_of_an_unknown_apple_family_is_assumed_from_it()
    {
        using var tmp = new TempDir();
        const string bluetooth = "__ZN17IOBluetoothDevice10gMetaClassE";
        var r = AuditSpec(tmp.Path, Spec("com.example.Bt", [bluetooth, IOServiceStart], Libs(IOKit, "com.apple.iokit.IOBluetoothFamily")));

        Assert.Equal("LLLLLLL", Row(r, Intel));
        var assumed = r.Link!.For(MacOSRelease.Sonoma, KextArchitecture.X86_64).Single().Assumed.Single();
        Assert.Equal(bluetooth, assumed.Symbol);
        Assert.Equal<string>(["com.apple.iokit.IOBluetoothFamily"], assumed.Libraries);
        Assert.Null(r.Link.Libraries.Single(l => l.BundleId == "com.apple.iokit.IOBluetoothFamily").Used);
    }

    [Fact]
    public void A_family_class_without_its_family_declared_is_unresolved()
    {
        using var tmp = new TempDir();
        var r = AuditSpec(tmp.Path, Spec("com.example.Hid", [HidDeviceStart, IOServiceStart], Libs(IOKit)));

        var reason = r.VerdictFor(MacOSRelease.Catalina, Intel)!.Reasons.First();
        Assert.Equal("unresolved-symbols", reason.Key);
        Assert.Equal<string>([HidDeviceStart], reason.Symbols);
        Assert.Equal<string>([IOHIDFamily], reason.Libraries);
    }

    [Fact]
    public void A_folder_tree_is_searched_and_each_kext_reported_once()
    {
        using var tmp = new TempDir();
        var sub = Directory.CreateDirectory(tmp.Combine("App.app", "Contents", "Library", "Extensions")).FullName;
        KextBundleWriter.Write(tmp.Path, Spec("com.example.A", ["_IOLog"], Libs(IOKit)));
        KextBundleWriter.Write(sub, Spec("com.example.B", ["_kauth_listen_scope"], Libs(Bsd)));

        var reports = new KextAuditor(Catalog).AuditPath(tmp.Path);
        Assert.Equal<string?>(["com.example.A", "com.example.B"], reports.Select(r => r.BundleId).Order(StringComparer.Ordinal));
        Assert.False(reports.Single(r => r.BundleId == "com.example.A").IsRefusedSomewhere);
        Assert.True(reports.Single(r => r.BundleId == "com.example.B").IsRefusedSomewhere);
    }

    [Fact]
    public void A_missing_path_throws_the_bundle_exception()
    {
        Assert.Throws<KextBundleException>(() => new KextAuditor(Catalog).AuditPath("/nonexistent/kextrust/path"));
    }

    [Fact]
    public void Auditing_many_in_parallel_gives_the_sequential_reports_in_input_order()
    {
        using var tmp = new TempDir();
        var specs = Enumerable.Range(0, 24).Select(i => Spec($"com.example.P{i:D2}",
            i % 3 == 0 ? ["_kauth_listen_scope"] : i % 3 == 1 ? ["_sock_socket", "_IOLog"] : ["_IOLog", "_missing"],
            Libs(Bsd, IOKit), i % 2 == 0 ? Universal : [MachOTargetArchitecture.X86_64])).ToArray();
        var bundles = specs.Select(s => KextBundle.Open(KextBundleWriter.Write(tmp.Path, s))).ToArray();

        var parallel = new KextAuditor(Catalog).AuditMany(bundles);
        var sequential = bundles.Select(new KextAuditor(Catalog).Audit).ToArray();
        Assert.Equal(sequential.Select(r => r.BundleId), parallel.Select(r => r.BundleId));
        for (var i = 0; i < bundles.Length; i++)
        {
            Assert.Equal(Row(sequential[i], Intel) + Row(sequential[i], AS), Row(parallel[i], Intel) + Row(parallel[i], AS));
            Assert.Equal(
                sequential[i].Verdicts.SelectMany(v => v.Reasons).Select(x => x.Key),
                parallel[i].Verdicts.SelectMany(v => v.Reasons).Select(x => x.Key));
        }
    }
}

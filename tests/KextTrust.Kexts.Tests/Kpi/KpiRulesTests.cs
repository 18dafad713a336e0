using KextTrust.Kexts.Kpi;

namespace KextTrust.Kexts.Tests.Kpi;

public sealed class KpiRulesTests
{
    private static readonly Dictionary<string, string> NoLibraries = new(StringComparer.Ordinal);

    private static Dictionary<string, string> Libs(params string[] ids) =>
        ids.ToDictionary(id => id, _ => "1.0", StringComparer.Ordinal);

    private static KpiEvaluation Eval(string[] symbols, Dictionary<string, string>? libraries = null, KpiEnforcementContext? ctx = null) =>
        KpiRuleEvaluator.Evaluate(symbols, libraries ?? NoLibraries, ctx);

    private static string[] Ids(KpiEvaluation e) => e.Findings.Select(f => f.Rule.Id).ToArray();

    [Fact]
    public void The_nine_groups_of_the_seed_with_stable_ids()
    {
        Assert.Equal(
            ["KPI-KAUTH", "KPI-SOCKET", "KPI-NETFILTER", "KPI-IOHID", "KPI-IOUSB", "KPI-USB-NETWORKING", "KPI-USB-SERIAL",
             "KPI-USB-VENDOR-IPC", "KPI-PCI-NETWORKING"],
            KpiRules.All.Select(r => r.Id));
        Assert.Equal(KpiRules.All.Length, KpiRules.All.Select(r => r.Id).Distinct().Count());
    }

    [Theory]
    [InlineData("KPI-KAUTH", "10.15", "11.0", "com.apple.developer.endpoint-security.client")]
    [InlineData("KPI-SOCKET", "10.15", null, "com.apple.developer.networking.networkextension")]
    [InlineData("KPI-NETFILTER", "10.15", "11.0", "com.apple.developer.networking.networkextension")]
    [InlineData("KPI-IOHID", "10.15", "11.0", "com.apple.developer.driverkit.transport.hid")]
    [InlineData("KPI-IOUSB", "10.11", "11.0", "com.apple.developer.driverkit.transport.usb")]
    [InlineData("KPI-USB-NETWORKING", "10.15", "11.0", "com.apple.developer.driverkit.family.networking")]
    [InlineData("KPI-USB-SERIAL", "10.15", "11.0", "com.apple.developer.driverkit.family.serial")]
    [InlineData("KPI-USB-VENDOR-IPC", "10.15", "11.0", "com.apple.developer.driverkit.transport.usb")]
    [InlineData("KPI-PCI-NETWORKING", "10.15", null, "com.apple.developer.driverkit.transport.pci")]
    public void Dates_and_entitlements_follow_the_seed(string id, string deprecated, string? unsupported, string entitlement)
    {
        var rule = KpiRules.Find(id)!;
        Assert.Equal(MacOSVersion.Parse(deprecated), rule.DeprecatedSince);
        Assert.Equal(unsupported is null ? null : MacOSVersion.Parse(unsupported), rule.UnsupportedSince);
        Assert.Contains(entitlement, rule.ReplacementEntitlements);
        Assert.False(string.IsNullOrWhiteSpace(rule.Replacement));
    }

    [Fact]
    public void Socket_and_netfilter_lists_are_exactly_the_seeds()
    {
        var socket = Assert.IsType<KpiSymbolTrigger>(KpiRules.Socket.Trigger).Symbols;
        Assert.Equal(21, socket.Length);
        Assert.Equal("_sock_accept", socket[0]);
        Assert.Equal("_sock_socket", socket[^1]);
        var filter = Assert.IsType<KpiSymbolTrigger>(KpiRules.NetworkFilter.Trigger).Symbols;
        Assert.Equal(18, filter.Length);
        Assert.Empty(socket.Intersect(filter));
    }

    [Fact]
    public void Kauth_listener_is_unsupported_from_11()
    {
        var e = Eval(["_kauth_listen_scope", "_IOLog"]);
        var f = Assert.Single(e.Findings);
        Assert.Equal("KPI-KAUTH", f.Rule.Id);
        Assert.Equal(["_kauth_listen_scope"], f.TriggeringSymbols.ToArray());
        Assert.Equal(KpiSupportStatus.Deprecated, e.On(MacOSRelease.Catalina).Status);
        Assert.False(e.On(MacOSRelease.Catalina).BlocksLoad);
        foreach (var r in MacOSRelease.All.Skip(1))
        {
            Assert.Equal(KpiSupportStatus.Unsupported, e.On(r).Status);
            Assert.True(e.On(r).BlocksLoad);
        }
    }

    [Fact]
    public void Kauth_credential_calls_are_not_the_listener_kpi()
    {
        // macFUSE-style imports: credentials, not scope listeners.
        var e = Eval(["_kauth_cred_getuid", "_kauth_cred_unref", "_kauth_cred_get", "_vfs_context_ucred"]);
        Assert.Empty(e.Findings);
        Assert.All(e.PerRelease, v => Assert.Equal(KpiSupportStatus.Supported, v.Status));
    }

    [Fact]
    public void Socket_kpis_are_deprecated_never_unsupported()
    {
        var e = Eval(["_sock_socket", "_sock_connect", "_sock_send"]);
        var f = Assert.Single(e.Findings);
        Assert.Equal("KPI-SOCKET", f.Rule.Id);
        Assert.Equal(["_sock_connect", "_sock_send", "_sock_socket"], f.TriggeringSymbols.ToArray());
        Assert.All(e.PerRelease, v =>
        {
            Assert.Equal(KpiSupportStatus.Deprecated, v.Status);
            Assert.False(v.BlocksLoad);
        });
    }

    [Fact]
    public void Socket_names_outside_the_seeds_list_do_not_trigger()
    {
        Assert.Empty(Eval(["_sock_settclassopt", "_sock_gettclassopt", "_sock_catchevents"]).Findings);
    }

    [Fact]
    public void Network_filters_are_unsupported_and_socket_use_is_reported_separately()
    {
        var e = Eval(["_sflt_register", "_sock_inject_data_in", "_sock_socket"]);
        Assert.Equal(["KPI-SOCKET", "KPI-NETFILTER"], Ids(e));
        Assert.Equal(["_sflt_register", "_sock_inject_data_in"], e.Find("KPI-NETFILTER")!.TriggeringSymbols.ToArray());
        Assert.Equal(KpiSupportStatus.Unsupported, e.On(MacOSRelease.BigSur).Status);
        Assert.Equal(
            [KpiSupportStatus.Deprecated, KpiSupportStatus.Unsupported],
            e.On(MacOSRelease.BigSur).Findings.Select(s => s.Status));
    }

    [Fact]
    public void Interface_filters_are_not_on_the_seeds_network_filter_list()
    {
        Assert.Empty(Eval(["_iflt_attach", "_iflt_detach"]).Findings);
    }

    [Fact]
    public void IOHIDFamily_by_library_or_by_class()
    {
        var byLib = Eval(["_IOLog"], Libs("com.apple.iokit.IOHIDFamily", "com.apple.kpi.iokit"));
        Assert.Equal(["KPI-IOHID"], Ids(byLib));
        Assert.Equal(["com.apple.iokit.IOHIDFamily"], byLib.Findings[0].TriggeringLibraries.ToArray());

        var byClass = Eval(["__ZN17IOHIDEventService5startEP9IOService", "__ZTV11IOHIDDevice"]);
        Assert.Equal(["KPI-IOHID"], Ids(byClass));
        Assert.Equal(["__ZN17IOHIDEventService5startEP9IOService", "__ZTV11IOHIDDevice"], byClass.Findings[0].TriggeringSymbols.ToArray());
        Assert.True(byClass.On(MacOSRelease.Sonoma).BlocksLoad);
    }

    [Fact]
    public void A_class_name_that_merely_contains_a_family_class_does_not_match()
    {
        // IOHIDDeviceShim, MyIOHIDDevice: other identifiers; the string "IOHIDDevice" inside a method name neither.
        Assert.Empty(Eval(["__ZN15IOHIDDeviceShim5startEP9IOService", "__ZN13MyIOHIDDevice4freeEv", "__ZN9IOService17matchIOHIDDevicesEv"]).Findings);
    }

    [Fact]
    public void IOUSBFamily_is_deprecated_since_10_11()
    {
        var e = Eval(["__ZN11IOUSBDevice4openEP9IOServicejPv"]);
        Assert.Equal(["KPI-IOUSB"], Ids(e));
        Assert.Equal(KpiSupportStatus.Deprecated, KpiRules.IOUSBFamily.StatusAt(MacOSVersion.Parse("10.13")));
        Assert.Equal(KpiSupportStatus.Supported, KpiRules.IOUSBFamily.StatusAt(MacOSVersion.Parse("10.10")));
        Assert.Equal(KpiSupportStatus.Unsupported, e.On(MacOSRelease.BigSur).Status);
    }

    [Fact]
    public void IOUSBHost_classes_and_library_are_not_IOUSBFamily()
    {
        var e = Eval(
            ["__ZN15IOUSBHostDevice4openEP9IOServicejPv", "__ZN18IOUSBHostInterface4openEP9IOServicejPv", "__ZTV13IOUSBHostPipe"],
            Libs("com.apple.iokit.IOUSBHostFamily"));
        Assert.Empty(e.Findings); // a plain USB driver (no networking, serial or user client) is fine
        Assert.All(e.PerRelease, v => Assert.False(v.BlocksLoad));
    }

    [Fact]
    public void Usb_networking_needs_both()
    {
        var usbOnly = Eval(["__ZN15IOUSBHostDevice4openEP9IOServicejPv"], Libs("com.apple.iokit.IOUSBHostFamily"));
        Assert.DoesNotContain("KPI-USB-NETWORKING", Ids(usbOnly));
        var netOnly = Eval(["__ZN20IOEthernetController4initEP12OSDictionary"], Libs("com.apple.iokit.IONetworkingFamily"));
        Assert.Empty(netOnly.Findings);

        var both = Eval(
            ["__ZN20IOEthernetController4initEP12OSDictionary", "__ZN15IOUSBHostDevice4openEP9IOServicejPv"],
            Libs("com.apple.iokit.IONetworkingFamily", "com.apple.iokit.IOUSBHostFamily"));
        var f = Assert.Single(both.Findings);
        Assert.Equal("KPI-USB-NETWORKING", f.Rule.Id);
        Assert.Equal(["com.apple.iokit.IONetworkingFamily", "com.apple.iokit.IOUSBHostFamily"], f.TriggeringLibraries.ToArray());
        Assert.Equal(2, f.TriggeringSymbols.Length);
        Assert.True(both.On(MacOSRelease.Sequoia15_4).BlocksLoad);
        Assert.Contains(KpiRules.NetworkingFamilyEntitlement, f.Rule.ReplacementEntitlements);
        Assert.Contains(KpiRules.UsbTransportEntitlement, f.Rule.ReplacementEntitlements);
    }

    [Fact]
    public void Usb_serial_needs_both()
    {
        Assert.Empty(Eval(["__ZN23IORS232SerialStreamSync4initEP12OSDictionaryPv"]).Findings);
        var e = Eval(["__ZN23IORS232SerialStreamSync4initEP12OSDictionaryPv"], Libs("com.apple.iokit.IOUSBHostFamily"));
        Assert.Equal(["KPI-USB-SERIAL"], Ids(e));
        var legacy = Eval([], Libs("com.apple.iokit.IOSerialFamily", "com.apple.iokit.IOUSBFamily"));
        Assert.Equal(["KPI-IOUSB", "KPI-USB-SERIAL"], Ids(legacy));
    }

    [Fact]
    public void Usb_vendor_ipc_is_usb_plus_user_client_without_a_family()
    {
        string[] ipc = ["__ZN12IOUserClient4initEv", "__ZTV12IOUserClient", "__ZN15IOUSBHostDevice4openEP9IOServicejPv"];
        var e = Eval(ipc, Libs("com.apple.iokit.IOUSBHostFamily"));
        var f = Assert.Single(e.Findings);
        Assert.Equal("KPI-USB-VENDOR-IPC", f.Rule.Id);
        Assert.Equal(["__ZN12IOUserClient4initEv", "__ZN15IOUSBHostDevice4openEP9IOServicejPv", "__ZTV12IOUserClient"], f.TriggeringSymbols.ToArray());
        Assert.True(e.On(MacOSRelease.BigSur).BlocksLoad);

        // Near misses: no user client; no USB; tied into a family (audio) by library or by class.
        Assert.Empty(Eval(ipc[2..], Libs("com.apple.iokit.IOUSBHostFamily")).Findings);
        Assert.Empty(Eval(ipc[..2]).Findings);
        Assert.Empty(Eval(ipc, Libs("com.apple.iokit.IOUSBHostFamily", "com.apple.iokit.IOAudioFamily")).Findings);
        Assert.Empty(Eval([.. ipc, "__ZN13IOAudioDevice5startEP9IOService"]).Findings);
    }

    [Fact]
    public void Pci_networking_is_deprecated_not_unsupported()
    {
        var e = Eval(["__ZN11IOPCIDevice17configRead32Ej", "__ZN20IOEthernetController4initEP12OSDictionary"]);
        var f = Assert.Single(e.Findings);
        Assert.Equal("KPI-PCI-NETWORKING", f.Rule.Id);
        Assert.Null(f.Rule.UnsupportedSince);
        Assert.All(e.PerRelease, v =>
        {
            Assert.Equal(KpiSupportStatus.Deprecated, v.Status);
            Assert.False(v.BlocksLoad);
        });
        Assert.Empty(Eval(["__ZN11IOPCIDevice17configRead32Ej"], Libs("com.apple.iokit.IOPCIFamily")).Findings);
    }

    [Fact]
    public void Footnote_exemptions_are_data_and_stop_blocking()
    {
        Assert.Equal(["KPI-EXEMPT-SIP-DISABLED", "KPI-EXEMPT-MDM-APPROVED"], KpiRules.EnforcementExemptions.Select(x => x.Id));
        string[] kauth = ["_kauth_listen_scope"];
        foreach (var ctx in new[] { new KpiEnforcementContext(true, false), new KpiEnforcementContext(false, true) })
        {
            var e = Eval(kauth, ctx: ctx);
            Assert.True(ctx.IsExempt);
            Assert.Equal(ctx, e.Enforcement);
            Assert.Equal(KpiSupportStatus.Unsupported, e.On(MacOSRelease.BigSur).Status); // still a fact
            Assert.All(e.PerRelease, v => Assert.False(v.BlocksLoad));
        }
        Assert.True(Eval(kauth, ctx: KpiEnforcementContext.Enforced).On(MacOSRelease.BigSur).BlocksLoad);
        Assert.True(Eval(kauth).On(MacOSRelease.BigSur).BlocksLoad);
    }

    [Fact]
    public void Evaluation_results_are_deterministic_values()
    {
        string[] s = ["_sock_socket", "_kauth_listen_scope", "__ZTV11IOUSBDevice"];
        var a = Eval(s);
        var b = Eval([.. s.Reverse()]);
        Assert.Equal(Ids(a), Ids(b));
        Assert.Equal(a.Findings.Select(f => string.Join(",", f.TriggeringSymbols)), b.Findings.Select(f => string.Join(",", f.TriggeringSymbols)));
    }

    [Fact]
    public void Family_classes_are_not_exported_by_the_kernel()
    {
        // The family class lists must name family kexts' classes, not xnu's: none is in any KPI set.
        var catalog = KpiCatalog.Load();
        var families = new[] { KpiFamilies.IOHID, KpiFamilies.IOUSB, KpiFamilies.IOUSBHost, KpiFamilies.IONetworking, KpiFamilies.IOSerial, KpiFamilies.IOPCI, KpiFamilies.IOStorage, KpiFamilies.IOAudio, KpiFamilies.IOSCSI };
        foreach (var release in MacOSRelease.All)
        {
            foreach (var symbol in catalog.ExportedSymbols(release, KextArchitecture.X86_64))
            {
                foreach (var id in ItaniumIdentifiers.Extract(symbol))
                {
                    Assert.DoesNotContain(families, f => f.MatchesIdentifier(id));
                }
            }
        }
        Assert.Contains(catalog.ExportedSymbols(MacOSRelease.BigSur, KextArchitecture.X86_64), s => ItaniumIdentifiers.Extract(s).Contains("IOUserClient"));
    }
}

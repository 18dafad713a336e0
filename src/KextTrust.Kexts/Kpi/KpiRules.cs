using System.Collections.Immutable;

namespace KextTrust.Kexts.Kpi;

/// <summary>
/// Apple's KPI groups (Apple, "Deprecated Kernel Extensions and System Extension Alternatives",
/// shared/seeds/000_8994eba2ce400f9b.txt) as immutable rules, and its footnote's enforcement exemptions.
/// </summary>
internal static class KpiRules
{
    /// <summary>EndpointSecurity client entitlement.</summary>
    public const string EndpointSecurityEntitlement = "com.apple.developer.endpoint-security.client";

    /// <summary>NetworkExtension entitlement.</summary>
    public const string NetworkExtensionEntitlement = "com.apple.developer.networking.networkextension";

    /// <summary>HIDDriverKit transport entitlement.</summary>
    public const string HidTransportEntitlement = "com.apple.developer.driverkit.transport.hid";

    /// <summary>USBDriverKit transport entitlement.</summary>
    public const string UsbTransportEntitlement = "com.apple.developer.driverkit.transport.usb";

    /// <summary>PCIDriverKit transport entitlement.</summary>
    public const string PciTransportEntitlement = "com.apple.developer.driverkit.transport.pci";

    /// <summary>NetworkingDriverKit family entitlement.</summary>
    public const string NetworkingFamilyEntitlement = "com.apple.developer.driverkit.family.networking";

    /// <summary>SerialDriverKit / USBSerialDriverKit family entitlement.</summary>
    public const string SerialFamilyEntitlement = "com.apple.developer.driverkit.family.serial";

    private static readonly MacOSVersion V10_11 = new(10, 11);
    private static readonly MacOSVersion V10_15 = new(10, 15);
    private static readonly MacOSVersion V11 = new(11, 0);

    private static ImmutableArray<string> Symbols(params string[] cNames) => [.. cNames.Select(n => "_" + n)];

    private static KpiFamilyTrigger Uses(KpiFamily family) => new(family);

    /// <summary>Any USB KPI: IOUSBHostFamily or IOUSBFamily.</summary>
    public static KpiTrigger AnyUsbKpi { get; } = new KpiAnyOfTrigger([Uses(KpiFamilies.IOUSBHost), Uses(KpiFamilies.IOUSB)]);

    /// <summary>KAUTH: the scope-listener KPI only (kauth_cred_* stays usable: macFUSE loads on 11+).</summary>
    public static KpiRule Kauth { get; } = new(
        "KPI-KAUTH", "KAUTH", V10_15, V11, "EndpointSecurity", [EndpointSecurityEntitlement],
        new KpiSymbolTrigger(Symbols("kauth_listen_scope", "kauth_unlisten_scope")),
        "Apple's list is the scope-listener KPI (kauth_listen_scope, kauth_unlisten_scope); kauth_cred_* and other kauth_* are not part of it.");

    /// <summary>Socket KPIs: deprecated, still loadable on 11+.</summary>
    public static KpiRule Socket { get; } = new(
        "KPI-SOCKET", "Socket", V10_15, null, "NetworkExtension", [NetworkExtensionEntitlement],
        new KpiSymbolTrigger(Symbols(
            "sock_accept", "sock_bind", "sock_close", "sock_connect", "sock_getpeername", "sock_getsockname",
            "sock_getsockopt", "sock_gettype", "sock_ioctl", "sock_isconnected", "sock_isnonblocking", "sock_listen",
            "sock_receive", "sock_receivembuf", "sock_release", "sock_retain", "sock_send", "sock_sendmbuf",
            "sock_setsockopt", "sock_shutdown", "sock_socket")),
        "\"continue to be deprecated in macOS Big Sur\": no unsupported release. Exactly the 21 names Apple lists.");

    /// <summary>Network filter KPIs (IP and socket filters).</summary>
    public static KpiRule NetworkFilter { get; } = new(
        "KPI-NETFILTER", "Network filter", V10_15, V11, "NetworkExtension", [NetworkExtensionEntitlement],
        new KpiSymbolTrigger(Symbols(
            "ipf_addv4", "ipf_addv6", "ipf_inject_input", "ipf_inject_output", "ipf_remove", "sflt_attach",
            "sflt_detach", "sflt_register", "sflt_unregister", "sock_inject_data_in", "sock_inject_data_out",
            "sock_setpriv", "sockopt_copyin", "sockopt_copyout", "sockopt_direction", "sockopt_level", "sockopt_name",
            "sockopt_valsize")),
        "Exactly the 18 names Apple lists (interface filters iflt_* are not on it).");

    /// <summary>IOHIDFamily.</summary>
    public static KpiRule IOHIDFamily { get; } = new(
        "KPI-IOHID", "IOHIDFamily", V10_15, V11, "HIDDriverKit", [HidTransportEntitlement],
        Uses(KpiFamilies.IOHID),
        "\"All KPIs in IOHIDFamily\": the com.apple.iokit.IOHIDFamily library or an imported symbol of one of its classes.");

    /// <summary>Legacy IOUSBFamily.</summary>
    public static KpiRule IOUSBFamily { get; } = new(
        "KPI-IOUSB", "IOUSBFamily", V10_11, V11, "IOUSBHostFamily or USBDriverKit", [UsbTransportEntitlement],
        Uses(KpiFamilies.IOUSB),
        "\"All KPIs in IOUSBFamily\"; IOUSBHostFamily (IOUSBHost* classes) is the replacement, not a trigger. The entitlement is USBDriverKit's; moving to IOUSBHostFamily needs none.");

    /// <summary>USB networking: IONetworkingFamily together with any USB KPI.</summary>
    public static KpiRule UsbNetworking { get; } = new(
        "KPI-USB-NETWORKING", "USB networking", V10_15, V11, "NetworkingDriverKit and USBDriverKit",
        [NetworkingFamilyEntitlement, UsbTransportEntitlement],
        new KpiAllOfTrigger([Uses(KpiFamilies.IONetworking), AnyUsbKpi]),
        "The combination only: a USB kext without IONetworkingFamily, or a networking kext without USB, is not caught here.");

    /// <summary>USB serial: IOSerialFamily together with any USB KPI.</summary>
    public static KpiRule UsbSerial { get; } = new(
        "KPI-USB-SERIAL", "USB serial", V10_15, V11, "SerialDriverKit or USBSerialDriverKit",
        [SerialFamilyEntitlement, UsbTransportEntitlement],
        new KpiAllOfTrigger([Uses(KpiFamilies.IOSerial), AnyUsbKpi]),
        "The combination only.");

    /// <summary>USB vendor-specific IPC: USB KPI + IOUserClient, not tied into an IO family.</summary>
    public static KpiRule UsbVendorIpc { get; } = new(
        "KPI-USB-VENDOR-IPC", "USB vendor-specific IPC", V10_15, V11, "USBDriverKit or the IOUSBHost framework",
        [UsbTransportEntitlement],
        new KpiAllOfTrigger([
            AnyUsbKpi,
            Uses(KpiFamilies.IOUserClient),
            new KpiNoneOfTrigger([.. KpiFamilies.IOFamilySubsystem.Select(f => (KpiTrigger)Uses(f))]),
        ]),
        "USB KPI and IOUserClient (or a subclass: its imported symbols) and none of the IO families of KpiFamilies.IOFamilySubsystem, by library or class.");

    /// <summary>PCI networking: IONetworkingFamily together with IOPCIFamily; deprecated, not refused.</summary>
    public static KpiRule PciNetworking { get; } = new(
        "KPI-PCI-NETWORKING", "PCI networking", V10_15, null, "PCIDriverKit and NetworkingDriverKit",
        [PciTransportEntitlement, NetworkingFamilyEntitlement],
        new KpiAllOfTrigger([Uses(KpiFamilies.IONetworking), Uses(KpiFamilies.IOPCI)]),
        "Apple's heading says \"Unsupported: macOS Big Sur 11.0\" but its text says the combination \"is deprecated\" " +
        "(every other group's text says \"unsupported\"), and PCI Ethernet kexts still load on 11+ with the legacy system " +
        "extension alert: modelled as deprecated since 10.15, never unsupported (warn, don't refuse).");

    /// <summary>All rules, in Apple's order.</summary>
    public static ImmutableArray<KpiRule> All { get; } =
        [Kauth, Socket, NetworkFilter, IOHIDFamily, IOUSBFamily, UsbNetworking, UsbSerial, UsbVendorIpc, PciNetworking];

    /// <summary>Apple's deprecation footnote: "Kernel extension deprecation policies are not enforced when SIP is disabled or if a kernel extension is approved through a MDM profile."</summary>
    public static ImmutableArray<KpiEnforcementExemption> EnforcementExemptions { get; } =
    [
        new("KPI-EXEMPT-SIP-DISABLED", "Kernel extension deprecation policies are not enforced when SIP is disabled."),
        new("KPI-EXEMPT-MDM-APPROVED", "Kernel extension deprecation policies are not enforced if a kernel extension is approved through a MDM profile."),
    ];

    /// <summary>The rule with that id, or null.</summary>
    public static KpiRule? Find(string id) => All.FirstOrDefault(r => r.Id == id);
}

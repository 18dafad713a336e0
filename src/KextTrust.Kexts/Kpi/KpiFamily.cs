using System.Collections.Immutable;

namespace KextTrust.Kexts.Kpi;

/// <summary>
/// A group of kernel APIs recognised in a kext by its declared libraries (<c>OSBundleLibraries</c> ids) or by
/// imported C++ symbols naming one of its classes (whole identifiers, see <see cref="ItaniumIdentifiers"/>).
/// </summary>
/// <param name="Id">Stable id, e.g. <c>IOHIDFamily</c>.</param>
/// <param name="LibraryIds">Bundle ids whose presence in OSBundleLibraries counts as use (exact, case-sensitive).</param>
/// <param name="ClassNames">C++ class names whose appearance as an identifier of an imported symbol counts as use.</param>
/// <param name="ClassPrefixes">Identifier prefixes that count as use (e.g. <c>IOUSBHost</c> for every IOUSBHostFamily class).</param>
internal sealed record KpiFamily(
    string Id,
    ImmutableArray<string> LibraryIds,
    ImmutableArray<string> ClassNames,
    ImmutableArray<string> ClassPrefixes)
{
    /// <summary>True when the identifier names one of the family's classes.</summary>
    public bool MatchesIdentifier(string identifier)
    {
        ArgumentNullException.ThrowIfNull(identifier);
        if (ClassNames.Contains(identifier, StringComparer.Ordinal))
        {
            return true;
        }
        foreach (var p in ClassPrefixes)
        {
            if (identifier.StartsWith(p, StringComparison.Ordinal))
            {
                return true;
            }
        }
        return false;
    }
}

/// <summary>
/// The families Apple's rules name. Class lists are the kernel-side C++ classes of each family's public
/// Kernel.framework headers that a third-party kext would import or subclass; none of them is exported by xnu
/// itself (checked against the catalog's export files), so an identifier match means the family kext is used.
/// </summary>
internal static class KpiFamilies
{
    private static ImmutableArray<string> A(params string[] items) => [.. items];

    /// <summary>IOHIDFamily (<c>IOKit/hid</c>, legacy <c>IOKit/hidsystem</c> classes).</summary>
    public static KpiFamily IOHID { get; } = new(
        "IOHIDFamily",
        A("com.apple.iokit.IOHIDFamily"),
        A("IOHIDDevice", "IOHIDElement", "IOHIDEventService", "IOHIDInterface", "IOHIDEventDriver", "IOHIDEvent",
          "IOHIDSystem", "IOHIDevice", "IOHIKeyboard", "IOHIPointing", "IOHITablet", "IOHITabletPointing",
          "IOHIDKeyboard", "IOHIDPointing", "IOHIDConsumer", "IOHIDLibUserClient"),
        []);

    /// <summary>Legacy IOUSBFamily (not IOUSBHostFamily: <c>IOUSBHost…</c> classes do not match).</summary>
    public static KpiFamily IOUSB { get; } = new(
        "IOUSBFamily",
        A("com.apple.iokit.IOUSBFamily"),
        A("IOUSBDevice", "IOUSBInterface", "IOUSBPipe", "IOUSBController", "IOUSBControllerV2", "IOUSBControllerV3",
          "IOUSBNub", "IOUSBHubDevice", "IOUSBRootHubDevice", "IOUSBCompositeDriver", "IOUSBUserClientInit"),
        []);

    /// <summary>IOUSBHostFamily (every class is named <c>IOUSBHost…</c>).</summary>
    public static KpiFamily IOUSBHost { get; } = new(
        "IOUSBHostFamily",
        A("com.apple.iokit.IOUSBHostFamily"),
        [],
        A("IOUSBHost"));

    /// <summary>IONetworkingFamily.</summary>
    public static KpiFamily IONetworking { get; } = new(
        "IONetworkingFamily",
        A("com.apple.iokit.IONetworkingFamily"),
        A("IONetworkController", "IOEthernetController", "IONetworkInterface", "IOEthernetInterface", "IONetworkData",
          "IONetworkMedium", "IOOutputQueue", "IOBasicOutputQueue", "IOGatedOutputQueue", "IOPacketQueue",
          "IOKernelDebugger", "IONetworkStack", "IONetworkUserClient", "IOMbufMemoryCursor",
          "IOMbufNaturalMemoryCursor", "IOMbufBigMemoryCursor", "IOMbufLittleMemoryCursor"),
        []);

    /// <summary>IOSerialFamily.</summary>
    public static KpiFamily IOSerial { get; } = new(
        "IOSerialFamily",
        A("com.apple.iokit.IOSerialFamily"),
        A("IOSerialDriverSync", "IOSerialStreamSync", "IORS232SerialStreamSync", "IOModemSerialStreamSync",
          "IOSerialSessionSync", "IOSerialBSDClient"),
        []);

    /// <summary>IOPCIFamily.</summary>
    public static KpiFamily IOPCI { get; } = new(
        "IOPCIFamily",
        A("com.apple.iokit.IOPCIFamily"),
        A("IOPCIDevice", "IOPCIBridge", "IOPCI2PCIBridge", "IOPCIHostBridge", "IOAGPDevice", "IOPCIEventSource"),
        []);

    /// <summary>IOStorageFamily (and the optical storage families).</summary>
    public static KpiFamily IOStorage { get; } = new(
        "IOStorageFamily",
        A("com.apple.iokit.IOStorageFamily", "com.apple.iokit.IOCDStorageFamily", "com.apple.iokit.IODVDStorageFamily",
          "com.apple.iokit.IOBDStorageFamily"),
        A("IOStorage", "IOMedia", "IOBlockStorageDevice", "IOBlockStorageDriver", "IOPartitionScheme", "IOFilterScheme"),
        []);

    /// <summary>IOAudioFamily.</summary>
    public static KpiFamily IOAudio { get; } = new(
        "IOAudioFamily",
        A("com.apple.iokit.IOAudioFamily"),
        A("IOAudioDevice", "IOAudioEngine", "IOAudioStream", "IOAudioControl", "IOAudioLevelControl",
          "IOAudioToggleControl", "IOAudioSelectorControl"),
        []);

    /// <summary>IOSCSIArchitectureModelFamily.</summary>
    public static KpiFamily IOSCSI { get; } = new(
        "IOSCSIArchitectureModelFamily",
        A("com.apple.iokit.IOSCSIArchitectureModelFamily"),
        A("IOSCSIProtocolInterface", "IOSCSIProtocolServices", "IOSCSIPrimaryCommandsDevice",
          "IOSCSIBlockCommandsDevice", "IOSCSIPeripheralDeviceNub", "IOSCSIPeripheralDeviceType00"),
        []);

    /// <summary>Other IOKit families recognised by library id only (Bluetooth, Wi-Fi, graphics, AVB, SATA, FireWire, Skywalk, streams).</summary>
    public static KpiFamily OtherIOFamilies { get; } = new(
        "OtherIOFamilies",
        A("com.apple.iokit.IOBluetoothFamily", "com.apple.iokit.IO80211Family", "com.apple.iokit.IOGraphicsFamily",
          "com.apple.iokit.IOAVBFamily", "com.apple.iokit.IOAHCIFamily", "com.apple.iokit.IOFireWireFamily",
          "com.apple.iokit.IOSkywalkFamily", "com.apple.iokit.IOStreamFamily"),
        [],
        []);

    /// <summary>
    /// IOUserClient and subclasses: part of xnu (com.apple.kpi.iokit), so recognised by imported symbols only
    /// (<c>__ZN12IOUserClient…</c>, <c>__ZTV12IOUserClient</c>, its MetaClass).
    /// </summary>
    public static KpiFamily IOUserClient { get; } = new("IOUserClient", [], A("IOUserClient"), []);

    /// <summary>The "IO Family subsystem" a USB kext can tie into (for the vendor-specific IPC rule).</summary>
    public static ImmutableArray<KpiFamily> IOFamilySubsystem { get; } =
        [IOHID, IONetworking, IOSerial, IOStorage, IOAudio, IOSCSI, OtherIOFamilies];
}

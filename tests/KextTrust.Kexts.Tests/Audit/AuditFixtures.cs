using KextTrust.Formats.MachO;
using KextTrust.Kexts.Audit;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;

namespace KextTrust.Kexts.Tests.Audit;

/// <summary>Kext fixtures written with <see cref="KextBundleWriter"/>, and verdict-row helpers.</summary>
internal static class AuditFixtures
{
    public static readonly KpiCatalog Catalog = KpiCatalog.Load();

    public const string Bsd = "com.apple.kpi.bsd";
    public const string IOKit = "com.apple.kpi.iokit";
    public const string Libkern = "com.apple.kpi.libkern";
    public const string Mach = "com.apple.kpi.mach";
    public const string IOUSBHostFamily = "com.apple.iokit.IOUSBHostFamily";
    public const string IOUSBFamily = "com.apple.iokit.IOUSBFamily";
    public const string IONetworkingFamily = "com.apple.iokit.IONetworkingFamily";
    public const string IOPCIFamily = "com.apple.iokit.IOPCIFamily";
    public const string IOSerialFamily = "com.apple.iokit.IOSerialFamily";
    public const string IOHIDFamily = "com.apple.iokit.IOHIDFamily";

    // C++ symbols naming family classes (Itanium-mangled, Mach-O underscore).
    public const string IOServiceStart = "__ZN9IOService5startEPS_";
    public const string UsbHostOpen = "__ZN15IOUSBHostDevice4openEP9IOServicejPv";
    public const string LegacyUsbOpen = "__ZN11IOUSBDevice4openEP9IOServicejPv";
    public const string EthernetMeta = "__ZN20IOEthernetController10gMetaClassE"; // in IONetworkingFamily's export list
    public const string PciConfigRead = "__ZN11IOPCIDevice12configRead32Eh";
    public const string SerialMeta = "__ZN18IOSerialDriverSync10gMetaClassE";
    public const string HidDeviceStart = "__ZN11IOHIDDevice5startEP9IOService";
    public const string UserClientVtable = "__ZTV12IOUserClient";

    public static readonly MachOTargetArchitecture[] Universal = [MachOTargetArchitecture.X86_64, MachOTargetArchitecture.Arm64e];

    public static Dictionary<string, string> Libs(params string[] ids) =>
        ids.ToDictionary(id => id, id => id.StartsWith("com.apple.kpi.", StringComparison.Ordinal) ? "8.0" : "1.0", StringComparer.Ordinal);

    public static KextBundleSpec Spec(string id, IReadOnlyList<string> symbols, Dictionary<string, string> libraries, params MachOTargetArchitecture[] archs) =>
        new(id, "1.0.0")
        {
            Libraries = libraries,
            Slices = (archs.Length == 0 ? Universal : archs).Select(a => new KextSliceSpec(a, symbols)).ToArray(),
        };

    public static KextAuditReport AuditSpec(string parent, KextBundleSpec spec, KextAuditOptions? options = null) =>
        new KextAuditor(Catalog, options).Audit(KextBundle.Open(KextBundleWriter.Write(parent, spec)));

    /// <summary>One character per release (10.15 … 15.4): L loads, W loads with warning, R refused, - not applicable.</summary>
    public static string Row(KextAuditReport report, MacPlatform platform) =>
        string.Concat(MacOSRelease.All.Select(r => report.VerdictFor(r, platform)?.Verdict switch
        {
            KextLoadVerdict.Loads => 'L',
            KextLoadVerdict.LoadsWithWarning => 'W',
            KextLoadVerdict.Refused => 'R',
            KextLoadVerdict.NotApplicable => '-',
            _ => '?',
        }));

    public static string[] Codes(KextAuditReport report, MacOSRelease release, MacPlatform platform) =>
        report.VerdictFor(release, platform)!.Reasons.Select(r => r.Key).ToArray();
}

using KextTrust.Kexts.Audit;
using KextTrust.Kexts.Kpi;
using static KextTrust.Kexts.Tests.Audit.AuditFixtures;

namespace KextTrust.Kexts.Tests.Audit;

public sealed class KpiRelevanceTests
{
    private static readonly string[] Pool =
    [
        "_kauth_listen_scope", "_kauth_cred_getuid", "_sock_socket", "_sflt_register", "_IOLog", "_proc_selfpid",
        IOServiceStart, UsbHostOpen, LegacyUsbOpen, EthernetMeta, PciConfigRead, SerialMeta, HidDeviceStart, UserClientVtable,
        "__ZN17IOBluetoothDevice10gMetaClassE", "__ZN8IOMedia4readEP9IOServiceyP18IOMemoryDescriptorP19IOStorageAttributesP19IOStorageCompletion",
    ];

    private static readonly string[][] LibrarySets =
    [
        [], [IOUSBHostFamily], [IONetworkingFamily, IOUSBFamily], [IOSerialFamily, IOUSBHostFamily], [IOPCIFamily, IONetworkingFamily],
        [IOUSBHostFamily, "com.apple.iokit.IOStorageFamily"],
    ];

    [Fact]
    public void Filtering_imports_gives_exactly_the_findings_of_the_full_imports()
    {
        var relevance = new KpiRelevance(KpiRules.All);
        var random = new Random(4);
        for (var i = 0; i < 400; i++)
        {
            var symbols = Pool.Where(_ => random.Next(3) == 0).ToArray();
            var libraries = LibrarySets[random.Next(LibrarySets.Length)].ToDictionary(l => l, _ => "1.0", StringComparer.Ordinal);
            var full = KpiRuleEvaluator.Evaluate(symbols, libraries);
            var filtered = KpiRuleEvaluator.Evaluate(relevance.Filter(symbols), libraries);
            Assert.Equal(
                full.Findings.Select(f => (f.Rule.Id, string.Join(",", f.TriggeringSymbols), string.Join(",", f.TriggeringLibraries))),
                filtered.Findings.Select(f => (f.Rule.Id, string.Join(",", f.TriggeringSymbols), string.Join(",", f.TriggeringLibraries))));
        }
    }

    [Fact]
    public void Only_rule_symbols_and_family_classes_are_relevant()
    {
        var relevance = new KpiRelevance(KpiRules.All);
        Assert.True(relevance.IsRelevant("_kauth_listen_scope"));
        Assert.True(relevance.IsRelevant(UsbHostOpen));
        Assert.True(relevance.IsRelevant(UserClientVtable));
        Assert.False(relevance.IsRelevant("_kauth_cred_getuid"));
        Assert.False(relevance.IsRelevant(IOServiceStart));
        Assert.False(relevance.IsRelevant("_IOLog"));
    }
}

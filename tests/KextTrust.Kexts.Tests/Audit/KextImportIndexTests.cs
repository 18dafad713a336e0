using System.Text;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Audit;
using KextTrust.Kexts.Bundles;
using KextTrust.TestSupport;

namespace KextTrust.Kexts.Tests.Audit;

/// <summary>Looking imports up from their UTF-8 bytes finds what looking them up by string finds.</summary>
public sealed class KextImportIndexTests
{
    [Theory]
    [InlineData("_IOLog")]
    [InlineData("__ZN9IOService5startEPS_")]
    [InlineData("_sock_socket")]
    [InlineData("_caf\u00e9")]
    [InlineData("_\U0001F600_\uE000")]
    [InlineData("")]
    public void Bytes_and_string_find_the_same_facts(string symbol)
    {
        var index = new KextImportIndex(AuditFixtures.Catalog);
        var byBytes = index[Encoding.UTF8.GetBytes(symbol)];
        Assert.Equal(symbol, byBytes.Symbol);
        Assert.Same(byBytes, index[symbol]);
        Assert.Same(byBytes, index[Encoding.UTF8.GetBytes(symbol)]);

        var other = new KextImportIndex(AuditFixtures.Catalog);
        var byString = other[symbol];
        Assert.Same(byString, other[Encoding.UTF8.GetBytes(symbol)]);
        Assert.Equal(byString.IsMangled, byBytes.IsMangled);
        Assert.Equal(byString.IsRuleRelevant, byBytes.IsRuleRelevant);
        Assert.Equal(byString.Exports.ExportedSlots, byBytes.Exports.ExportedSlots);
    }

    [Fact]
    public void Ill_formed_bytes_stand_for_their_decoded_string()
    {
        var index = new KextImportIndex(AuditFixtures.Catalog);
        var lone = index[new byte[] { (byte)'_', 0x80 }];
        Assert.Equal("_\uFFFD", lone.Symbol);
        Assert.Same(lone, index[new byte[] { (byte)'_', 0xFF }]);
        Assert.Same(lone, index["_\uFFFD"]);
        Assert.Same(lone, index[Encoding.UTF8.GetBytes("_\uFFFD")]);
        Assert.NotSame(lone, index["_\uD800"]); // a lone surrogate is no decoded name
    }

    [Fact]
    public void Reading_with_an_index_gives_the_same_slices_with_shared_strings()
    {
        using var tmp = new TempDir();
        string[] imports = ["_IOLog", "_sock_socket", "__ZN9IOService5startEPS_", "_caf\u00e9"];
        var kext = KextBundleWriter.Write(tmp.Path, new KextBundleSpec("com.example.Shared", "1.0")
        {
            Slices = [new KextSliceSpec(MachOTargetArchitecture.X86_64, imports), new KextSliceSpec(MachOTargetArchitecture.Arm64e, imports)],
        });
        var exe = KextBundle.Open(kext).ExecutablePath!;
        var index = new KextImportIndex(AuditFixtures.Catalog);

        var plain = KextExecutableFacts.Read(exe);
        var indexed = KextExecutableFacts.Read(exe, index);
        Assert.Equal(plain.Slices.Length, indexed.Slices.Length);
        for (var i = 0; i < plain.Slices.Length; i++)
        {
            Assert.Equal<string>(plain.Slices[i].UndefinedSymbols, indexed.Slices[i].UndefinedSymbols);
            Assert.Equal(plain.Slices[i].UndefinedSymbols.Select(s => index[s]), index.Lookup(indexed.Slices[i]));
        }
        // Both slices (and a second read) hold the index's one string per symbol.
        var again = KextExecutableFacts.Read(exe, index);
        for (var i = 0; i < imports.Length; i++)
        {
            Assert.Same(indexed.Slices[0].UndefinedSymbols[i], indexed.Slices[1].UndefinedSymbols[i]);
            Assert.Same(indexed.Slices[0].UndefinedSymbols[i], again.Slices[0].UndefinedSymbols[i]);
        }
    }
}

public sealed class ClassMemberTests
{
    [Theory]
    [InlineData("__ZN20IOEthernetController30_RESERVEDIOEthernetController2Ev", "__ZTV20IOEthernetController", true)]
    [InlineData("__ZN15OSMetaClassBase25_RESERVEDOSMetaClassBase3Ev", "__ZTV15OSMetaClassBase", true)]
    [InlineData("__ZNK10IntelMausi16getMinPacketSizeEPj", "__ZTV10IntelMausi", false)]
    [InlineData("__ZN20IOEthernetController10gMetaClassE", "__ZTV20IOEthernetController", false)]
    [InlineData("__ZN20IOEthernetController30_RESERVEDIONetworkController2Ev", "__ZTV20IOEthernetController", false)] // another class's slot name
    [InlineData("__ZN20IOEthernetController29_RESERVEDIOEthernetControllerEv", "__ZTV20IOEthernetController", false)] // no slot number
    [InlineData("_gIOEthernetWakeOnLANFilterGroup", null, false)]
    [InlineData("__ZTV20IOEthernetController", null, false)]
    [InlineData("__ZN99Short", null, false)] // length past the end
    public void Members_name_their_class_vtable_and_pad_slots_are_recognised(string symbol, string? vtable, bool padSlot)
    {
        Assert.Equal((vtable, padSlot), KextImportIndex.ClassMember(symbol));
    }
}

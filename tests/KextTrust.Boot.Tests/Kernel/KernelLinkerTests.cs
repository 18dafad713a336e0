using KextTrust.Boot.KernelManagement;
using KextTrust.Boot.Kernel;
using KextTrust.Boot.Policy;
using KextTrust.Boot.Receipt;
using KextTrust.Boot.Tests.KernelManagement;
using KextTrust.Formats.MachO;
using KextTrust.Formats.PropertyLists;
using KextTrust.Kexts.Kpi;
using KextTrust.Kexts.Trust;

namespace KextTrust.Boot.Tests.Kernel;

public sealed class KernelLinkerTests
{
    private static readonly Guid Session = Guid.Parse("11111111-2222-3333-4444-555555555555");
    private static readonly DateTimeOffset Now = new(2025, 1, 2, 3, 4, 5, TimeSpan.Zero);

    private static KernelLoadResult Load(AuxiliaryKernelCollection auxKc, KextReceipt receipt, MacOSRelease? release = null) =>
        KernelLinker.LoadAuxKc(auxKc, receipt, KextFixtures.Catalog, release ?? MacOSRelease.Sequoia15_4, KextArchitecture.Arm64, Session, Now);

    [Fact]
    public void EveryKextLoadsAfterItsDependenciesEvenWhenTheCollectionListsThemOtherwise()
    {
        using var f = new KextFixtures();
        f.AddSigned("com.acme.a-client", ["_IOLog", "_mid_fn"], libraries: new() { ["com.apple.kpi.iokit"] = "20.0", ["com.acme.z-mid"] = "1.0" });
        f.AddSigned("com.acme.z-mid", ["_base_fn"], libraries: new() { ["com.acme.m-base"] = "1.0" }, compatible: "1.0", defines: ["_mid_fn"]);
        f.AddSigned("com.acme.m-base", ["_IOLog"], compatible: "1.0", defines: ["_base_fn"]);
        var build = Kmd.BuildAuxKc(f.Request());
        Assert.Equal(["com.acme.m-base", "com.acme.z-mid", "com.acme.a-client"], build.IncludedBundleIds);

        // A collection whose prelink info lists the client first: the kernel still loads dependencies first.
        var reversed = Reorder(f, build.AuxKc, k => k.Reverse());
        var receipt = build.Receipt with { AuxKcMeasurement = reversed.ComputeMeasurement() };
        var load = Load(reversed, receipt);
        Assert.Empty(load.NotLoaded);
        Assert.Equal(["com.acme.m-base", "com.acme.z-mid", "com.acme.a-client"], load.Loaded.Select(k => k.BundleId));
        Assert.Equal(["com.acme.z-mid"], load.Loaded[2].Dependencies.ToArray());
        Assert.All(load.Loaded, k => Assert.NotNull(k.LoadAddress));
        Assert.Equal(load.Loaded.Select(k => k.BundleId), load.LoadHistory.Select(h => h.BundleId));
        Assert.All(load.LoadHistory, h => Assert.Equal("2025-01-02 03:04:05", h.CreatedAt));
    }

    [Fact]
    public void AKextWhoseSymbolsDoNotResolveOnTheRunningReleaseDoesNotLoadAndNeitherDoItsDependents()
    {
        using var f = new KextFixtures();
        f.AddSigned("com.acme.base", ["_IOLog"], compatible: "1.0", defines: ["_base_fn"]);
        f.AddSigned("com.acme.user", ["_base_fn"], libraries: new() { ["com.acme.base"] = "1.0" });
        var build = Kmd.BuildAuxKc(f.Request());
        Assert.Equal(2, build.Receipt.Included.Length);
        // Strip the base kext's KPI library from the prelink info: its _IOLog no longer resolves.
        var broken = Rewrite(f, build.AuxKc, d => d.GetString("CFBundleIdentifier") == "com.acme.base"
            ? new PlistDictionary(d.Where(kv => kv.Key != "OSBundleLibraries"))
            : d);
        var load = Load(broken, build.Receipt with { AuxKcMeasurement = broken.ComputeMeasurement() });
        Assert.Empty(load.Loaded);
        Assert.Equal(TrustCode.UnresolvedSymbols, load.NotLoaded.Single(n => n.BundleId == "com.acme.base").Code);
        Assert.Contains("_IOLog (exported by com.apple.kpi.iokit", load.NotLoaded.Single(n => n.BundleId == "com.acme.base").Detail);
        Assert.Equal(TrustCode.DependencyNotLoaded, load.NotLoaded.Single(n => n.BundleId == "com.acme.user").Code);
        Assert.Empty(load.LoadHistory);
    }

    [Fact]
    public void AnAuxKcThatIsNotTheReceiptsLoadsNothing()
    {
        using var f = KmdBuildTests.Cast();
        var build = Kmd.BuildAuxKc(f.Request());
        f.AddSigned("com.acme.extra", ["_IOLog"]);
        var other = Kmd.BuildAuxKc(f.Request());
        var load = Load(other.AuxKc, build.Receipt);
        Assert.Empty(load.Loaded);
        Assert.All(load.NotLoaded, n => Assert.Equal(TrustCode.ReceiptMismatch, n.Code));
        var garbage = KernelLinker.LoadAuxKc(new byte[] { 1, 2, 3 }, "garbage.kc", build.Receipt, KextFixtures.Catalog, MacOSRelease.Sequoia15_4, KextArchitecture.Arm64, Session, Now);
        Assert.Equal(TrustCode.ReceiptMismatch, Assert.Single(garbage.NotLoaded).Code);
    }

    [Fact]
    public void ALibraryCycleInACollectionLoadsNeitherKext()
    {
        using var f = new KextFixtures();
        f.AddSigned("com.acme.one", ["_IOLog"], compatible: "1.0");
        f.AddSigned("com.acme.two", ["_IOLog"], compatible: "1.0");
        var build = Kmd.BuildAuxKc(f.Request());
        PlistDictionary WithLib(PlistDictionary d, string lib) => new(d.Select(kv => kv.Key == "OSBundleLibraries"
            ? new KeyValuePair<string, PlistNode>(kv.Key, new PlistDictionary(((PlistDictionary)kv.Value).Append(new(lib, new PlistString("1.0")))))
            : kv));
        var cyclic = Rewrite(f, build.AuxKc, d => d.GetString("CFBundleIdentifier") == "com.acme.one" ? WithLib(d, "com.acme.two") : WithLib(d, "com.acme.one"));
        var load = Load(cyclic, build.Receipt with { AuxKcMeasurement = cyclic.ComputeMeasurement() });
        Assert.Empty(load.Loaded);
        Assert.All(load.NotLoaded, n => Assert.Equal(TrustCode.DependencyNotLoaded, n.Code));
    }

    /// <summary>Rebuilds a collection with the same entries and rewritten prelink dictionaries (order kept).</summary>
    private static AuxiliaryKernelCollection Rewrite(KextFixtures f, AuxiliaryKernelCollection auxKc, Func<PlistDictionary, PlistDictionary> rewrite) =>
        Rebuild(f, auxKc.Kexts, rewrite);

    private static AuxiliaryKernelCollection Reorder(KextFixtures f, AuxiliaryKernelCollection auxKc, Func<IEnumerable<AuxKcKext>, IEnumerable<AuxKcKext>> order) =>
        Rebuild(f, order(auxKc.Kexts), d => d);

    private static AuxiliaryKernelCollection Rebuild(KextFixtures f, IEnumerable<AuxKcKext> kexts, Func<PlistDictionary, PlistDictionary> rewrite)
    {
        var list = kexts.ToList();
        var standalone = list.ToDictionary(k => k.BundleId, k => Standalone(f, k));
        FilesetBuilder Builder(byte[] info)
        {
            var b = new FilesetBuilder(MachOTargetArchitecture.Arm64e) { PrelinkInfo = info, VmBase = AuxiliaryKernelCollection.Arm64VmBase };
            foreach (var k in list)
            {
                b.AddEntry(k.BundleId, standalone[k.BundleId]);
            }
            return b;
        }
        var layout = MachOFile.FromBytes(Builder([]).Build()).Slices[0].FilesetEntries.ToDictionary(e => e.EntryId);
        var infos = list.Select(k => (PlistNode)rewrite(new PlistDictionary(k.InfoDictionary.Select(kv => kv.Key == AuxiliaryKernelCollection.ExecutableLoadAddrKey
            ? new KeyValuePair<string, PlistNode>(kv.Key, new PlistInteger(layout[k.BundleId].VmAddress))
            : kv))));
        var prelink = PropertyList.ToXml(new PlistDictionary((AuxiliaryKernelCollection.InfoDictionaryKey, new PlistArray(infos))));
        return AuxiliaryKernelCollection.Read(Builder(prelink).Build(), "test.kc");
    }

    /// <summary>The kext's own arm64e slice, from its bundle on the fixture volume.</summary>
    private static byte[] Standalone(KextFixtures f, AuxKcKext kext)
    {
        var exe = Path.Combine(f.Root.Path, kext.BundlePath.TrimStart('/'), kext.ExecutableRelativePath!);
        return MachOFile.FromBytes(File.ReadAllBytes(exe)).Slices.Single(s => s.Architecture == "arm64e").Data.ToArray();
    }
}

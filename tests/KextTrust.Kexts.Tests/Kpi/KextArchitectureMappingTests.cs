using KextTrust.Formats.MachO;
using KextTrust.Kexts.Kpi;
using KextTrust.TestSupport;

namespace KextTrust.Kexts.Tests.Kpi;

/// <summary>
/// The one platform ↔ kext architecture ↔ Mach-O mapping (<see cref="KextArchitectures"/>), checked against slice names
/// and CPU types read from real Mach-O files (HoRNDIS 9.2's fat x86_64 + arm64e kext, the macOS runtime packs' dylibs)
/// and from what the builders emit for each architecture.
/// </summary>
public sealed class KextArchitectureMappingTests
{
    private const int CpuTypeX86_64 = 0x01000007, CpuTypeArm64 = 0x0100000C;
    private const int CpuSubtypeX86_64All = 3, CpuSubtypeArm64e = 2;

    /// <summary>A real fat kext with both architectures a Mac loads (tests/data/real-kexts/MANIFEST.tsv).</summary>
    private static string HorndisExecutable =>
        Path.Combine(Corpus.RealKexts, "kexts", "2025-08-bai", "HoRNDIS.kext", "Contents", "MacOS", "HoRNDIS");

    [Theory]
    [InlineData(MacPlatform.Intel, KextArchitecture.X86_64, "intel", "Intel", "x86_64", "x86_64")]
    [InlineData(MacPlatform.AppleSilicon, KextArchitecture.Arm64, "apple-silicon", "Apple silicon", "arm64e", "arm64")]
    public void Each_platform_has_one_architecture_and_names(MacPlatform platform, KextArchitecture architecture, string name, string display, string slice, string xnu)
    {
        Assert.Equal(architecture, platform.Architecture());
        Assert.Equal(platform, architecture.Platform());
        Assert.Equal(name, platform.Name());
        Assert.Equal(display, platform.DisplayName());
        Assert.True(KextArchitectures.TryParsePlatform(name, out var parsed));
        Assert.Equal(platform, parsed);
        Assert.Equal(slice, architecture.SliceName());
        Assert.Equal(xnu, architecture.XnuName());
        Assert.True(KextArchitectures.TryParseSliceName(slice, out var fromSlice));
        Assert.Equal(architecture, fromSlice);
    }

    [Fact]
    public void Every_member_is_mapped()
    {
        // A third platform or architecture must be added to the mapping, not fall into the "else" of a ternary.
        Assert.Equal(2, Enum.GetValues<MacPlatform>().Length);
        Assert.Equal(2, Enum.GetValues<KextArchitecture>().Length);
        Assert.Equal(Enum.GetValues<MacPlatform>(), Enum.GetValues<KextArchitecture>().Select(a => a.Platform()).Order());
        Assert.Equal(2, Enum.GetValues<KextArchitecture>().Select(a => a.MachOTarget()).Distinct().Count());
    }

    [Theory]
    [InlineData("Intel")]
    [InlineData("apple_silicon")]
    [InlineData("AppleSilicon")]
    [InlineData("arm64e")]
    [InlineData("")]
    [InlineData(null)]
    public void Only_the_two_platform_names_parse(string? name) =>
        Assert.False(KextArchitectures.TryParsePlatform(name, out _));

    [Fact]
    public void A_real_fat_kext_has_one_slice_per_platform_with_the_mapped_name_and_cpu_type()
    {
        using var file = MachOFile.Open(HorndisExecutable);
        Assert.Equal(["x86_64", "arm64e"], file.Slices.Select(s => s.Architecture));
        foreach (var platform in Enum.GetValues<MacPlatform>())
        {
            var architecture = platform.Architecture();
            var slice = Assert.Single(file.Slices, s => s.Architecture == architecture.SliceName());
            Assert.True(KextArchitectures.TryParseSliceName(slice.Architecture, out var parsed));
            Assert.Equal(architecture, parsed);
            Assert.Equal(platform, parsed.Platform());
            Assert.Equal(platform == MacPlatform.Intel ? (CpuTypeX86_64, CpuSubtypeX86_64All) : (CpuTypeArm64, CpuSubtypeArm64e),
                (slice.CpuType, slice.CpuSubtype));
            Assert.Equal(MachOFileType.KextBundle, slice.FileType);
        }
    }

    [Fact]
    public void Plain_arm64_from_a_real_binary_is_an_export_architecture_but_not_a_slice_Apple_silicon_loads()
    {
        var path = Corpus.RuntimePackMachOFiles().First(p => p.Contains("osx-arm64") && p.EndsWith("libSystem.Native.dylib"));
        using var file = MachOFile.Open(path);
        var name = Assert.Single(file.Slices).Architecture;
        Assert.Equal("arm64", name);
        Assert.True(KextArchitectures.TryParse(name, out var export));
        Assert.Equal(KextArchitecture.Arm64, export);
        Assert.False(KextArchitectures.TryParseSliceName(name, out _));
    }

    [Fact]
    public void Real_x86_64_binary_names_the_Intel_slice()
    {
        var path = Corpus.RuntimePackMachOFiles().First(p => p.Contains("osx-x64") && p.EndsWith("libSystem.Native.dylib"));
        using var file = MachOFile.Open(path);
        var slice = Assert.Single(file.Slices);
        Assert.True(KextArchitectures.TryParseSliceName(slice.Architecture, out var architecture));
        Assert.Equal(MacPlatform.Intel, architecture.Platform());
        Assert.Equal(CpuTypeX86_64, slice.CpuType);
    }

    [Theory]
    [InlineData(KextArchitecture.X86_64)]
    [InlineData(KextArchitecture.Arm64)]
    public void The_builder_target_of_an_architecture_emits_its_slice(KextArchitecture architecture)
    {
        var bytes = new KextBinaryBuilder(architecture.MachOTarget(), new byte[] { 0xC3 }).Build();
        var slice = Assert.Single(MachOFile.FromBytes(bytes, "built").Slices);
        Assert.Equal(architecture.SliceName(), slice.Architecture);
        Assert.Equal(architecture == KextArchitecture.Arm64 ? (CpuTypeArm64, CpuSubtypeArm64e) : (CpuTypeX86_64, CpuSubtypeX86_64All),
            (slice.CpuType, slice.CpuSubtype));
    }
}

using KextTrust.Kexts.Kpi;

namespace KextTrust.Kexts.Tests.Kpi;

public sealed class MacOSReleaseTests
{
    [Theory]
    [InlineData("10.15", "10.15")]
    [InlineData("10.15.7", "10.15")]
    [InlineData("11", "11")]
    [InlineData("11.2", "11")]
    [InlineData("11.7.10", "11")]
    [InlineData("12.0.1", "12")]
    [InlineData("13", "13")]
    [InlineData("14.6", "14")]
    [InlineData("15", "15")]
    [InlineData("15.0", "15")]
    [InlineData("15.3", "15")]
    [InlineData("15.3.2", "15")]
    [InlineData("15.4", "15.4")]
    [InlineData("15.4.1", "15.4")]
    [InlineData("15.7", "15.4")]
    [InlineData("macOS 11.2", "11")]
    [InlineData("macos-15.4", "15.4")]
    public void Versions_map_to_the_right_folder(string text, string key)
    {
        Assert.True(MacOSRelease.TryParse(text, out var release));
        Assert.Equal(key, release!.Key);
        Assert.Equal("macos-" + key, release.FolderName);
    }

    [Theory]
    [InlineData("10.14")]
    [InlineData("10.16")]
    [InlineData("10")]
    [InlineData("16")]
    [InlineData("26.0")]
    [InlineData("eleven")]
    [InlineData("11.")]
    [InlineData("")]
    [InlineData(null)]
    public void Versions_outside_the_catalog_do_not_parse(string? text)
    {
        Assert.False(MacOSRelease.TryParse(text, out var release));
        Assert.Null(release);
    }

    [Fact]
    public void Display_names_and_kernel_majors()
    {
        Assert.Equal(
            ["macOS Catalina 10.15", "macOS Big Sur 11", "macOS Monterey 12", "macOS Ventura 13", "macOS Sonoma 14",
             "macOS Sequoia 15.0–15.3", "macOS Sequoia 15.4+"],
            MacOSRelease.All.Select(r => r.DisplayName));
        Assert.Equal([19, 20, 21, 22, 23, 24, 24], MacOSRelease.All.Select(r => r.KernelMajor));
        Assert.Equal(Enumerable.Range(0, 7), MacOSRelease.All.Select(r => r.Index));
        Assert.True(MacOSRelease.Catalina.CompareTo(MacOSRelease.BigSur) < 0);
        Assert.Throws<FormatException>(() => MacOSRelease.Parse("9"));
    }

    [Fact]
    public void Versions_order_numerically()
    {
        Assert.True(MacOSVersion.Parse("10.15") < MacOSVersion.Parse("11"));
        Assert.True(MacOSVersion.Parse("10.9") < MacOSVersion.Parse("10.11"));
        Assert.True(MacOSVersion.Parse("15.3.9") < MacOSVersion.Parse("15.4"));
        Assert.Equal("10.15", MacOSVersion.Parse("10.15.0").ToString());
        Assert.Equal("10.15.7", MacOSVersion.Parse("10.15.7").ToString());
        Assert.False(MacOSVersion.TryParse("1.2.3.4", out _));
        Assert.False(MacOSVersion.TryParse("-1", out _));
    }

    [Theory]
    [InlineData("x86_64", KextArchitecture.X86_64, MacPlatform.Intel)]
    [InlineData("x86_64h", KextArchitecture.X86_64, MacPlatform.Intel)]
    [InlineData("arm64", KextArchitecture.Arm64, MacPlatform.AppleSilicon)]
    [InlineData("arm64e", KextArchitecture.Arm64, MacPlatform.AppleSilicon)]
    public void Architectures_parse_to_platforms(string name, KextArchitecture arch, MacPlatform platform)
    {
        Assert.True(KextArchitectures.TryParse(name, out var a));
        Assert.Equal(arch, a);
        Assert.Equal(platform, a.Platform());
    }

    [Theory]
    [InlineData("i386")]
    [InlineData("armv7")]
    [InlineData("ARM64")]
    [InlineData(null)]
    public void Other_architectures_do_not_parse(string? name) =>
        Assert.False(KextArchitectures.TryParse(name, out _));
}

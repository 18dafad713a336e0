using KextTrust.Kexts.Bundles;

namespace KextTrust.Kexts.Tests.Bundles;

public class KextVersionTests
{
    [Theory]
    [InlineData("1", 1_000_000_000_000L + 9_000)]
    [InlineData("1.2.3", 1_000_000_000_000L + 200_000_000L + 30_000L + 9_000)]
    [InlineData("8.0.0b1", 8_000_000_000_000L + 5_001)]
    [InlineData("8.0.0d0", 8_000_000_000_000L + 1_000)]
    [InlineData("2.1fc3", 2_000_000_000_000L + 100_000_000L + 7_003)]
    [InlineData("2.1f3", 2_000_000_000_000L + 100_000_000L + 7_003)]
    [InlineData("9999.9999.9999b255", 9_999_000_000_000_000L + 999_900_000_000L + 99_990_000L + 5_255)]
    [InlineData("20.2.0", 20_000_000_000_000L + 200_000_000L + 9_000)]
    public void Parses_to_the_kernel_encoding(string text, long encoded)
    {
        Assert.Equal(encoded, KextVersion.Parse(text).Encoded);
    }

    [Theory]
    [InlineData("")]
    [InlineData("1.")]
    [InlineData(".1")]
    [InlineData("1..2")]
    [InlineData("12345")]          // five major digits
    [InlineData("1.12345")]
    [InlineData("1.0f0")]          // candidate level 0
    [InlineData("1.0fc0")]
    [InlineData("1.0b256")]        // level above 255
    [InlineData("1.0b1000")]       // four level digits
    [InlineData("1.0x1")]          // unknown stage
    [InlineData("1.0.0.0")]        // four components
    [InlineData(" 1.0")]
    [InlineData("1.0 ")]
    [InlineData("###KERNEL_VERSION_LONG###")]
    public void Rejects_what_the_kernel_rejects(string text)
    {
        Assert.False(KextVersion.TryParse(text, out _));
        Assert.Throws<FormatException>(() => KextVersion.Parse(text));
    }

    [Theory]
    [InlineData("1.0d1", "1.0a1")]
    [InlineData("1.0a9", "1.0b1")]
    [InlineData("1.0b9", "1.0fc1")]
    [InlineData("1.0fc9", "1.0")]
    [InlineData("1.0", "1.0.1d1")]
    [InlineData("1.9", "1.10")]
    [InlineData("9", "10")]
    public void Orders_stages_and_numbers(string older, string newer)
    {
        Assert.True(KextVersion.Parse(older) < KextVersion.Parse(newer));
    }

    [Fact]
    public void Equal_encodings_are_equal_versions()
    {
        Assert.Equal(KextVersion.Parse("1.0"), KextVersion.Parse("1.0.0"));
        Assert.Equal(KextVersion.Parse("1.0f1"), KextVersion.Parse("1.0fc1"));
    }

    [Theory]
    [InlineData("20.2.0", "8.0.0b1", "8.0", true)]
    [InlineData("20.2.0", "8.0.0b1", "20.2.0", true)]
    [InlineData("20.2.0", "8.0.0b1", "21.0", false)]   // newer than the library
    [InlineData("20.2.0", "8.0.0b1", "7.0", false)]    // older than its compatible version
    public void Dependency_rule_is_compatible_le_requested_le_version(string version, string compatible, string requested, bool ok)
    {
        Assert.Equal(ok, KextVersion.Parse(version).Satisfies(KextVersion.Parse(requested), KextVersion.Parse(compatible)));
    }

    [Fact]
    public void The_kernel_rule_omits_the_lower_bound()
    {
        var lib = KextVersion.Parse("20.2.0");
        Assert.True(lib.IsCompatibleAsKernelChecks(KextVersion.Parse("7.0"), KextVersion.Parse("8.0.0b1")));
        Assert.False(lib.Satisfies(KextVersion.Parse("7.0"), KextVersion.Parse("8.0.0b1")));
    }
}

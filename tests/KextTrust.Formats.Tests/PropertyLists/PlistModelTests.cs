using KextTrust.Formats.PropertyLists;

namespace KextTrust.Formats.Tests.PropertyLists;

public class PlistModelTests
{
    private static readonly PlistDictionary Info = new(
        ("CFBundleIdentifier", new PlistString("com.apple.kpi.bsd")),
        ("OSBundleAllowUserLoad", PlistBoolean.True),
        ("OSBundleLibraries", new PlistDictionary(("com.apple.kpi.libkern", new PlistString("8.0")))),
        ("IOKitPersonalities", new PlistArray(PlistDictionary.Empty)),
        ("Count", new PlistInteger(7)));

    [Fact]
    public void Typed_getters_return_values_and_null_on_absence_or_wrong_type()
    {
        Assert.Equal("com.apple.kpi.bsd", Info.GetString("CFBundleIdentifier"));
        Assert.True(Info.GetBoolean("OSBundleAllowUserLoad"));
        Assert.Equal("8.0", Info.GetDictionary("OSBundleLibraries")!.GetString("com.apple.kpi.libkern"));
        Assert.Single(Info.GetArray("IOKitPersonalities")!);
        Assert.Equal(7, Info.GetInt64("Count"));
        Assert.Null(Info.GetString("Missing"));
        Assert.Null(Info.GetString("Count"));
        Assert.Null(Info.GetBoolean("CFBundleIdentifier"));
        Assert.Null(Info.GetDictionary("IOKitPersonalities"));
        Assert.False(Info.TryGet<PlistArray>("CFBundleIdentifier", out _));
        Assert.True(Info.TryGet<PlistString>("CFBundleIdentifier", out var id));
        Assert.Equal("com.apple.kpi.bsd", id.Value);
        Assert.Null(Info["Missing"]);
    }

    [Fact]
    public void Require_variants_throw_naming_the_key()
    {
        Assert.Equal("com.apple.kpi.bsd", Info.RequireString("CFBundleIdentifier"));
        var missing = Assert.Throws<PropertyListFormatException>(() => Info.RequireString("CFBundleVersion"));
        Assert.Contains("'CFBundleVersion'", missing.Rule);
        Assert.Contains("missing", missing.Rule);
        var wrong = Assert.Throws<PropertyListFormatException>(() => Info.RequireDictionary("CFBundleIdentifier"));
        Assert.Contains("'CFBundleIdentifier'", wrong.Rule);
        Assert.Contains("string", wrong.Rule);
        Assert.Contains("dictionary", wrong.Rule);
        Assert.Throws<PropertyListFormatException>(() => new PlistDictionary(("big", new PlistInteger(ulong.MaxValue))).RequireInt64("big"));
    }

    [Fact]
    public void Dictionary_keeps_source_order_and_rejects_duplicate_keys()
    {
        Assert.Equal(["CFBundleIdentifier", "OSBundleAllowUserLoad", "OSBundleLibraries", "IOKitPersonalities", "Count"], Info.Keys);
        Assert.Throws<ArgumentException>(() => new PlistDictionary(("a", PlistBoolean.True), ("a", PlistBoolean.False)));
    }

    private static bool Eq(PlistNode a, PlistNode b) => a.Equals(b) && a == b;

    [Fact]
    public void Equality_is_structural()
    {
        Assert.True(Samples.EveryType().Equals(Samples.EveryType()));
        Assert.Equal(Samples.EveryType().GetHashCode(), Samples.EveryType().GetHashCode());
        Assert.True(new PlistDictionary(("a", PlistBoolean.True), ("b", PlistBoolean.False)).Equals(new PlistDictionary(("b", PlistBoolean.False), ("a", PlistBoolean.True))));
        Assert.False(Eq(new PlistArray(new PlistInteger(1), new PlistInteger(2)), new PlistArray(new PlistInteger(2), new PlistInteger(1))));
        Assert.False(Eq(new PlistInteger(1), new PlistReal(1)));
        Assert.False(Eq(new PlistInteger(-1), new PlistInteger(ulong.MaxValue)));
        Assert.True(Eq(new PlistReal(double.NaN), new PlistReal(double.NaN)));
        Assert.False(Eq(new PlistData([1, 2]), new PlistData([1, 3])));
    }

    [Fact]
    public void Integer_keeps_the_full_signed_and_unsigned_64_bit_range()
    {
        var max = new PlistInteger(ulong.MaxValue);
        Assert.True(max.IsUnsigned64);
        Assert.Null(max.AsInt64);
        Assert.Equal(ulong.MaxValue, max.AsUInt64);
        var min = new PlistInteger(long.MinValue);
        Assert.Null(min.AsUInt64);
        Assert.Equal(long.MinValue, min.AsInt64);
        Assert.Throws<ArgumentOutOfRangeException>(() => new PlistInteger((Int128)ulong.MaxValue + 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new PlistInteger((Int128)long.MinValue - 1));
    }

    [Fact]
    public void Data_is_copied_so_results_stay_immutable()
    {
        var bytes = new byte[] { 1, 2, 3 };
        var data = new PlistData(bytes);
        bytes[0] = 9;
        Assert.Equal([1, 2, 3], data.ToArray());
        data.ToArray()[1] = 9;
        Assert.Equal([1, 2, 3], data.ToArray());
    }
}

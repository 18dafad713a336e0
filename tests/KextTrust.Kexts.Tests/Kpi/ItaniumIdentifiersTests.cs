using KextTrust.Kexts.Kpi;

namespace KextTrust.Kexts.Tests.Kpi;

public sealed class ItaniumIdentifiersTests
{
    [Theory]
    [InlineData("__ZN11IOUSBDevice4openEP9IOServicejPv", new[] { "IOUSBDevice", "open", "IOService" })]
    [InlineData("__ZTV11IOUSBDevice", new[] { "IOUSBDevice" })]
    [InlineData("__ZN11IOUSBDevice10gMetaClassE", new[] { "IOUSBDevice", "gMetaClass" })]
    [InlineData("__ZN11IOUSBDevice9MetaClassC1Ev", new[] { "IOUSBDevice", "MetaClass" })]
    [InlineData("__ZN15IOUSBHostDevice4openEP9IOServicejPv", new[] { "IOUSBHostDevice", "open", "IOService" })]
    [InlineData("__ZNK12IOUserClient12getMetaClassEv", new[] { "IOUserClient", "getMetaClass" })]
    [InlineData("__ZN9IOService5startEPS_", new[] { "IOService", "start" })]
    [InlineData("__ZThn8_N12IOUserClient4stopEP9IOService", new[] { "IOUserClient", "stop", "IOService" })]
    [InlineData("__ZTv0_n24_N19IONetworkController4freeEv", new[] { "IONetworkController", "free" })]
    [InlineData("__ZN3FooIXLi12EEE3barEv", new[] { "Foo", "bar" })]
    [InlineData("__ZN5IOCPUD0Ev", new[] { "IOCPU" })]
    public void Extracts_length_prefixed_identifiers(string symbol, string[] expected) =>
        Assert.Equal(expected, ItaniumIdentifiers.Extract(symbol));

    [Theory]
    [InlineData("_IOLog")]
    [InlineData("_kauth_listen_scope")]
    [InlineData("_Z3foov")]
    [InlineData("")]
    public void C_symbols_have_none(string symbol) => Assert.Empty(ItaniumIdentifiers.Extract(symbol));

    [Theory]
    [InlineData("__ZN99999999999Foo")]
    [InlineData("__ZN30IOShort")]
    [InlineData("__Z")]
    [InlineData("__ZN")]
    public void Malformed_lengths_stop_without_reading_past_the_end(string symbol)
    {
        var ids = ItaniumIdentifiers.Extract(symbol);
        Assert.All(ids, id => Assert.True(id.Length <= symbol.Length));
        Assert.DoesNotContain("IOShort", ids);
    }

    [Fact]
    public void Output_is_bounded()
    {
        var symbol = "__ZN" + string.Concat(Enumerable.Repeat("1a", 10_000)) + "E";
        Assert.Equal(ItaniumIdentifiers.MaxIdentifiers, ItaniumIdentifiers.Extract(symbol).Count);
    }
}

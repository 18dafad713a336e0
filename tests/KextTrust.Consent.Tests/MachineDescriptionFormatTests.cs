using System.Text;
using KextTrust.Kexts.Kpi;
using KextTrust.Machine;
using KextTrust.TestSupport;

namespace KextTrust.Consent.Tests;

/// <summary>
/// <c>machine.json</c> stays the same format: descriptions written by an earlier build (tests/data/machine-descriptions,
/// see tests/data/MANIFEST.md) read into the typed <see cref="MacPlatform"/> and <see cref="CsrConfig"/> and are written
/// back byte for byte; csr-active-config stays an integer and keeps bits no <see cref="CsrConfig"/> member names.
/// </summary>
public sealed class MachineDescriptionFormatTests
{
    private static byte[] Fixture(string name) => File.ReadAllBytes(Corpus.TestData("machine-descriptions/" + name));

    [Theory]
    [InlineData("apple-silicon-14.5.json", MacPlatform.AppleSilicon, CsrConfig.None, KextArchitecture.Arm64)]
    [InlineData("intel-10.15.7-sip-disabled.json", MacPlatform.Intel, CsrConfig.Disabled, KextArchitecture.X86_64)]
    public void A_description_written_before_the_typed_fields_reads_and_writes_back_unchanged(string name, MacPlatform platform, CsrConfig csr, KextArchitecture architecture)
    {
        var bytes = Fixture(name);
        var d = MachineDescription.Parse(bytes, name);
        Assert.Equal(platform, d.Platform);
        Assert.Equal(csr, d.CsrActiveConfig);
        Assert.Equal(architecture, d.KextArchitecture);
        Assert.Equal(csr == CsrConfig.None, d.SipEnforcesKexts);
        Assert.Equal(bytes, d.ToJson());
    }

    [Theory]
    [InlineData(0x80000000u)]
    [InlineData(0xFFFFFFFFu)]
    [InlineData(0x00012067u)]
    public void Csr_bits_no_member_names_survive_a_round_trip_as_an_integer(uint bits)
    {
        var text = Encoding.UTF8.GetString(Fixture("intel-10.15.7-sip-disabled.json"))
            .Replace("\"csrActiveConfig\": 3711,", $"\"csrActiveConfig\": {bits},", StringComparison.Ordinal);
        Assert.Contains($"\"csrActiveConfig\": {bits},", text, StringComparison.Ordinal);
        var d = MachineDescription.Parse(Encoding.UTF8.GetBytes(text), "edited");
        Assert.Equal(bits, (uint)d.CsrActiveConfig);
        Assert.Equal(text, Encoding.UTF8.GetString(d.ToJson()));
        // Written as a number again, not as flag names, whatever bits are set.
        var written = Encoding.UTF8.GetString((d with { CsrActiveConfig = CsrConfig.AllowUntrustedKexts | CsrConfig.AllowUnapprovedKexts }).ToJson());
        Assert.Contains("\"csrActiveConfig\": 513,", written, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("\"csrActiveConfig\": 3711,", "\"csrActiveConfig\": \"disabled\",")]
    [InlineData("\"csrActiveConfig\": 3711,", "\"csrActiveConfig\": -1,")]
    [InlineData("\"platform\": \"intel\",", "\"platform\": 1,")]
    [InlineData("\"platform\": \"intel\",", "\"platform\": \"x86_64\",")]
    public void Other_spellings_of_the_typed_fields_are_refused(string from, string to)
    {
        var text = Encoding.UTF8.GetString(Fixture("intel-10.15.7-sip-disabled.json"));
        Assert.Contains(from, text, StringComparison.Ordinal);
        var e = Assert.Throws<MachineException>(() => MachineDescription.Parse(Encoding.UTF8.GetBytes(text.Replace(from, to, StringComparison.Ordinal)), "edited"));
        Assert.Equal(MachineCode.MachineInvalid, e.Code);
    }

    [Fact]
    public void The_platform_is_written_with_its_one_name()
    {
        foreach (var name in new[] { "apple-silicon-14.5.json", "intel-10.15.7-sip-disabled.json" })
        {
            var d = MachineDescription.Parse(Fixture(name), name);
            Assert.Contains($"\"platform\": \"{d.Platform.Name()}\",", Encoding.UTF8.GetString(d.ToJson()), StringComparison.Ordinal);
        }
    }
}

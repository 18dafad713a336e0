using KextTrust.Machine;
using System.Text;
using KextTrust.Boot.KernelManagement;
using KextTrust.Boot.Policy;
using KextTrust.Boot.Receipt;
using KextTrust.Boot.Tests.KernelManagement;
using KextTrust.Consent.Policy;
using KextTrust.Formats.Image4;
using KextTrust.Formats.PropertyLists;
using KextTrust.Kexts.Kpi;
using KextTrust.Kexts.Trust;

namespace KextTrust.Boot.Tests.Receipts;

public sealed class KextReceiptTests
{
    private static KextReceipt Sample(params ReceiptIncludedKext[] included) => new()
    {
        AuxKcMeasurement = Sha384Digest.Compute("auxkc"u8),
        UaklHash = Sha384Digest.Compute("uakl"u8),
        Release = MacOSRelease.Sonoma,
        Architecture = KextArchitecture.Arm64,
        Sip = CsrConfig.AllowUntrustedKexts,
        Included = [.. included],
        Excluded = [new ReceiptExcludedKext("com.evil.banned", "6.6", "/Library/Extensions/banned.kext", TrustCode.ExcludeListed, "on the exclude list")],
    };

    private static readonly ReceiptIncludedKext Driver =
        new("com.acme.driver", "1.2.3", KextFixtures.Acme, "0123456789abcdef0123456789abcdef01234567", ConsentSource.Mdm, "/Library/Extensions/driver.kext", true);

    [Fact]
    public void TheReceiptRoundTripsAndItsHashIsTheHashOfItsBytes()
    {
        var receipt = Sample(Driver);
        var bytes = receipt.ToBytes();
        var back = KextReceipt.FromBytes(bytes, "receipt.plist");
        Assert.Equal(receipt, back);
        Assert.Equal(Driver, back.Included.Single());
        Assert.Equal(receipt.Excluded.Single(), back.Excluded.Single());
        Assert.Equal(Sha384Digest.Compute(bytes), receipt.ComputeHash());
        var text = Encoding.UTF8.GetString(bytes);
        Assert.Contains("<key>Reason</key>\n\t\t\t<string>ExcludeListed</string>", text);
        Assert.Contains("<string>arm64e</string>", text);
        var root = (PlistDictionary)PropertyList.Parse(bytes);
        Assert.Equal(["KextReceiptVersion", "AuxKCSHA384", "UAKLSHA384", "MacOSRelease", "Architecture", "SIPConfiguration", "IncludedKexts", "ExcludedKexts"], root.Keys);
        Assert.Equal("14", root.GetString("MacOSRelease"));
    }

    [Theory]
    [InlineData("Banned", TrustCode.ExcludeListed)]
    [InlineData("NotInUakl", TrustCode.NotApproved)]
    [InlineData("KpiUnsupported", TrustCode.UnsupportedKpi)]
    [InlineData("MissingDependency", TrustCode.MissingLibrary)]
    [InlineData("DependencyVersion", TrustCode.LibraryVersion)]
    public void AReceiptWrittenWithTheOldReasonNamesStillReadsAsTheSharedCodeAndKeepsItsBytes(string oldName, TrustCode code)
    {
        var current = Sample(Driver) with { Excluded = [new ReceiptExcludedKext("com.evil.x", "6.6", "/Library/Extensions/x.kext", code, "detail")] };
        var old = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(current.ToBytes()).Replace($"<string>{code}</string>", $"<string>{oldName}</string>"));
        Assert.NotEqual(current.ToBytes(), old);
        var read = KextReceipt.FromBytes(old, "old receipt.plist");
        Assert.Equal(code, read.Excluded.Single().Reason);
        // The receipt's bytes (what auxr hashes) keep one meaning: the old receipt re-encodes as the file it was read from.
        Assert.Equal(old, read.ToBytes());
        Assert.Equal(Sha384Digest.Compute(old), read.ComputeHash());
    }

    [Fact]
    public void NonCanonicalOrMalformedReceiptsAreRefused()
    {
        var bytes = Sample(Driver).ToBytes();
        var text = Encoding.UTF8.GetString(bytes);
        string[] bad =
        [
            text.Replace("\t", "  "),                                             // same plist, other whitespace: not canonical
            text.Replace("<string>Mdm</string>", "<string>Friend</string>"),    // unknown consent source
            text.Replace("<string>ExcludeListed</string>", "<string>Because</string>"), // unknown reason code
            text.Replace("<string>arm64e</string>", "<string>ppc</string>"),
            text.Replace("<integer>1</integer>", "<integer>2</integer>"),
            text.Replace("<key>CDHash</key>", "<key>CdHash</key>"),
            text.Replace(Sha384Digest.Compute("auxkc"u8).ToString(), new string('A', 96)),
            "<plist version=\"1.0\"><array/></plist>",
            "garbage",
        ];
        foreach (var b in bad)
        {
            Assert.Throws<KextReceiptFormatException>(() => KextReceipt.FromBytes(Encoding.UTF8.GetBytes(b), "receipt.plist"));
        }
    }

    [Theory]
    [InlineData("<string>Mdm</string>", "<string>Friend</string>", "ConsentSource 'Friend' is not a known value")]
    [InlineData("<string>ExcludeListed</string>", "<string>Because</string>", "Reason 'Because' is not a known value")]
    [InlineData("<key>HasExecutable</key>\n\t\t\t<true/>", "<key>HasExecutable</key>\n\t\t\t<string>yes</string>", "HasExecutable is not a boolean")]
    public void AReceiptValueThatBreaksARuleIsNamedWithItsFileAndOffset(string from, string to, string rule)
    {
        var text = Encoding.UTF8.GetString(Sample(Driver).ToBytes()).Replace(from, to);
        // The offset of the replaced value's element (the last line of `to`, after its indentation).
        var expected = Encoding.UTF8.GetByteCount(text[..(text.IndexOf(to, StringComparison.Ordinal) + to.LastIndexOf('\t') + 1)]);
        var e = Assert.Throws<KextReceiptFormatException>(() => KextReceipt.FromBytes(Encoding.UTF8.GetBytes(text), "/Preboot/kextreceipt.plist"));
        Assert.IsAssignableFrom<KextTrust.Formats.KextTrustFormatException>(e);
        Assert.Equal("/Preboot/kextreceipt.plist", e.SourceName);
        Assert.Equal(expected, e.Offset);
        Assert.Equal(rule, e.Rule);
    }

    [Fact]
    public void ATruncatedReceiptIsNamedWithTheOffsetWhereTheXmlBroke()
    {
        var bytes = Sample(Driver).ToBytes();
        var cut = bytes[..(bytes.Length / 2)];
        var e = Assert.Throws<KextReceiptFormatException>(() => KextReceipt.FromBytes(cut, "/Preboot/kextreceipt.plist"));
        Assert.Equal("/Preboot/kextreceipt.plist", e.SourceName);
        var xml = Assert.IsType<PropertyListFormatException>(e.InnerException);
        Assert.Equal(xml.Offset, e.Offset);
        Assert.InRange(e.Offset, 0, cut.Length);
        Assert.StartsWith("not an XML property list: ", e.Rule);
    }

    [Fact]
    public void ANonCanonicalReceiptIsNamedAtTheFirstByteThatDiffersFromTheCanonicalEncoding()
    {
        var text = Encoding.UTF8.GetString(Sample(Driver).ToBytes());
        var spaced = text.Replace("\t", "  ");
        var e = Assert.Throws<KextReceiptFormatException>(() => KextReceipt.FromBytes(Encoding.UTF8.GetBytes(spaced), "r.plist"));
        Assert.Equal(text.IndexOf('\t', StringComparison.Ordinal), e.Offset);
        Assert.Equal("r.plist: invalid kext receipt at offset " + e.Offset + " (0x" + e.Offset.ToString("x", System.Globalization.CultureInfo.InvariantCulture)
            + "): the bytes are not the canonical encoding of the receipt they hold", e.Message);
    }

    [Fact]
    public void ApplePayIsDisabledByAnyIncludedKextAndNamesThem()
    {
        var status = ApplePay.Status(Sample(Driver));
        Assert.False(status.Available);
        Assert.Equal(ApplePayReason.ThirdPartyKextsLoaded, status.Reason);
        Assert.Equal([Driver], status.InterferingKexts.ToArray());
        Assert.Equal("Apple Pay: disabled: third-party kexts could interfere: com.acme.driver", status.Describe());

        var empty = ApplePay.Status(Sample());
        Assert.True(empty.Available);
        Assert.Equal(ApplePayReason.ReceiptListsNoKexts, empty.Reason);
        Assert.Empty(empty.InterferingKexts);
        Assert.Equal(ApplePayReason.NoAuxKc, ApplePay.Status((KextReceipt?)null).Reason);
        Assert.Equal("Apple Pay: available", ApplePay.Status((KextReceipt?)null).Describe());
    }

    [Fact]
    public void AReceiptOfOnlyExcludedKextsLeavesApplePayAvailable()
    {
        using var f = new KextFixtures();
        f.AddSigned("com.evil.banned", ["_IOLog"]);
        f.Ban("com.evil.banned");
        var build = Kmd.BuildAuxKc(f.Request());
        Assert.Equal(TrustCode.ExcludeListed, build.Receipt.Excluded.Single().Reason);
        Assert.True(ApplePay.Status(build.Receipt).Available);
    }

    [Fact]
    public void TheUaklHashIsOrderIndependentAndSeesEveryField()
    {
        UaklEntry a = new("T1", "com.a", ConsentSource.User, null), b = new("T2", "com.b", ConsentSource.Mdm, null);
        static UserApprovedKextList L(params UaklEntry[] e) => UserApprovedKextList.Create(e);
        Assert.Equal(L(a, b).Hash, L(b, a).Hash);
        Assert.Equal(L(a, b).Hash, L(a, b, a).Hash);
        Assert.Equal(Sha384Digest.Compute(L(a, b).ToBytes()), L(a, b).Hash);
        Assert.NotEqual(L(a, b).Hash, L(a, b with { Source = ConsentSource.User }).Hash);
        Assert.NotEqual(L(a).Hash, L(a with { TeamId = "T3" }).Hash);
        Assert.NotEqual(L(a).Hash, L(a with { CdHash = "0123456789abcdef0123456789abcdef01234567" }).Hash);
    }

    [Fact]
    public void Kmd_finds_an_exact_entry_before_a_team_wide_one_and_never_a_team_wide_one_for_unsigned_kexts()
    {
        var uakl = UserApprovedKextList.Create([
            new("T1", "", ConsentSource.Spctl, null), new("T1", "com.a", ConsentSource.Mdm, null), new("", "", ConsentSource.User, null)]);
        Assert.True(uakl.TryFind("T1", "com.a", out var exact));
        Assert.Equal(ConsentSource.Mdm, exact.Source);
        Assert.True(uakl.TryFind("T1", "com.other", out var wide));
        Assert.Equal(ConsentSource.Spctl, wide.Source);
        Assert.False(uakl.TryFind("", "com.unsigned", out _));
        Assert.False(uakl.TryFind("T2", "com.a", out _));
        Assert.Equal(["T1"], uakl.TeamsFor("com.a"));
    }
}

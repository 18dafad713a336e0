using KextTrust.Machine;
using System.Text.RegularExpressions;
using KextTrust.Boot.KernelManagement;
using KextTrust.Boot.Policy;
using KextTrust.Consent.Policy;
using KextTrust.Boot.Receipt;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;
using KextTrust.Kexts.Signing;
using KextTrust.TestSupport;
using KextTrust.Kexts.Trust;

namespace KextTrust.Boot.Tests.KernelManagement;

public sealed class KmdBuildTests
{
    private static readonly string[] DriverImports = ["_IOLog", "_OSIncrementAtomic"];

    /// <summary>The cast of Apple's guide: a good kext, a library and its client, unsigned, KAUTH, banned, Intel-only, not approved.</summary>
    internal static KextFixtures Cast(string prefix = "kextrust-kmd")
    {
        var f = new KextFixtures(prefix);
        f.AddSigned("com.acme.driver", DriverImports);
        f.AddSigned("com.acme.family", ["_IOLog"], compatible: "1.0.0", defines: ["_acme_family_register"]);
        f.AddSigned("com.acme.client", ["_IOLog", "_acme_family_register"],
            libraries: new() { ["com.apple.kpi.iokit"] = "20.0", ["com.acme.family"] = "1.0.0" });
        f.Add(new KextBundleSpec("com.hobby.unsigned", "1.0") { Libraries = KextFixtures.Kpis, Slices = [KextFixtures.Arm64e("_IOLog")] },
            SignatureVerdicts.Unsigned);
        f.AddSigned("com.acme.kauth", ["_kauth_listen_scope", "_IOLog"],
            libraries: new() { ["com.apple.kpi.bsd"] = "20.0", ["com.apple.kpi.iokit"] = "20.0" });
        f.AddSigned("com.evil.banned", ["_IOLog"]);
        f.Ban("com.evil.banned");
        f.Add(new KextBundleSpec("com.old.intel", "2.0") { Libraries = KextFixtures.Kpis, Slices = [KextFixtures.X86("_IOLog")] },
            KextFixtures.Signed(KextFixtures.Acme, "com.old.intel"));
        f.Add(new KextBundleSpec("com.stranger.kext", "1.0") { Libraries = KextFixtures.Kpis, Slices = [KextFixtures.Arm64e("_IOLog")] },
            KextFixtures.Signed(KextFixtures.Other, "com.stranger.kext"), consent: null);
        return f;
    }

    [Fact]
    public void TheCastBuildsAnAuxKcOfTheApprovedSignedLinkableKextsWithEveryExclusionExplained()
    {
        using var f = Cast();
        var result = Kmd.BuildAuxKc(f.Request());

        Assert.True(result.DecisionFor("com.acme.driver")!.Included, string.Join("\n", result.DecisionFor("com.acme.driver")!.Checks));
        Assert.Equal(["com.acme.driver", "com.acme.family", "com.acme.client"], result.IncludedBundleIds);
        var expected = new Dictionary<string, TrustCode>
        {
            ["com.evil.banned"] = TrustCode.ExcludeListed,
            ["com.hobby.unsigned"] = TrustCode.SignatureUnsigned,
            ["com.acme.kauth"] = TrustCode.UnsupportedKpi,
            ["com.old.intel"] = TrustCode.MissingArchitecture,
            ["com.stranger.kext"] = TrustCode.NotApproved,
        };
        Assert.Equal(expected.OrderBy(e => e.Key, StringComparer.Ordinal),
            result.Receipt.Excluded.Select(e => KeyValuePair.Create(e.BundleId, e.Reason)));
        foreach (var (id, code) in expected)
        {
            var d = result.DecisionFor(id)!;
            Assert.False(d.Included);
            Assert.Equal(code, d.Exclusion);
            var failed = d.Checks[^1];
            Assert.Equal(TrustOutcome.Failed, failed.Outcome);
            Assert.Equal(code, failed.Code);
            Assert.Single(d.Checks, c => c.Outcome == TrustOutcome.Failed);
        }
        Assert.Equal(71, result.DecisionFor("com.old.intel")!.KMErrorCode);
        Assert.Contains("no arm64e slice (it has x86_64)", result.DecisionFor("com.old.intel")!.ExclusionDetail);
        Assert.Contains("kauth_listen_scope", result.DecisionFor("com.acme.kauth")!.ExclusionDetail);
        Assert.Contains("EndpointSecurity", result.DecisionFor("com.acme.kauth")!.ExclusionDetail);
        Assert.Null(result.DecisionFor("com.stranger.kext")!.Consent);

        var driver = result.DecisionFor("com.acme.driver")!;
        Assert.True(driver.Included);
        Assert.Equal([TrustStep.Bundle, TrustStep.Consent, TrustStep.ExcludeList, TrustStep.Signature, TrustStep.Architecture, TrustStep.Kpi, TrustStep.Dependencies, TrustStep.Link, TrustStep.Order], driver.Checks.Select(c => c.Step));
        Assert.All(driver.Checks, c => Assert.Equal(TrustOutcome.Passed, c.Outcome));
        Assert.Equal(KextFixtures.Acme, driver.TeamId);
        Assert.Equal(ConsentSource.User, driver.Consent);

        var included = result.Receipt.Included.Single(k => k.BundleId == "com.acme.client");
        Assert.Equal(new ReceiptIncludedKext("com.acme.client", "1.0.0", KextFixtures.Acme, KextFixtures.Signed("", "com.acme.client")("").PrimaryCdHash!,
            ConsentSource.User, "/Library/Extensions/client.kext", true), included);
        Assert.Equal(result.Measurement, result.Receipt.AuxKcMeasurement);
        Assert.Equal(result.AuxKc.ComputeMeasurement(), result.Measurement);
        Assert.Equal(f.Uakl.Hash, result.Receipt.UaklHash);
    }

    [Fact]
    public void TheAuxKcIsAFilesetOfTheKextsOwnSlicesThatOurReaderAndLlvm19Read()
    {
        using var f = Cast();
        var result = Kmd.BuildAuxKc(f.Request());
        var bytes = result.AuxKc.Bytes.ToArray();

        var fileset = MachOFile.FromBytes(bytes).Slices[0];
        Assert.Equal(MachOFileType.Fileset, fileset.FileType);
        Assert.Equal("arm64e", fileset.Architecture);
        Assert.Equal(["com.acme.driver", "com.acme.family", "com.acme.client"], fileset.FilesetEntries.Select(e => e.EntryId));
        foreach (var entry in fileset.FilesetEntries)
        {
            var bundle = KextBundle.Open(Path.Combine(f.Extensions, entry.EntryId.Split('.')[^1] + ".kext"));
            var own = MachOFile.FromBytes(File.ReadAllBytes(bundle.ExecutablePath!)).Slices.Single(s => s.Architecture == "arm64e");
            var embedded = fileset.OpenFilesetEntry(entry);
            Assert.Equal(own.UndefinedSymbols, embedded.UndefinedSymbols);
            Assert.Equal(own.DefinedExternalSymbols.Select(s => s.Name), embedded.DefinedExternalSymbols.Select(s => s.Name));
            Assert.Equal(own.Uuid, embedded.Uuid);
        }

        var read = AuxiliaryKernelCollection.Read(bytes, "built.kc");
        Assert.Equal(KextArchitecture.Arm64, read.Architecture);
        var client = read.Kexts.Single(k => k.BundleId == "com.acme.client");
        Assert.Equal("/Library/Extensions/client.kext", client.BundlePath);
        Assert.Equal("Contents/MacOS/client", client.ExecutableRelativePath);
        Assert.Equal("1.0.0", client.Libraries["com.acme.family"]);
        Assert.Equal(3, client.InfoDictionary.GetInt64(AuxiliaryKernelCollection.KcIdKey));
        Assert.Equal((long)client.FilesetEntry!.VmAddress, (long)client.InfoDictionary.Get<Formats.PropertyLists.PlistInteger>(AuxiliaryKernelCollection.ExecutableLoadAddrKey)!.AsUInt64!.Value);

        using var dir = new TempDir();
        var path = dir.Combine("AuxiliaryKernelExtensions.kc");
        File.WriteAllBytes(path, bytes);
        var r = ExternalTool.Run(ExternalTool.LlvmObjdump19, "--macho", "--private-headers", path);
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("", r.StdErr);
        Assert.Matches(@"MH_MAGIC_64\s+ARM64\s+E\s+\S+\s+FILESET", r.StdOut);
        Assert.Equal(3, Regex.Matches(r.StdOut, @"cmd \?\(0x80000035\)").Count);
        Assert.Contains("segname __PRELINK_INFO", r.StdOut);
    }

    [Fact]
    public void IntelMacsGetAnX86FilesetAndTheIntelOnlyKext()
    {
        using var f = Cast();
        var result = Kmd.BuildAuxKc(f.Request(KextArchitecture.X86_64));
        Assert.Contains("com.old.intel", result.IncludedBundleIds);
        Assert.DoesNotContain("com.hobby.unsigned", result.IncludedBundleIds);
        Assert.Equal("x86_64", MachOFile.FromBytes(result.AuxKc.Bytes).Slices[0].Architecture);
        Assert.Equal("x86_64", result.Receipt.Architecture.SliceName());
    }

    [Fact]
    public void TheSameInputsGiveTheSameBytesWhereverTheVolumeIsMounted()
    {
        using var a = Cast("kextrust-kmd-a");
        using var b = Cast("kextrust-kmd-b");
        var first = Kmd.BuildAuxKc(a.Request());
        var again = Kmd.BuildAuxKc(a.Request());
        var elsewhere = Kmd.BuildAuxKc(b.Request());
        Assert.Equal(first.AuxKc.Bytes.ToArray(), again.AuxKc.Bytes.ToArray());
        Assert.Equal(first.ReceiptBytes(), again.ReceiptBytes());
        Assert.Equal(first.AuxKc.Bytes.ToArray(), elsewhere.AuxKc.Bytes.ToArray());
        Assert.Equal(first.ReceiptBytes(), elsewhere.ReceiptBytes());
    }

    [Fact]
    public void WithSipsKextBitOffSignaturesAndKpiRulesAreNotEnforced()
    {
        using var f = Cast();
        var result = Kmd.BuildAuxKc(f.Request(sip: CsrConfig.AllowUntrustedKexts));
        Assert.Contains("com.hobby.unsigned", result.IncludedBundleIds);
        Assert.Contains("com.acme.kauth", result.IncludedBundleIds);
        Assert.DoesNotContain("com.evil.banned", result.IncludedBundleIds);
        Assert.DoesNotContain("com.stranger.kext", result.IncludedBundleIds);
        var unsigned = result.DecisionFor("com.hobby.unsigned")!;
        Assert.Equal(TrustOutcome.Skipped, unsigned.Checks.Single(c => c.Step == TrustStep.Signature).Outcome);
        Assert.Equal("", result.Receipt.Included.Single(k => k.BundleId == "com.hobby.unsigned").TeamId);
        var kauth = result.DecisionFor("com.acme.kauth")!.Checks.Single(c => c.Step == TrustStep.Kpi);
        Assert.Equal(TrustOutcome.Warning, kauth.Outcome);
        Assert.Equal(TrustCode.KpiNotEnforced, kauth.Code);
        Assert.Contains("SIP", kauth.Detail);
        Assert.Equal(CsrConfig.AllowUntrustedKexts, result.Receipt.Sip);
    }

    [Fact]
    public void AnMdmApprovedKauthKextIsExemptFromTheKpiRuleButStillNeedsItsSignature()
    {
        using var f = new KextFixtures();
        f.AddSigned("com.corp.edr", ["_kauth_listen_scope"], libraries: new() { ["com.apple.kpi.bsd"] = "20.0" }, consent: ConsentSource.Mdm);
        var result = Kmd.BuildAuxKc(f.Request());
        Assert.Equal(["com.corp.edr"], result.IncludedBundleIds);
        var kpi = result.DecisionFor("com.corp.edr")!.Checks.Single(c => c.Step == TrustStep.Kpi);
        Assert.Equal(TrustOutcome.Warning, kpi.Outcome);
        Assert.Equal(TrustCode.KpiNotEnforced, kpi.Code);
        Assert.Contains("MDM", kpi.Detail);
        Assert.Equal(ConsentSource.Mdm, result.Receipt.Included.Single().Consent);
    }

    [Theory]
    [InlineData(KextSignatureStatus.AdHoc, true, TrustCode.SignatureAdHoc)]
    [InlineData(KextSignatureStatus.Invalid, true, TrustCode.SignatureInvalid)]
    [InlineData(KextSignatureStatus.Valid, false, TrustCode.NotKextSigningAuthority)]
    public void EachBadSignatureHasItsOwnCode(KextSignatureStatus status, bool authorized, TrustCode expected)
    {
        using var f = new KextFixtures();
        var team = status == KextSignatureStatus.AdHoc ? null : KextFixtures.Acme;
        f.Add(new KextBundleSpec("com.acme.x", "1.0") { Libraries = KextFixtures.Kpis, Slices = [KextFixtures.Arm64e("_IOLog")] },
            path => status switch
            {
                KextSignatureStatus.AdHoc => SignatureVerdicts.AdHoc(path),
                KextSignatureStatus.Invalid => SignatureVerdicts.Invalid(path, team, KextSignatureProblemCode.CodePageHashMismatch),
                _ => SignatureVerdicts.Valid(path, team!, kextSigning: authorized),
            });
        var d = Kmd.BuildAuxKc(f.Request()).DecisionFor("com.acme.x")!;
        Assert.Equal(expected, d.Exclusion);
        Assert.Equal(TrustStep.Signature, d.Checks[^1].Step);
    }

    [Fact]
    public void AVerifierThatThrowsIsAnInvalidSignatureNotACrash()
    {
        using var f = new KextFixtures();
        f.AddSigned("com.acme.x", ["_IOLog"]);
        var request = f.Request() with { VerifySignature = _ => throw new InvalidDataException("corrupt CMS") };
        var d = Kmd.BuildAuxKc(request).DecisionFor("com.acme.x")!;
        // The verdict has no team, so the UAKL (which lists the team) cannot match it.
        Assert.Equal(TrustCode.UaklTeamMismatch, d.Exclusion);
        Assert.Contains("authorized for team ACME000001", d.ExclusionDetail);
    }

    [Fact]
    public void TheUaklMatchesTheSignaturesTeamNotJustTheBundleId()
    {
        using var f = new KextFixtures();
        f.Add(new KextBundleSpec("com.acme.driver", "1.0") { Libraries = KextFixtures.Kpis, Slices = [KextFixtures.Arm64e("_IOLog")] },
            KextFixtures.Signed(KextFixtures.Other, "com.acme.driver"), uaklTeam: KextFixtures.Acme);
        var d = Kmd.BuildAuxKc(f.Request()).DecisionFor("com.acme.driver")!;
        Assert.Equal(TrustCode.UaklTeamMismatch, d.Exclusion);
        Assert.Contains(KextFixtures.Other, d.ExclusionDetail);
    }

    [Fact]
    public void DependenciesCascadeAndCyclesAreRefused()
    {
        using var f = new KextFixtures();
        f.AddSigned("com.acme.banned-lib", ["_IOLog"], compatible: "1.0", defines: ["_lib_fn"]);
        f.Ban("com.acme.banned-lib");
        f.AddSigned("com.acme.user", ["_lib_fn"], libraries: new() { ["com.acme.banned-lib"] = "1.0" });
        f.AddSigned("com.acme.user-of-user", ["_IOLog"], libraries: new() { ["com.acme.user"] = "1.0", ["com.apple.kpi.iokit"] = "20.0" }, compatible: "1.0");
        f.AddSigned("com.acme.ring-a", ["_IOLog"], libraries: new() { ["com.acme.ring-b"] = "1.0", ["com.apple.kpi.iokit"] = "20.0" }, compatible: "1.0");
        f.AddSigned("com.acme.ring-b", ["_IOLog"], libraries: new() { ["com.acme.ring-a"] = "1.0", ["com.apple.kpi.iokit"] = "20.0" }, compatible: "1.0");
        f.AddSigned("com.acme.missing", ["_IOLog"], libraries: new() { ["com.nowhere.lib"] = "1.0", ["com.apple.kpi.iokit"] = "20.0" });
        f.AddSigned("com.acme.newer-kpi", ["_IOLog"], libraries: new() { ["com.apple.kpi.iokit"] = "99.0" });
        f.AddSigned("com.acme.undeclared", ["_IOLog", "_kauth_cred_getuid"], libraries: new() { ["com.apple.kpi.iokit"] = "20.0" });
        f.AddSigned("com.acme.family-user", ["_IOLog", "__ZN9IOHIDUsage4findEv"],
            libraries: new() { ["com.apple.kpi.iokit"] = "20.0", ["com.apple.iokit.IOStorageFamily"] = "1.0" });
        var result = Kmd.BuildAuxKc(f.Request());
        Assert.Equal(TrustCode.ExcludeListed, result.DecisionFor("com.acme.banned-lib")!.Exclusion);
        Assert.Equal(TrustCode.DependencyExcluded, result.DecisionFor("com.acme.user")!.Exclusion);
        Assert.Equal(TrustCode.DependencyExcluded, result.DecisionFor("com.acme.user-of-user")!.Exclusion);
        Assert.Equal(TrustCode.DependencyCycle, result.DecisionFor("com.acme.ring-a")!.Exclusion);
        Assert.Equal(TrustCode.DependencyCycle, result.DecisionFor("com.acme.ring-b")!.Exclusion);
        Assert.Equal(TrustCode.MissingLibrary, result.DecisionFor("com.acme.missing")!.Exclusion);
        Assert.Equal(TrustCode.LibraryVersion, result.DecisionFor("com.acme.newer-kpi")!.Exclusion);
        var undeclared = result.DecisionFor("com.acme.undeclared")!;
        Assert.Equal(TrustCode.UnresolvedSymbols, undeclared.Exclusion);
        Assert.Contains("_kauth_cred_getuid (exported by com.apple.kpi.bsd", undeclared.ExclusionDetail);
        var family = result.DecisionFor("com.acme.family-user")!;
        Assert.True(family.Included);
        Assert.Equal(TrustOutcome.Warning, family.Checks.Single(c => c.Step == TrustStep.Link).Outcome);
        Assert.Equal(["com.acme.family-user"], result.IncludedBundleIds);
    }

    [Fact]
    public void DuplicatesKeepTheHighestVersionAndMalformedBundlesAreExplained()
    {
        using var f = new KextFixtures();
        f.AddSigned("com.acme.dup", ["_IOLog"], version: "1.0.0");
        KextBundleWriter.Write(Path.Combine(f.Extensions, "newer"), new KextBundleSpec("com.acme.dup", "2.0.0")
        {
            Libraries = KextFixtures.Kpis, Slices = [KextFixtures.Arm64e("_IOLog")],
        });
        var broken = Path.Combine(f.Extensions, "Broken.kext", "Contents");
        Directory.CreateDirectory(broken);
        File.WriteAllText(Path.Combine(broken, "Info.plist"), "not a plist");
        var result = Kmd.BuildAuxKc(f.Request());
        var dups = result.Decisions.Where(d => d.BundleId == "com.acme.dup").ToList();
        Assert.Equal(2, dups.Count);
        Assert.Equal("2.0.0", Assert.Single(dups, d => d.Included).Version);
        Assert.Equal(TrustCode.DuplicateBundleId, Assert.Single(dups, d => !d.Included).Exclusion);
        Assert.Equal(TrustCode.MalformedBundle, Assert.Single(result.Decisions, d => d.BundleId is null).Exclusion);
        Assert.Contains(result.Receipt.Excluded, e => e.BundlePath == "/Library/Extensions/Broken.kext" && e.Reason == TrustCode.MalformedBundle);
    }

    [Fact]
    public void AGarbageExecutableIsMalformedNotACrash()
    {
        using var f = new KextFixtures();
        var path = f.AddSigned("com.acme.garbage", ["_IOLog"]);
        File.WriteAllBytes(Path.Combine(path, "Contents", "MacOS", "garbage"), [0xCF, 0xFA, 0xED, 0xFE, 1, 2, 3]);
        var d = Kmd.BuildAuxKc(f.Request()).DecisionFor("com.acme.garbage")!;
        Assert.Equal(TrustCode.MalformedExecutable, d.Exclusion);
    }

    [Fact]
    public void AnEmptyBuildIsAValidEmptyCollection()
    {
        using var f = new KextFixtures();
        var result = Kmd.BuildAuxKc(f.Request());
        Assert.Empty(result.Receipt.Included);
        Assert.Empty(AuxiliaryKernelCollection.Read(result.AuxKc.Bytes.Span, "built.kc").Kexts);
    }
}

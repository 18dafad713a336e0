using System.Text.RegularExpressions;
using KextTrust.Formats.CodeSigning;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Signing;
using KextTrust.TestSupport;

namespace KextTrust.Kexts.Tests.Signing;

/// <summary>Our own signed kexts: fat x86_64 + arm64e, a plug-in, resources; verified, tampered, cross-checked with llvm and openssl.</summary>
public class KextSignerTests
{
    private const string Team = "KT4TEST001";
    private static readonly DateTimeOffset SigningTime = new(2025, 6, 1, 12, 0, 0, TimeSpan.Zero);

    private static TestPki NewPki(bool kextSigning = true) => TestPki.Create(new TestPki.Options("Example Corp", Team)
    {
        KextSigning = kextSigning,
        NotBefore = new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero),
    });

    /// <summary>Writes an unsigned fat kext with a plug-in, a resource file, a localized resource and a symlink.</summary>
    internal static string WriteKext(string dir, string id = "com.example.driver")
    {
        var spec = new KextBundleSpec(id, "1.2.3")
        {
            Slices = [new(MachOTargetArchitecture.X86_64, ["_IOLog"]), new(MachOTargetArchitecture.Arm64e, ["_IOLog"])],
            Libraries = new Dictionary<string, string> { ["com.apple.kpi.libkern"] = "20.0" },
            PlugIns = [new KextBundleSpec(id + ".helper", "1.2.3") { Slices = [new(MachOTargetArchitecture.X86_64, ["_IOLog"])] }],
        };
        var path = KextBundleWriter.Write(dir, spec);
        var resources = Path.Combine(path, "Contents", "Resources");
        Directory.CreateDirectory(Path.Combine(resources, "en.lproj"));
        File.WriteAllText(Path.Combine(resources, "Defaults.plist"), "<plist><dict/></plist>\n");
        File.WriteAllText(Path.Combine(resources, "en.lproj", "Localizable.strings"), "\"hello\" = \"Hello\";\n");
        File.CreateSymbolicLink(Path.Combine(resources, "Current.plist"), "Defaults.plist");
        return path;
    }

    private static KextSigningResult Sign(string kext, TestPki? pki, bool sha1 = false)
    {
        using var identity = pki is null ? null : KextSigningIdentity.Create(pki.Leaf, [pki.Intermediate, pki.Root]);
        return KextSigner.Sign(kext, new KextSigningOptions { Identity = identity, IncludeSha1 = sha1, SigningTime = SigningTime });
    }

    private static KextSignatureVerification Verify(string path, TestPki? trusted) =>
        KextSignatureVerifier.Verify(path, new KextSignatureVerifierOptions { TrustedTestRoot = trusted?.Root });

    private static string Codes(KextSignatureVerification r) => string.Join("\n", r.Problems);

    [Fact]
    public void Signed_fat_kext_with_plug_in_is_valid_only_with_the_trust_root_named()
    {
        using var pki = NewPki();
        using var tmp = new TempDir();
        var kext = WriteKext(tmp.Path);
        var signed = Sign(kext, pki, sha1: true);

        var r = Verify(kext, pki);
        Assert.True(r.Status == KextSignatureStatus.Valid, Codes(r));
        Assert.Equal("kext", r.Kind);
        Assert.True(r.IsKextBinary);
        Assert.Equal(Team, r.TeamId);
        Assert.Equal($"Developer ID Application: Example Corp ({Team})", r.Signer);
        Assert.True(r.KextSigningAuthorized);
        Assert.True(r.RequirementSatisfied, r.KextRequirement!.Outcome.ToString());
        Assert.Equal(RequirementOutcome.Satisfied, r.DesignatedRequirement!.Outcome);
        Assert.Equal(TrustAnchorKind.TestRoot, r.Anchor);
        Assert.True(r.TrustedByRequest);
        Assert.Contains(TestPki.RootName, r.TrustedRoot);
        Assert.Equal(["x86_64", "arm64e"], r.Slices.Select(s => s.Arch));
        Assert.All(r.Slices, s => Assert.Equal(2, s.CdHashes.Count)); // SHA-1 primary + SHA-256 alternate
        Assert.Equal(signed.CdHashes, r.Slices.Select(s => s.CdHashes[0].CdHash));
        var plugIn = Assert.Single(r.Nested);
        Assert.Equal(KextSignatureStatus.Valid, plugIn.Status);
        Assert.Equal("com.example.driver.helper", plugIn.Identifier);

        // The seal: files2 has hash + hash2, the symlink by target, the plug-in by cdhash + requirement.
        var seal = CodeResources.Parse(File.ReadAllBytes(Path.Combine(kext, "Contents", "_CodeSignature", "CodeResources")), "seal");
        Assert.Equal(["PlugIns/helper.kext", "Resources/Current.plist", "Resources/Defaults.plist", "Resources/en.lproj/Localizable.strings"], seal.Files2.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("Defaults.plist", seal.Files2["Resources/Current.plist"].Symlink);
        Assert.Equal(32, seal.Files2["Resources/Defaults.plist"].Hash2!.Length);
        Assert.Equal(20, seal.Files2["Resources/Defaults.plist"].Hash!.Length);
        Assert.True(seal.Files2["Resources/en.lproj/Localizable.strings"].Optional);
        Assert.Equal(signed.Nested[0].CdHashes[0], Convert.ToHexStringLower(seal.Files2["PlugIns/helper.kext"].CdHash!));
        Assert.Contains("identifier \"com.example.driver.helper\"", seal.Files2["PlugIns/helper.kext"].Requirement);
        Assert.Contains(seal.Rules2, x => x.Pattern == "^Info\\.plist$" && x.Omit && x.Weight == 20);

        var untrusted = Verify(kext, null);
        Assert.Equal(KextSignatureStatus.Invalid, untrusted.Status);
        Assert.Contains(untrusted.Problems, p => p.Code == KextSignatureProblemCode.UntrustedRoot);
        Assert.False(untrusted.RequirementSatisfied);
        Assert.False(untrusted.TrustedByRequest);
    }

    [Fact]
    public void Each_tamper_gives_its_own_problem_code()
    {
        using var pki = NewPki();
        using var tmp = new TempDir();

        KextSignatureVerification Tampered(string name, Action<string> tamper)
        {
            var kext = WriteKext(Directory.CreateDirectory(tmp.Combine(name)).FullName);
            Sign(kext, pki);
            Assert.Equal(KextSignatureStatus.Valid, Verify(kext, pki).Status);
            tamper(kext);
            var r = Verify(kext, pki);
            Assert.Equal(KextSignatureStatus.Invalid, r.Status);
            return r;
        }
        static HashSet<KextSignatureProblemCode> Set(KextSignatureVerification r) => r.Problems.Select(p => p.Code).ToHashSet();

        var info = Tampered("info", k => File.AppendAllText(Path.Combine(k, "Contents", "Info.plist"), "\n"));
        Assert.Equal([KextSignatureProblemCode.InfoPlistHashMismatch], Set(info));
        Assert.Equal(["x86_64", "arm64e"], info.Problems.Select(p => p.Arch));

        // Info.plist removed: the bundle no longer names its executable, so the kext is unreadable, not a mismatch.
        var gone = Tampered("gone", k => File.Delete(Path.Combine(k, "Contents", "Info.plist")));
        Assert.Contains(KextSignatureProblemCode.Unreadable, Set(gone));
        Assert.DoesNotContain(KextSignatureProblemCode.InfoPlistHashMismatch, Set(gone));

        var added = Tampered("added", k => File.WriteAllText(Path.Combine(k, "Contents", "Resources", "Extra.txt"), "x"));
        Assert.Equal([KextSignatureProblemCode.ResourceAdded], Set(added));
        Assert.EndsWith(Path.Combine("Resources", "Extra.txt"), added.Problems[0].Path);

        var removed = Tampered("removed", k => File.Delete(Path.Combine(k, "Contents", "Resources", "Defaults.plist")));
        // The symlink to it stays sealed by its target text; only the file itself is reported missing.
        Assert.Equal([KextSignatureProblemCode.ResourceMissing], Set(removed));
        Assert.Contains("Resources/Defaults.plist", removed.Problems[0].Message);

        var changed = Tampered("changed", k => File.WriteAllText(Path.Combine(k, "Contents", "Resources", "Defaults.plist"), "<plist><dict><key>a</key><true/></dict></plist>\n"));
        Assert.Equal([KextSignatureProblemCode.ResourceChanged], Set(changed));

        var relinked = Tampered("relinked", k =>
        {
            var link = Path.Combine(k, "Contents", "Resources", "Current.plist");
            File.Delete(link);
            File.CreateSymbolicLink(link, "en.lproj/Localizable.strings");
        });
        Assert.Equal([KextSignatureProblemCode.SymlinkChanged], Set(relinked));

        long flippedAt = 0, armOffset = 0;
        var exe = Tampered("exe", k =>
        {
            var path = Path.Combine(k, "Contents", "MacOS", "driver");
            var bytes = File.ReadAllBytes(path);
            var arm = MachOFile.FromBytes(bytes).Slices[1];
            var text = arm.Segments.Single(s => s.Name == "__TEXT").Sections[0];
            armOffset = arm.FileOffset;
            flippedAt = arm.FileOffset + text.Offset;
            bytes[flippedAt] ^= 0xFF;
            File.WriteAllBytes(path, bytes);
        });
        Assert.Equal([KextSignatureProblemCode.CodePageHashMismatch], Set(exe));
        var page = Assert.Single(exe.Problems);
        Assert.Equal("arm64e", page.Arch);
        Assert.Equal(armOffset + ((flippedAt - armOffset) & ~4095L), page.Offset);
        Assert.Contains($"code page {(flippedAt - armOffset) / 4096} ", page.Message);

        var plugIn = Tampered("plugin", k => File.AppendAllText(Path.Combine(k, "Contents", "PlugIns", "helper.kext", "Contents", "Info.plist"), "\n"));
        Assert.Equal([KextSignatureProblemCode.NestedCodeInvalid], Set(plugIn));
        Assert.Equal(KextSignatureStatus.Invalid, plugIn.Nested[0].Status);

        // CodeDirectory swapped for another kext's (same signer): the CMS no longer covers it.
        var other = WriteKext(Directory.CreateDirectory(tmp.Combine("other")).FullName, "com.example.other");
        Sign(other, pki);
        var swapped = Tampered("swapped", k =>
        {
            var path = Path.Combine(k, "Contents", "MacOS", "driver");
            var bytes = File.ReadAllBytes(path);
            var mine = MachOFile.FromBytes(bytes).Slices[0];
            var theirs = MachOFile.FromBytes(File.ReadAllBytes(Path.Combine(other, "Contents", "MacOS", "other"))).Slices[0];
            var mySig = EmbeddedSignature.Parse(mine.CodeSignatureData.ToArray(), "mine");
            var theirSig = EmbeddedSignature.Parse(theirs.CodeSignatureData.ToArray(), "theirs");
            var rebuilt = new EmbeddedSignatureBuilder
            {
                CodeDirectory = theirSig.CodeDirectory.Bytes.ToArray(),
                Requirements = mySig.Requirements!.Bytes.ToArray(),
                Cms = mySig.Signature!.CmsBytes.ToArray(),
            }.Build();
            Assert.True(rebuilt.Length <= mine.CodeSignature!.Value.DataSize);
            var at = (int)(mine.FileOffset + mine.CodeSignature.Value.DataOffset);
            Array.Clear(bytes, at, (int)mine.CodeSignature.Value.DataSize);
            rebuilt.CopyTo(bytes, at);
            File.WriteAllBytes(path, bytes);
        });
        Assert.Contains(KextSignatureProblemCode.CdHashMismatch, Set(swapped));
        Assert.DoesNotContain(KextSignatureProblemCode.CdHashMismatch, Set(info).Concat(Set(added)).Concat(Set(removed)).Concat(Set(changed)).Concat(Set(exe)));
    }

    /// <summary>
    /// A bare Mach-O signed with a SHA-1 CodeDirectory (slot 0) and a SHA-256 alternate, both bound by the CMS, where
    /// the SHA-1 CodeDirectory records a wrong hash for its last code page (signed as it is, so every cdhash agrees).
    /// </summary>
    private static (string Path, int BadPage, long Sha256Pages) WriteSha1AlternateWithWrongPageHash(TempDir tmp, TestPki pki)
    {
        var kext = WriteKext(Directory.CreateDirectory(tmp.Combine("src")).FullName);
        var exe = KextBundle.Open(kext).ExecutablePath!;
        var thin = MachOFile.FromBytes(File.ReadAllBytes(exe), exe).Slices[0].Data.ToArray();
        var requirements = RequirementCompiler.BuildSet([]);
        var badPage = -1;
        var sha256Pages = 0L;
        var signed = MachOSignatureWriter.Sign(thin, exe, s =>
        {
            byte[] Cd(CodeSigningHashType type) => new CodeDirectoryBuilder
            {
                Identifier = "com.example.driver",
                TeamId = Team,
                HashType = type,
                SpecialSlotHashes = new Dictionary<int, byte[]> { [2] = EmbeddedSignatureBuilder.SpecialSlotHash(type, requirements) },
            }.Build(s.Code.Span);
            var sha1 = Cd(CodeSigningHashType.Sha1);
            var parsed = CodeDirectory.Parse(sha1, "sha1");
            badPage = (int)parsed.CodeSlotCount - 1;
            sha1[(int)parsed.HashOffset + badPage * parsed.HashSize] ^= 0xff;
            var sha256 = Cd(CodeSigningHashType.Sha256);
            sha256Pages = CodeDirectory.Parse(sha256, "sha256").CodeSlotCount;
            return new EmbeddedSignatureBuilder
            {
                CodeDirectory = sha1,
                AlternateCodeDirectories = [sha256],
                Requirements = requirements,
                Cms = CodeSignatureCmsSigner.Sign([sha1, sha256], pki.Leaf, [pki.Intermediate, pki.Root], SigningTime),
            }.Build();
        });
        var path = tmp.Combine("driver");
        File.WriteAllBytes(path, signed);
        return (path, badPage, sha256Pages);
    }

    [Fact]
    public void Alternate_code_directory_pages_are_hashed_only_with_all_code_directories()
    {
        using var pki = NewPki();
        using var tmp = new TempDir();
        var (path, badPage, sha256Pages) = WriteSha1AlternateWithWrongPageHash(tmp, pki);
        Assert.True(badPage > 0);

        // By default the pages are checked against the strongest CodeDirectory (SHA-256), as the kernel does; the
        // SHA-1 one is bound by its cdhash in the CMS, which agrees.
        var byDefault = KextSignatureVerifier.Verify(path, new KextSignatureVerifierOptions { TrustedTestRoot = pki.Root });
        Assert.True(byDefault.Status == KextSignatureStatus.Valid, Codes(byDefault));
        Assert.Equal(sha256Pages, byDefault.PagesVerified);

        var all = KextSignatureVerifier.Verify(path, new KextSignatureVerifierOptions { TrustedTestRoot = pki.Root, AllCodeDirectories = true });
        Assert.Equal(KextSignatureStatus.Invalid, all.Status);
        var problem = Assert.Single(all.Problems);
        Assert.Equal(KextSignatureProblemCode.CodePageHashMismatch, problem.Code);
        Assert.Contains($"code page {badPage} does not match its Sha1 hash", problem.Message);
        Assert.Equal(badPage * 4096L, problem.Offset);
        Assert.Equal(2 * sha256Pages, all.PagesVerified);
    }

    [Fact]
    public void Flipped_code_byte_is_reported_with_its_page_with_or_without_all_code_directories()
    {
        using var pki = NewPki();
        using var tmp = new TempDir();
        var kext = WriteKext(Directory.CreateDirectory(tmp.Combine("k")).FullName);
        Sign(kext, pki, sha1: true);
        var exe = KextBundle.Open(kext).ExecutablePath!;
        var bytes = File.ReadAllBytes(exe);
        long at;
        using (var file = MachOFile.FromBytes(bytes, exe))
        {
            var slice = file.Slices[0];
            at = slice.FileOffset + 4096 + 17; // code page 1 of the first slice
        }
        bytes[at] ^= 0x01;
        File.WriteAllBytes(exe, bytes);

        var byDefault = KextSignatureVerifier.Verify(kext, new KextSignatureVerifierOptions { TrustedTestRoot = pki.Root });
        var page = Assert.Single(byDefault.Problems);
        Assert.Equal(KextSignatureProblemCode.CodePageHashMismatch, page.Code);
        Assert.Contains("code page 1 does not match its Sha256 hash", page.Message);
        Assert.Equal(at - 17, page.Offset);

        var all = KextSignatureVerifier.Verify(kext, new KextSignatureVerifierOptions { TrustedTestRoot = pki.Root, AllCodeDirectories = true });
        Assert.Equal(["Sha1", "Sha256"], all.Problems.Select(p => Regex.Match(p.Message, "its (Sha\\d+) hash").Groups[1].Value).Order());
        Assert.All(all.Problems, p => Assert.Equal(at - 17, p.Offset));
    }

    [Fact]
    public void Ad_hoc_and_unsigned_kexts_get_their_own_status()
    {
        using var tmp = new TempDir();
        var unsigned = WriteKext(Directory.CreateDirectory(tmp.Combine("u")).FullName);
        var u = Verify(unsigned, null);
        Assert.Equal(KextSignatureStatus.Unsigned, u.Status);
        Assert.Empty(u.Problems);
        Assert.False(u.RequirementSatisfied);

        var adhoc = WriteKext(Directory.CreateDirectory(tmp.Combine("a")).FullName);
        Sign(adhoc, null);
        var a = Verify(adhoc, null);
        Assert.True(a.Status == KextSignatureStatus.AdHoc, Codes(a));
        Assert.Null(a.TeamId);
        Assert.Null(a.Signer);
        Assert.False(a.KextSigningAuthorized);
        Assert.False(a.RequirementSatisfied);
        Assert.Equal(KextSignatureStatus.AdHoc, a.Nested[0].Status);
        using var exe = MachOFile.Open(Path.Combine(adhoc, "Contents", "MacOS", "driver"));
        var sig = EmbeddedSignature.Parse(exe.Slices[0].CodeSignatureData, "adhoc");
        Assert.Equal(CodeDirectoryFlags.Adhoc, sig.CodeDirectory.Flags & CodeDirectoryFlags.Adhoc);
        Assert.Null(sig.CodeDirectory.TeamId);

        // Ad-hoc is not a loophole: a tampered ad-hoc kext is Invalid.
        File.AppendAllText(Path.Combine(adhoc, "Contents", "Resources", "Defaults.plist"), " ");
        Assert.Equal(KextSignatureStatus.Invalid, Verify(adhoc, null).Status);
    }

    [Fact]
    public void Leaf_without_kext_signing_extension_is_valid_but_fails_the_kext_requirement()
    {
        using var pki = NewPki(kextSigning: false);
        using var tmp = new TempDir();
        var kext = WriteKext(tmp.Path);
        Sign(kext, pki);
        var r = Verify(kext, pki);
        Assert.True(r.Status == KextSignatureStatus.Valid, Codes(r));
        Assert.False(r.KextSigningAuthorized);
        Assert.False(r.RequirementSatisfied);
        Assert.Equal(RequirementOutcome.NotSatisfied, r.KextRequirement!.Outcome);
        Assert.Equal(RequirementOutcome.Satisfied, r.DesignatedRequirement!.Outcome);
    }

    [Fact]
    public void Apple_ids_are_held_to_anchor_apple_which_a_test_root_never_satisfies()
    {
        using var pki = NewPki();
        using var tmp = new TempDir();
        var kext = WriteKext(tmp.Path, "com.apple.driver.Fake");
        Sign(kext, pki);
        var r = Verify(kext, pki);
        Assert.Equal(KextSignatureStatus.Valid, r.Status);
        Assert.Equal("anchor apple", r.KextRequirement!.Requirement);
        Assert.False(r.RequirementSatisfied);
    }

    [Fact]
    public void No_header_room_fails_clearly_naming_the_file()
    {
        using var tmp = new TempDir();
        var bytes = new KextBinaryBuilder(MachOTargetArchitecture.X86_64, new byte[] { 0xC3 }) { HeaderPadding = 0 }.Build();
        var e = Assert.Throws<KextSigningException>(() => MachOSignatureWriter.Sign(bytes, "tight.bin", _ => []));
        Assert.Equal("tight.bin", e.PathName);
        Assert.Contains("no room for LC_CODE_SIGNATURE", e.Message);
    }

    [Fact]
    public void Llvm_objdump_reads_our_signed_slices_and_shows_LC_CODE_SIGNATURE_where_we_wrote_it()
    {
        using var pki = NewPki();
        using var tmp = new TempDir();
        var kext = WriteKext(tmp.Path);
        Sign(kext, pki);
        var exePath = Path.Combine(kext, "Contents", "MacOS", "driver");
        using var file = MachOFile.Open(exePath);
        Assert.True(file.IsFat);
        var output = ExternalTool.RunChecked(ExternalTool.LlvmObjdump, "--macho", "--private-headers", "--arch=all", exePath);
        var found = Regex.Matches(output, @"cmd LC_CODE_SIGNATURE\s+cmdsize 16\s+dataoff (\d+)\s+datasize (\d+)")
            .Select(m => (uint.Parse(m.Groups[1].Value), uint.Parse(m.Groups[2].Value))).ToArray();
        Assert.Equal(file.Slices.Select(s => (s.CodeSignature!.Value.DataOffset, s.CodeSignature.Value.DataSize)), found);
        foreach (var s in file.Slices)
        {
            var cs = s.CodeSignature!.Value;
            Assert.Equal(0u, cs.DataOffset % 16);
            var le = s.Segments.Single(x => x.Name == "__LINKEDIT");
            Assert.Equal(le.FileOffset + le.FileSize, (ulong)cs.DataOffset + cs.DataSize);
            Assert.Equal((long)cs.DataOffset + cs.DataSize, s.Size);
            Assert.True(le.VmSize >= le.FileSize);
        }
        // The fat header's offsets and sizes follow the grown slices.
        var fat = ExternalTool.RunChecked(ExternalTool.LlvmObjdump, "--macho", "--universal-headers", exePath);
        foreach (var s in file.Slices)
        {
            Assert.Contains($"offset {s.FileOffset}", fat);
            Assert.Contains($"size {s.Size}", fat);
        }
    }

    [Fact]
    public void Openssl_accepts_our_CMS_over_the_CodeDirectory()
    {
        using var pki = NewPki();
        using var tmp = new TempDir();
        var kext = WriteKext(Directory.CreateDirectory(tmp.Combine("k")).FullName);
        Sign(kext, pki);
        using var file = MachOFile.Open(Path.Combine(kext, "Contents", "MacOS", "driver"));
        var sig = EmbeddedSignature.Parse(file.Slices[1].CodeSignatureData, "arm64e");
        File.WriteAllBytes(tmp.Combine("cms.der"), sig.Signature!.CmsBytes.ToArray());
        File.WriteAllBytes(tmp.Combine("cd.bin"), sig.CodeDirectory.Bytes.ToArray());
        File.WriteAllText(tmp.Combine("root.pem"), pki.Root.ExportCertificatePem());
        string[] common = ["cms", "-verify", "-binary", "-inform", "DER", "-in", tmp.Combine("cms.der"), "-CAfile", tmp.Combine("root.pem"),
            "-purpose", "any", "-ignore_critical", "-attime", SigningTime.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture), "-out", "/dev/null"];
        var ok = ExternalTool.Run(ExternalTool.OpenSsl, [.. common, "-content", tmp.Combine("cd.bin")], stdin: null);
        Assert.True(ok.ExitCode == 0, ok.StdErr);
        // One bit of the CodeDirectory changed: openssl refuses, as we do.
        var cd = sig.CodeDirectory.Bytes.ToArray();
        cd[^1] ^= 1;
        File.WriteAllBytes(tmp.Combine("cd2.bin"), cd);
        var bad = ExternalTool.Run(ExternalTool.OpenSsl, [.. common, "-content", tmp.Combine("cd2.bin")], stdin: null);
        Assert.NotEqual(0, bad.ExitCode);
    }

    [Fact]
    public void Re_signing_reuses_the_load_command_and_stays_valid()
    {
        using var pki = NewPki();
        using var tmp = new TempDir();
        var kext = WriteKext(tmp.Path);
        Sign(kext, null);
        Sign(kext, pki);
        var r = Verify(kext, pki);
        Assert.True(r.Status == KextSignatureStatus.Valid, Codes(r));
        using var file = MachOFile.Open(Path.Combine(kext, "Contents", "MacOS", "driver"));
        Assert.All(file.Slices, s => Assert.Single(s.LoadCommands, c => c.Command == MachOLoadCommandType.CodeSignature));
    }
}

/// <summary>The per-run chain-verdict cache of <see cref="KextSignatureVerifier.VerifyMany"/> never lends one item's verdict to another.</summary>
public class ChainVerdictCacheTests
{
    private static readonly DateTimeOffset SigningTime = new(2025, 6, 1, 12, 0, 0, TimeSpan.Zero);

    private static TestPki NewPki(string team) => TestPki.Create(new TestPki.Options("Example Corp", team)
    {
        KextSigning = true,
        NotBefore = new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero),
    });

    private static void Sign(string kext, TestPki pki)
    {
        using var identity = KextSigningIdentity.Create(pki.Leaf, [pki.Intermediate, pki.Root]);
        KextSigner.Sign(kext, new KextSigningOptions { Identity = identity, SigningTime = SigningTime });
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void Items_sharing_or_not_sharing_a_leaf_each_get_their_own_verdict(int threads)
    {
        using var trusted = NewPki("KT4TEST001");
        using var other = NewPki("KT4TEST002");
        using var tmp = new TempDir();
        var good = KextSignerTests.WriteKext(Path.Combine(tmp.Path, "a"), "com.example.a");
        var foreign = KextSignerTests.WriteKext(Path.Combine(tmp.Path, "b"), "com.example.b");
        var tampered = KextSignerTests.WriteKext(Path.Combine(tmp.Path, "c"), "com.example.c");
        Sign(good, trusted);
        Sign(foreign, other);
        Sign(tampered, trusted); // same leaf, chain and signing time as 'good': its chain verdict is a cache hit
        var exe = KextBundle.Open(tampered).ExecutablePath!;
        var bytes = File.ReadAllBytes(exe);
        using (var file = MachOFile.FromBytes(bytes, exe))
        {
            var slice = file.Slices[0];
            bytes[slice.FileOffset + slice.CodeSignature!.Value.DataOffset - 1] ^= 0x01; // last hashed byte of the slice
        }
        File.WriteAllBytes(exe, bytes);

        var items = KextSignatureVerifier.VerifyMany([good, foreign, tampered, good],
            new KextSignatureVerifierOptions { TrustedTestRoot = trusted.Root, MaxDegreeOfParallelism = threads });

        Assert.Equal(KextSignatureStatus.Valid, items[0].Result!.Status);
        Assert.Equal(TrustAnchorKind.TestRoot, items[0].Result!.Anchor);
        Assert.Equal(KextSignatureStatus.Invalid, items[1].Result!.Status);
        Assert.True(items[1].Result!.Has(KextSignatureProblemCode.UntrustedRoot), string.Join("\n", items[1].Result!.Problems));
        Assert.Equal("KT4TEST002", items[1].Result!.TeamId);
        Assert.Equal(KextSignatureStatus.Invalid, items[2].Result!.Status);
        Assert.True(items[2].Result!.Has(KextSignatureProblemCode.CodePageHashMismatch), string.Join("\n", items[2].Result!.Problems));
        Assert.Equal(KextSignatureStatus.Valid, items[3].Result!.Status);
        Assert.Equal(items[0].Result!.Chain.Select(c => c.Sha256), items[3].Result!.Chain.Select(c => c.Sha256));
        Assert.NotEqual(items[0].Result!.Chain[0].Sha256, items[1].Result!.Chain[0].Sha256);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void One_leaf_signed_at_different_times_is_judged_at_each_time(int threads)
    {
        // A leaf valid for 30 days: signed twice inside that window (one verdict may serve both), a second before
        // and a second after its notAfter (each keyed exactly), and well after it.
        var notBefore = new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);
        using var pki = TestPki.Create(new TestPki.Options("Example Corp", "KT4TEST003") { NotBefore = notBefore, Validity = TimeSpan.FromDays(30) });
        var notAfter = pki.Leaf.NotAfter.ToUniversalTime();
        using var tmp = new TempDir();
        DateTimeOffset[] times =
        [
            notBefore.AddDays(3), notBefore.AddDays(20),
            new DateTimeOffset(notAfter).AddSeconds(-1), new DateTimeOffset(notAfter).AddSeconds(1), notBefore.AddDays(45),
        ];
        var kexts = times.Select((t, i) =>
        {
            var kext = KextSignerTests.WriteKext(Path.Combine(tmp.Path, $"k{i}"), $"com.example.k{i}");
            using var identity = KextSigningIdentity.Create(pki.Leaf, [pki.Intermediate, pki.Root]);
            KextSigner.Sign(kext, new KextSigningOptions { Identity = identity, SigningTime = t });
            return kext;
        }).ToArray();

        var items = KextSignatureVerifier.VerifyMany(kexts, new KextSignatureVerifierOptions { TrustedTestRoot = pki.Root, MaxDegreeOfParallelism = threads });

        Assert.Equal([true, true, true, false, false], items.Select(i => i.Result!.Status == KextSignatureStatus.Valid));
        Assert.All(items.Skip(3), i => Assert.True(i.Result!.Has(KextSignatureProblemCode.CertificateExpired), string.Join("\n", i.Result!.Problems)));
        Assert.All(items.Take(3), i => Assert.Empty(i.Result!.Problems));
    }
}

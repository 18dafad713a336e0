using KextTrust.Formats.MachO;
using KextTrust.Formats.PropertyLists;
using KextTrust.Kexts.Bundles;
using KextTrust.TestSupport;

namespace KextTrust.Kexts.Tests.Bundles;

public class KextBundleTests
{
    private static KextBundleSpec Sample(string id = "com.example.driver.Sample") => new(id, "1.2.3")
    {
        Libraries = new Dictionary<string, string> { ["com.apple.kpi.iokit"] = "20.0", ["com.apple.kpi.libkern"] = "20.0" },
        Slices = [new KextSliceSpec(MachOTargetArchitecture.X86_64, ["_IOLog", "__ZN9IOService5startEPS_"]),
                  new KextSliceSpec(MachOTargetArchitecture.Arm64e, ["_IOLog", "__ZN9IOService5startEPS_"])],
        OSBundleRequired = "Root",
        ExtraInfo = [new("IOKitPersonalities", new PlistDictionary(("SampleDriver", new PlistDictionary(("IOClass", new PlistString("SampleDriver"))))))],
    };

    [Fact]
    public void Reads_identity_libraries_executable_and_personalities()
    {
        using var tmp = new TempDir();
        var path = KextBundleWriter.Write(tmp.Path, Sample());
        var k = KextBundle.Open(path);

        Assert.Empty(k.Problems);
        Assert.Equal(KextBundleLayout.Contents, k.Layout);
        Assert.Equal("com.example.driver.Sample", k.BundleId);
        Assert.Equal(KextVersion.Parse("1.2.3"), k.Version);
        Assert.Equal("Root", k.OSBundleRequired);
        Assert.False(k.IsCodeless);
        Assert.True(k.HasExecutable);
        Assert.Equal(Path.Combine(path, "Contents", "MacOS", "Sample"), k.ExecutablePath);
        Assert.Equal(["com.apple.kpi.iokit", "com.apple.kpi.libkern"], k.Libraries.Select(l => l.BundleId));
        Assert.All(k.Libraries, l => Assert.Equal(KextVersion.Parse("20.0"), l.Version));
        Assert.Equal(["SampleDriver"], k.PersonalityNames);

        using var exe = MachOFile.Open(k.ExecutablePath!);
        Assert.True(exe.IsFat);
        Assert.Equal(["x86_64", "arm64e"], exe.Slices.Select(s => s.Architecture));
        Assert.All(exe.Slices, s => Assert.Equal(MachOFileType.KextBundle, s.FileType));
        Assert.All(exe.Slices, s => Assert.Equal(["_IOLog", "__ZN9IOService5startEPS_"], s.UndefinedSymbols));
    }

    [Fact]
    public void Reads_the_flat_layout_and_codeless_kexts()
    {
        using var tmp = new TempDir();
        var flat = KextBundleWriter.Write(tmp.Path, Sample() with { FlatLayout = true });
        var k = KextBundle.Open(flat);
        Assert.Empty(k.Problems);
        Assert.Equal(KextBundleLayout.Flat, k.Layout);
        Assert.Equal(Path.Combine(flat, "Sample"), k.ExecutablePath);

        var codeless = KextBundleWriter.Write(tmp.Path, new KextBundleSpec("com.example.Codeless", "1.0"));
        var c = KextBundle.Open(codeless);
        Assert.Empty(c.Problems);
        Assert.True(c.IsCodeless);
        Assert.False(c.HasExecutable);
    }

    [Fact]
    public void Reads_nested_plugins()
    {
        using var tmp = new TempDir();
        var spec = Sample() with { PlugIns = [Sample("com.example.driver.Sample.Plugin") with { PlugIns = [new KextBundleSpec("com.example.driver.Sample.Plugin.Inner", "1.0")] }] };
        var k = KextBundle.Open(KextBundleWriter.Write(tmp.Path, spec));
        Assert.Equal(["com.example.driver.Sample", "com.example.driver.Sample.Plugin", "com.example.driver.Sample.Plugin.Inner"],
            k.SelfAndPlugIns().Select(b => b.BundleId));
    }

    [Fact]
    public void A_missing_executable_is_a_problem_not_a_crash()
    {
        using var tmp = new TempDir();
        var path = KextBundleWriter.Write(tmp.Path, Sample());
        File.Delete(Path.Combine(path, "Contents", "MacOS", "Sample"));
        var k = KextBundle.Open(path);
        Assert.False(k.HasExecutable);
        Assert.Contains(k.Problems, p => p.Code == KextProblemCode.ExecutableMissing);
    }

    [Fact]
    public void A_plist_that_is_not_a_dictionary_is_a_problem()
    {
        using var tmp = new TempDir();
        var path = KextBundleWriter.Write(tmp.Path, Sample());
        File.WriteAllBytes(Path.Combine(path, "Contents", "Info.plist"), PropertyList.ToXml(new PlistArray(new PlistString("x"))));
        var k = KextBundle.Open(path);
        Assert.Equal([KextProblemCode.InfoPlistNotDictionary], k.Problems.Select(p => p.Code));
        Assert.Null(k.BundleId);
    }

    [Fact]
    public void A_malformed_plist_is_a_problem_naming_the_file()
    {
        using var tmp = new TempDir();
        var path = KextBundleWriter.Write(tmp.Path, Sample());
        var info = Path.Combine(path, "Contents", "Info.plist");
        File.WriteAllText(info, "<plist><dict><key>CFBundleIdentifier</key>");
        var k = KextBundle.Open(path);
        var p = Assert.Single(k.Problems);
        Assert.Equal(KextProblemCode.InfoPlistUnreadable, p.Code);
        Assert.Contains(info, p.Message);
    }

    [Fact]
    public void Invalid_versions_are_problems()
    {
        using var tmp = new TempDir();
        var path = KextBundleWriter.Write(tmp.Path, Sample() with { CompatibleVersion = "2.0", Libraries = new Dictionary<string, string> { ["com.apple.kpi.bsd"] = "banana" } });
        var k = KextBundle.Open(path);
        Assert.Contains(k.Problems, p => p.Code == KextProblemCode.CompatibleVersionInvalid); // 2.0 > 1.2.3
        Assert.Contains(k.Problems, p => p.Code == KextProblemCode.LibraryVersionInvalid);
    }

    [Fact]
    public void A_symlink_leaving_the_bundle_is_reported_and_not_followed()
    {
        if (OperatingSystem.IsWindows())
        {
            return; // creating symlinks needs privileges there
        }
        using var tmp = new TempDir();
        var path = KextBundleWriter.Write(tmp.Path, Sample());
        var secret = Path.Combine(tmp.Path, "outside.txt");
        File.WriteAllText(secret, "not part of the kext");
        File.CreateSymbolicLink(Path.Combine(path, "Contents", "Resources.txt"), "../../outside.txt");
        var exe = Path.Combine(path, "Contents", "MacOS", "Sample");
        File.Delete(exe);
        File.CreateSymbolicLink(exe, "/etc/hostname");
        var inside = Path.Combine(path, "Contents", "inside-link");
        File.CreateSymbolicLink(inside, "Info.plist");

        var k = KextBundle.Open(path);
        var escaping = k.Problems.Where(p => p.Code == KextProblemCode.SymlinkEscapesBundle).Select(p => p.Path).ToArray();
        Assert.Contains(Path.Combine(path, "Contents", "Resources.txt"), escaping);
        Assert.Contains(exe, escaping);
        Assert.DoesNotContain(inside, escaping);
        Assert.Contains(k.Problems, p => p.Code == KextProblemCode.RequiredFileIsEscapingLink && p.Path == exe);
        Assert.False(k.HasExecutable);
    }

    [Fact]
    public void Keeps_the_Info_plist_bytes_it_parsed_and_none_it_could_not()
    {
        using var tmp = new TempDir();
        var path = KextBundleWriter.Write(tmp.Path, Sample());
        var info = Path.Combine(path, "Contents", "Info.plist");
        var k = KextBundle.Open(path);
        var bytes = File.ReadAllBytes(info);
        Assert.True(k.InfoPlistBytes!.Value.Span.SequenceEqual(bytes));
        Assert.Equal(k.InfoPlist, PropertyList.Parse(k.InfoPlistBytes.Value.Span));

        // The file changes after the bundle was opened: the bundle keeps what it read.
        File.WriteAllText(info, "<plist version=\"1.0\"><dict/></plist>");
        Assert.True(k.InfoPlistBytes.Value.Span.SequenceEqual(bytes));

        File.WriteAllText(info, "not a property list");
        Assert.Null(KextBundle.Open(path).InfoPlistBytes);
        File.Delete(info);
        Assert.Null(KextBundle.Open(path).InfoPlistBytes);
    }

    [Fact]
    public void Opening_a_missing_path_or_a_file_throws_a_typed_exception()
    {
        using var tmp = new TempDir();
        Assert.Throws<KextBundleException>(() => KextBundle.Open(tmp.Combine("nope.kext")));
        var file = tmp.Combine("file.kext");
        File.WriteAllText(file, "x");
        var ex = Assert.Throws<KextBundleException>(() => KextBundle.Open(file));
        Assert.Contains("not a folder", ex.Message);
    }

    [Fact]
    public void Discovery_finds_kexts_inside_apps_filesystems_and_folders_but_not_plugins_or_links()
    {
        using var tmp = new TempDir();
        var le = Directory.CreateDirectory(tmp.Combine("Library", "Extensions")).FullName;
        var a = KextBundleWriter.Write(le, Sample("com.example.A") with { PlugIns = [Sample("com.example.A.Plugin")] });
        var appExt = Directory.CreateDirectory(tmp.Combine("Applications", "Tool.app", "Contents", "Library", "Extensions")).FullName;
        var b = KextBundleWriter.Write(appExt, Sample("com.example.B"));
        var fsExt = Directory.CreateDirectory(tmp.Combine("Library", "Filesystems", "foo.fs", "Contents", "Extensions", "11")).FullName;
        var c = KextBundleWriter.Write(fsExt, Sample("com.example.C"));
        if (!OperatingSystem.IsWindows())
        {
            Directory.CreateSymbolicLink(tmp.Combine("loop"), tmp.Path); // a loop must not hang the scan
        }

        var found = KextDiscovery.FindKexts(tmp.Path);
        Assert.Equal(new[] { a, b, c }.Order(StringComparer.Ordinal), found);
    }
}

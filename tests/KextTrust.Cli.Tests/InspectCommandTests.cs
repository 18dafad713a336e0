using System.Text.Json;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Bundles;
using KextTrust.TestSupport;

namespace KextTrust.Cli.Tests;

public class InspectCommandTests
{
    /// <summary>The report as the JSON writes it: the slice's file type and platform (enum names) in kebab-case.</summary>
    private static KextTrust.Kexts.Inspection.InspectReport KebabEnums(KextTrust.Kexts.Inspection.InspectReport r) => r with
    {
        Plugins = [.. r.Plugins.Select(KebabEnums)],
        Slices = [.. r.Slices.Select(s => s with { FileType = JsonNamingPolicy.KebabCaseLower.ConvertName(s.FileType), Platform = s.Platform is null ? null : JsonNamingPolicy.KebabCaseLower.ConvertName(s.Platform) })],
    };

    [Fact]
    public void Json_describes_a_kext_bundle()
    {
        using var tmp = new TempDir();
        var path = KextBundleWriter.Write(tmp.Path, new KextBundleSpec("com.example.Net", "2.0.1")
        {
            Libraries = new Dictionary<string, string> { ["com.apple.kpi.bsd"] = "19.0" },
            Slices = [new KextSliceSpec(MachOTargetArchitecture.Arm64e, ["_sock_socket", "_IOLog"]) { MinOS = MachOVersion.Create(11, 0) }],
            PlugIns = [new KextBundleSpec("com.example.Net.Helper", "1.0")],
        });

        var r = CliRunner.Run("inspect", path, "--json");
        Assert.Equal(0, r.ExitCode);
        using var doc = JsonDocument.Parse(r.StdOut);
        var k = doc.RootElement[0];
        Assert.Equal("com.example.Net", k.GetProperty("bundleId").GetString());
        Assert.Equal("2.0.1", k.GetProperty("version").GetString());
        Assert.Equal("Contents/MacOS/Net", k.GetProperty("executable").GetString());
        Assert.Equal("19.0", k.GetProperty("libraries").GetProperty("com.apple.kpi.bsd").GetString());
        Assert.Equal("com.example.Net.Helper", k.GetProperty("plugins")[0].GetProperty("bundleId").GetString());
        var slice = k.GetProperty("slices")[0];
        Assert.Equal("arm64e", slice.GetProperty("arch").GetString());
        Assert.Equal("kext-bundle", slice.GetProperty("fileType").GetString());
        Assert.Equal("11.0.0", slice.GetProperty("minOS").GetString());
        Assert.Equal(["_IOLog", "_sock_socket"], slice.GetProperty("undefinedSymbols").EnumerateArray().Select(e => e.GetString()));
        Assert.False(slice.GetProperty("codeSignature").GetProperty("present").GetBoolean());
        Assert.Matches("^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$", slice.GetProperty("uuid").GetString());
    }

    [Fact]
    public void Json_reads_a_real_developer_id_signed_binary()
    {
        var file = Corpus.RuntimePackMachOFiles().First(f => f.Contains("osx-arm64") && f.EndsWith("libSystem.Native.dylib"));
        var r = CliRunner.Run("inspect", file, "--json");
        Assert.Equal(0, r.ExitCode);
        using var doc = JsonDocument.Parse(r.StdOut);
        var slice = doc.RootElement[0].GetProperty("slices")[0];
        Assert.Equal("arm64", slice.GetProperty("arch").GetString());
        Assert.Equal("dylib", slice.GetProperty("fileType").GetString());
        var sig = slice.GetProperty("codeSignature");
        Assert.True(sig.GetProperty("present").GetBoolean());
        Assert.Equal("UBF8T346G9", sig.GetProperty("teamId").GetString());
        Assert.True(sig.GetProperty("hasCms").GetBoolean());
        Assert.Equal(40, sig.GetProperty("cdHash").GetString()!.Length);
    }

    [Fact]
    public void A_folder_is_searched_for_kexts_and_shown_as_a_table()
    {
        using var tmp = new TempDir();
        KextBundleWriter.Write(tmp.Path, new KextBundleSpec("com.example.One", "1.0") { Slices = [new KextSliceSpec(MachOTargetArchitecture.X86_64, ["_IOLog"])] });
        KextBundleWriter.Write(tmp.Path, new KextBundleSpec("com.example.Two", "2.0"));
        var r = CliRunner.Run("inspect", tmp.Path);
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("com.example.One", r.StdOut);
        Assert.Contains("x86_64", r.StdOut);
        Assert.Contains("com.example.Two", r.StdOut);
        Assert.Contains("codeless", r.StdOut);
    }

    [Fact]
    public void Unreadable_input_exits_2_with_the_reason_on_stderr()
    {
        using var tmp = new TempDir();
        var missing = CliRunner.Run("inspect", tmp.Combine("nothing-here"));
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("no such file or folder", missing.StdErr);

        var bad = tmp.Combine("bad.dylib");
        File.WriteAllBytes(bad, [0xCF, 0xFA, 0xED, 0xFE, 0x07, 0x00, 0x00, 0x01]);
        var truncated = CliRunner.Run("inspect", bad, "--json");
        Assert.Equal(2, truncated.ExitCode);
        Assert.Contains("bad.dylib", truncated.StdErr);
        Assert.Contains("offset", truncated.StdErr);
        // Malformed further on, but Mach-O by its magic.
        using (var doc = JsonDocument.Parse(truncated.StdOut))
        {
            Assert.Equal("macho", doc.RootElement[0].GetProperty("kind").GetString());
        }
    }

    [Theory]
    [InlineData("text.txt", new byte[] { 0x68, 0x65, 0x6C, 0x6C, 0x6F, 0x0A })]
    [InlineData("short.bin", new byte[] { 0xCF, 0xFA })]
    [InlineData("elf.so", new byte[] { 0x7F, 0x45, 0x4C, 0x46, 0x02, 0x01, 0x01, 0x00 })]
    public void A_file_that_is_not_Mach_O_is_labelled_so_and_named_once(string name, byte[] bytes)
    {
        using var tmp = new TempDir();
        var path = tmp.Combine(name);
        File.WriteAllBytes(path, bytes);
        var r = CliRunner.Run("inspect", path, "--json");
        Assert.Equal(2, r.ExitCode);
        using var doc = JsonDocument.Parse(r.StdOut);
        Assert.Equal("not-macho", doc.RootElement[0].GetProperty("kind").GetString());
        var error = doc.RootElement[0].GetProperty("error").GetString()!;
        Assert.Equal(error.IndexOf(path, StringComparison.Ordinal), error.LastIndexOf(path, StringComparison.Ordinal));
    }

    [Fact]
    public void Help_and_version_work()
    {
        var help = CliRunner.Run("inspect", "--help");
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("--json", help.StdOut);
        var version = CliRunner.Run("--version");
        Assert.Equal(0, version.ExitCode);
        Assert.Matches(@"\d+\.\d+\.\d+", version.StdOut);
    }

    [Fact]
    public void Streamed_json_is_what_the_reflection_serializer_writes_for_the_same_reports()
    {
        using var tmp = new TempDir();
        KextBundleWriter.Write(tmp.Path, new KextBundleSpec("com.example.Fat", "3.1")
        {
            Libraries = new Dictionary<string, string> { ["com.apple.kpi.bsd"] = "19.0", ["com.apple.kpi.iokit"] = "19.0" },
            Slices =
            [
                new KextSliceSpec(MachOTargetArchitecture.X86_64, ["_sock_socket", "_IOLog", "_caf\u00e9"]),
                new KextSliceSpec(MachOTargetArchitecture.Arm64e, ["_IOLog"]),
            ],
            PlugIns = [new KextBundleSpec("com.example.Fat.Helper", "1.0") { Slices = [new KextSliceSpec(MachOTargetArchitecture.X86_64, ["_IOLog"])] }],
        });
        KextBundleWriter.Write(tmp.Path, new KextBundleSpec("com.example.Codeless \"quoted\" <b>", "1.0"));
        // Symbols written from their UTF-8 bytes must come out as their strings would: escapes, non-ASCII, and
        // ill-formed bytes (the strings hold U+FFFD, written raw, where the writer would escape it).
        var odd = KextBundleWriter.Write(tmp.Path, new KextBundleSpec("com.example.Odd", "1.0")
        {
            Slices = [new KextSliceSpec(MachOTargetArchitecture.X86_64, ["_a\"b\\c<>&'", "_\u2028\U0001F600\uE000", "_tab\tx"])],
        });
        var bad = KextBundleWriter.Write(tmp.Path, new KextBundleSpec("com.example.IllFormed", "1.0")
        {
            Slices = [new KextSliceSpec(MachOTargetArchitecture.X86_64, ["_IOLog", "_x_marks"])],
        });
        var badExe = KextBundle.Open(bad).ExecutablePath!;
        var exeBytes = File.ReadAllBytes(badExe);
        exeBytes[exeBytes.AsSpan().IndexOf("_x_marks\0"u8) + 1] = 0xFF;
        File.WriteAllBytes(badExe, exeBytes);
        Assert.Contains("_\uFFFD_marks", KextTrust.Kexts.Inspection.KextInspector.InspectPath(bad)[0].Slices[0].UndefinedSymbols);
        Assert.Contains("_\u2028\U0001F600\uE000", KextTrust.Kexts.Inspection.KextInspector.InspectPath(odd)[0].Slices[0].UndefinedSymbols);
        var broken = Directory.CreateDirectory(tmp.Combine("Broken.kext", "Contents")).FullName;
        File.WriteAllText(Path.Combine(broken, "Info.plist"), "not a plist");
        var signed = Corpus.RuntimePackMachOFiles().First(f => f.Contains("osx-arm64") && f.EndsWith("libSystem.Native.dylib"));

        foreach (var input in new[] { tmp.Path, signed })
        {
            var expected = JsonSerializer.Serialize(KextTrust.Kexts.Inspection.KextInspector.InspectPath(input).Select(KebabEnums).ToArray(), CliJsonReflectionOracleTests.Reflection) + Environment.NewLine;
            var r = CliRunner.Run("inspect", input, "--json");
            Assert.Equal(expected, r.StdOut);
        }
    }
}

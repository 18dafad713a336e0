using System.Collections;
using System.Reflection;
using System.Text.Json.Serialization;

namespace KextTrust.Cli.Tests;

/// <summary>
/// The command-line JSON runs on source-generated metadata only (Native AOT): every enum a document can hold needs
/// its kebab-case converter listed, and every record a command writes needs its context entry.
/// </summary>
public sealed class CliJsonContextTests
{
    [Fact]
    public void Every_enum_that_a_command_document_reaches_is_written_in_kebab_case()
    {
        var roots = new[] { typeof(VerifyJsonContext), typeof(BootJsonContext), typeof(CliJsonContext) }
            .SelectMany(c => c.GetCustomAttributesData())
            .Where(a => a.AttributeType == typeof(JsonSerializableAttribute))
            .Select(a => (Type)a.ConstructorArguments[0].Value!)
            .ToArray();
        Assert.True(roots.Length >= 15, $"found {roots.Length} root types");
        var enums = Reachable(roots).Where(t => t.IsEnum).OrderBy(t => t.FullName, StringComparer.Ordinal).ToArray();
        var converters = CliJsonContext.EnumConverters;
        var missing = enums.Where(e => !converters.Any(c => c.CanConvert(e))).Select(e => e.FullName).ToArray();
        Assert.True(missing.Length == 0, "enums without a kebab-case converter: " + string.Join(", ", missing));
        // Each converter serves exactly one enum that a document holds (a stale entry hides a renamed type).
        Assert.All(converters, c => Assert.Single(enums, c.CanConvert));
    }

    private static HashSet<Type> Reachable(IEnumerable<Type> roots)
    {
        var seen = new HashSet<Type>();
        var queue = new Queue<Type>(roots);
        while (queue.TryDequeue(out var t))
        {
            t = Nullable.GetUnderlyingType(t) ?? t;
            if (!seen.Add(t) || t.IsPrimitive || t == typeof(string) || t.Namespace?.StartsWith("System", StringComparison.Ordinal) == true && !t.IsGenericType && !t.IsArray)
            {
                continue;
            }
            if (t.IsArray)
            {
                queue.Enqueue(t.GetElementType()!);
                continue;
            }
            if (t.IsGenericType)
            {
                foreach (var g in t.GetGenericArguments())
                {
                    queue.Enqueue(g);
                }
                if (typeof(IEnumerable).IsAssignableFrom(t))
                {
                    continue;
                }
            }
            if (t.IsEnum)
            {
                continue;
            }
            foreach (var p in t.GetProperties(BindingFlags.Public | BindingFlags.Instance))
            {
                if (p.GetIndexParameters().Length == 0 && p.GetCustomAttribute<JsonIgnoreAttribute>() is null)
                {
                    queue.Enqueue(p.PropertyType);
                }
            }
        }
        return seen;
    }
}

/// <summary>
/// The documents written from source-generated metadata are the bytes the reflection-based serializer writes with the
/// same settings: each command's output, read back and written again by reflection, comes out unchanged.
/// </summary>
public sealed class CliJsonReflectionOracleTests : IDisposable
{
    private const string Team = "ABCDE12345";
    private readonly ConsentCliFixture _f = new() { Verifier = new ConsentFixtureVerifier() };

    public void Dispose() => _f.Dispose();

    /// <summary>The oracle: the reflection-based serializer with the command-line JSON settings.</summary>
    internal static readonly System.Text.Json.JsonSerializerOptions Reflection = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.CamelCase,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Converters = { new JsonStringEnumConverter(System.Text.Json.JsonNamingPolicy.KebabCaseLower) },
        TypeInfoResolver = new System.Text.Json.Serialization.Metadata.DefaultJsonTypeInfoResolver(),
    };

    private static void AssertReflectionWritesTheSame<T>(CliRunner.Result r)
    {
        // Exit 1 is a verdict (e.g. why: blocked), not a failure to write the document.
        Assert.True(r.ExitCode is 0 or 1 && r.StdOut.Length > 0, r.StdErr);
        var value = System.Text.Json.JsonSerializer.Deserialize<T>(r.StdOut, Reflection);
        Assert.NotNull(value);
        Assert.Equal(r.StdOut, System.Text.Json.JsonSerializer.Serialize(value, Reflection) + Environment.NewLine);
    }

    [Fact]
    public void Consent_and_machine_documents()
    {
        _f.Verifier!.Facts["com.example.driver"] = ConsentFixtureVerifier.Signed(Team);
        _f.Init("11.7", "intel", "--mdm", "user-approved");
        var kext = _f.Kext("com.example.driver");
        AssertReflectionWritesTheSame<InstallItemJson[]>(_f.K("install", kext, "--json"));
        AssertReflectionWritesTheSame<WhyJson>(_f.K("why", "com.example.driver", "--json"));
        Assert.Equal(0, _f.K("mdm", "push", _f.Profile("11111111-2222-3333-4444-555555555555",
            $"<key>AllowedTeamIdentifiers</key><array><string>{Team}</string></array>")).ExitCode);
        AssertReflectionWritesTheSame<KextTrust.Consent.Mdm.MdmProfile[]>(_f.K("profiles", "list", "--json"));
        AssertReflectionWritesTheSame<MachineShowJson>(_f.K("machine", "show", "--json"));
        AssertReflectionWritesTheSame<KextPolicyJson>(_f.K("kextpolicy", "show", "--json"));
    }

    [Fact]
    public void Signing_and_demo_documents()
    {
        Assert.Equal(0, _f.Raw("pki", "init", _f.Temp.Combine("pki")).ExitCode);
        var kext = CodesignCommandTests.WriteKext(_f.Temp.Path);
        AssertReflectionWritesTheSame<KextTrust.Kexts.Signing.KextSigningResult[]>(
            _f.Raw("codesign", kext, "--p12", _f.Temp.Combine("pki", "leaf.p12"), "--password", "kextrust", "--sha1", "--json"));
        AssertReflectionWritesTheSame<VerifyItemJson[]>(_f.Raw("verify", kext, "--trust-root", _f.Temp.Combine("pki", "root.pem"), "--json"));
        AssertReflectionWritesTheSame<KextTrust.Boot.SecureBoot.DemoReport>(_f.Raw("demo", "--json"));
    }

    [Fact]
    public void Verify_document_with_problems_nested_items_and_an_unreadable_input()
    {
        // The verify report is written field by field (VerifyJsonWriter): every kind of field must come out as the
        // serializer writes it. A signed kext with a plug-in (nested) and a changed resource (a problem with a path),
        // Microsoft's libhostfxr with a flipped page byte (a problem with arch and offset), and a missing path.
        Assert.Equal(0, _f.Raw("pki", "init", _f.Temp.Combine("pki")).ExitCode);
        var kext = CodesignCommandTests.WriteKext(_f.Temp.Path);
        Assert.Equal(0, _f.Raw("codesign", kext, "--p12", _f.Temp.Combine("pki", "leaf.p12"), "--password", "kextrust").ExitCode);
        File.AppendAllText(Path.Combine(kext, "Contents", "Resources", "readme.txt"), "changed\n");
        var source = KextTrust.TestSupport.Corpus.RuntimePackMachOFiles().First(f => f.EndsWith("libhostfxr.dylib", StringComparison.Ordinal));
        var bytes = File.ReadAllBytes(source);
        bytes[KextTrust.Formats.MachO.MachOFile.FromBytes(bytes).Slices[0].FileOffset + 4096 + 7] ^= 0x01;
        var dylib = _f.Temp.Combine("libhostfxr.dylib");
        File.WriteAllBytes(dylib, bytes);

        var r = _f.Raw("verify", kext, dylib, _f.Temp.Combine("missing"), "--trust-root", _f.Temp.Combine("pki", "root.pem"), "--json");

        Assert.True(r.ExitCode == 2, r.StdErr); // an unreadable input
        var value = System.Text.Json.JsonSerializer.Deserialize<VerifyItemJson[]>(r.StdOut, Reflection)!;
        Assert.Equal(r.StdOut, System.Text.Json.JsonSerializer.Serialize(value, Reflection) + Environment.NewLine);
        Assert.Equal(3, value.Length);
        Assert.Contains(value[0].Problems, p => p.Path is not null && p.Offset is null);
        Assert.NotEmpty(value[0].Nested);
        Assert.Contains(value[1].Problems, p => p.Code == KextTrust.Kexts.Signing.KextSignatureProblemCode.CodePageHashMismatch && p.Offset is not null && p.Arch is not null);
        Assert.NotEmpty(value[1].Slices[0].CdHashes);
        Assert.Equal("unreadable", value[2].Status);
        Assert.NotNull(value[2].Error);
    }
}

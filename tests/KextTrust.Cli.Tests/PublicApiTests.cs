using System.Reflection;
using KextTrust.TestSupport;

namespace KextTrust.Cli.Tests;

/// <summary>
/// Each project's public surface is deliberate: what the CLI or a higher project uses and what a library user of that
/// layer needs; everything else is internal (the test projects see internals through InternalsVisibleTo). The exported
/// types and members of every assembly are compared with <c>tests/PublicApi/&lt;assembly&gt;.txt</c>.
/// </summary>
public sealed class PublicApiTests
{
    /// <summary>Set to 1 to rewrite the baselines from the current build instead of comparing.</summary>
    public const string WriteVariable = "KEXTRUST_WRITE_PUBLIC_API";

    private const string Regenerate = $"{WriteVariable}=1 dotnet test tests/KextTrust.Cli.Tests --filter PublicApi";

    public static TheoryData<string> Assemblies => new()
    {
        "KextTrust.Formats", "KextTrust.Kexts", "KextTrust.Machine", "KextTrust.Consent", "KextTrust.Boot", "kextrust",
    };

    private static string BaselinePath(string assembly) => Path.Combine(Corpus.RepositoryRoot, "tests", "PublicApi", assembly + ".txt");

    [Theory]
    [MemberData(nameof(Assemblies))]
    public void Public_surface_matches_the_committed_baseline(string assemblyName)
    {
        var current = PublicApiListing.Lines(Assembly.Load(new AssemblyName(assemblyName)));
        var path = BaselinePath(assemblyName);
        if (Environment.GetEnvironmentVariable(WriteVariable) == "1")
        {
            File.WriteAllLines(path, current);
            return;
        }
        var baseline = File.Exists(path) ? File.ReadAllLines(path) : [];
        var added = current.Except(baseline, StringComparer.Ordinal).ToArray();
        var removed = baseline.Except(current, StringComparer.Ordinal).ToArray();
        if (added.Length == 0 && removed.Length == 0)
        {
            return;
        }
        Assert.Fail(
            $"The public surface of {assemblyName} differs from tests/PublicApi/{assemblyName}.txt.\n" +
            "Keep a type or member public only if the CLI or a higher project uses it, or a library user of this layer needs it " +
            "(an entry point, its result, its exception); otherwise make it internal (the test projects see internals).\n" +
            $"If the change is intended, regenerate the baselines and commit tests/PublicApi/:\n    {Regenerate}\n" +
            (added.Length > 0 ? $"now public, not in the baseline ({added.Length}):\n+ " + string.Join("\n+ ", added.Take(60)) + (added.Length > 60 ? "\n+ …" : "") + "\n" : "") +
            (removed.Length > 0 ? $"in the baseline, no longer public ({removed.Length}):\n- " + string.Join("\n- ", removed.Take(60)) + (removed.Length > 60 ? "\n- …" : "") + "\n" : ""));
    }

    [Fact]
    public void The_command_line_tool_exports_nothing() =>
        // kextrust is an executable: its commands, JSON records and helpers are internal (Cli.Tests sees them).
        Assert.Empty(Assembly.Load(new AssemblyName("kextrust")).GetExportedTypes());

    [Fact]
    public void The_listing_names_public_types_and_members_and_leaves_internal_ones_out()
    {
        var lines = PublicApiListing.Lines(typeof(KextTrust.Machine.CsrConfig).Assembly);
        Assert.Contains("type KextTrust.Machine.CsrConfig : flags enum : uint", lines);
        Assert.Contains("  KextTrust.Machine.CsrConfig::Disabled = 3711", lines);
        Assert.Contains(lines, l => l.StartsWith("  KextTrust.Machine.MachineDescription::CsrActiveConfig : KextTrust.Machine.CsrConfig { get; init; }", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("  KextTrust.Machine.CsrConfigs::static Sip0(this KextTrust.Machine.CsrConfig)", StringComparison.Ordinal));
        // Internal types (the physical file system) and internal members (the store's lock file name) are not surface.
        Assert.DoesNotContain(lines, l => l.Contains("PhysicalFileSystem", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("LockFileName", StringComparison.Ordinal));
        Assert.Equal(lines.Order(StringComparer.Ordinal).Where(l => l.StartsWith("type ", StringComparison.Ordinal)),
            lines.Where(l => l.StartsWith("type ", StringComparison.Ordinal)));
    }
}

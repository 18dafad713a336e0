using System.Text.Encodings.Web;
using System.Text.Json;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Audit;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;
using KextTrust.TestSupport;

namespace KextTrust.Cli.Tests;

/// <summary>
/// <c>audit --json</c> is streamed by <see cref="AuditJson"/>; it must print what the command printed before, when it
/// projected each report into dictionaries and serialized them by reflection. That projection is kept here as the oracle.
/// </summary>
public sealed class AuditJsonOracleTests
{
    private static readonly JsonSerializerOptions Options = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    [Theory]
    [InlineData()]
    [InlineData("--signatures")]
    [InlineData("--sip-disabled", "--mdm-approved")]
    [InlineData("--macos", "11", "--platform", "apple-silicon")]
    public void Streamed_json_equals_the_reflection_serialized_projection(params string[] flags)
    {
        using var tmp = new TempDir();
        KextBundleWriter.Write(tmp.Path, new KextBundleSpec("com.example.Kauth", "1.0")
        {
            Libraries = new Dictionary<string, string> { ["com.apple.kpi.bsd"] = "19.0", ["com.apple.kpi.libkern"] = "19.0" },
            Slices = [new KextSliceSpec(MachOTargetArchitecture.X86_64, ["_kauth_listen_scope", "_kauth_cred_getuid", "_sock_socket", "_IOLog"])],
        });
        KextBundleWriter.Write(tmp.Path, new KextBundleSpec("com.example.Usb", "2.0")
        {
            Libraries = new Dictionary<string, string>
            {
                ["com.apple.kpi.iokit"] = "19.0", ["com.apple.iokit.IOUSBFamily"] = "1.0", ["com.apple.iokit.IONetworkingFamily"] = "1.0",
                ["com.example.unknown"] = "1.0", ["com.apple.kpi.bogus"] = "1.0",
            },
            Slices =
            [
                new KextSliceSpec(MachOTargetArchitecture.X86_64, ["__ZN11IOUSBDevice4openEv", "__ZN12IOUserClient5startEv", "__ZN9IOService5startEPS_", "_ipf_addv4", "__ZN3Foo3barEv"]),
                new KextSliceSpec(MachOTargetArchitecture.Arm64e, ["__ZN11IOUSBDevice4openEv", "_sflt_register"]),
            ],
            PlugIns =
            [
                new KextBundleSpec("com.example.Usb.Plug", "1.0")
                {
                    Libraries = new Dictionary<string, string> { ["com.example.Kauth"] = "1.0", ["com.apple.kpi.libkern"] = "8.0" },
                    Slices = [new KextSliceSpec(MachOTargetArchitecture.X86_64, ["_IOLog", "_nothing_here"])],
                },
            ],
        });
        KextBundleWriter.Write(tmp.Path, new KextBundleSpec("com.example.Codeless", "1.0") { Libraries = new Dictionary<string, string> { ["com.apple.kpi.iokit"] = "x.y" } });
        KextBundleWriter.Write(tmp.Path, new KextBundleSpec("com.example.Pci", "1.0")
        {
            CompatibleVersion = "1.0",
            Libraries = new Dictionary<string, string> { ["com.apple.iokit.IOPCIFamily"] = "1.0", ["com.apple.iokit.IONetworkingFamily"] = "1.0", ["com.apple.kernel"] = "20.0" },
            Slices = [new KextSliceSpec(MachOTargetArchitecture.Arm64, ["__ZN11IOPCIDevice4openEv", "_gLoadedKextSummaries", "_IOLog"])],
        });
        var notAKext = Corpus.RuntimePackMachOFiles().First(f => f.EndsWith("libSystem.Native.dylib"));

        var r = CliRunner.Run(["audit", "--json", notAKext, tmp.Path, .. flags]);

        var options = new KextAuditOptions
        {
            Enforcement = new KpiEnforcementContext(flags.Contains("--sip-disabled"), flags.Contains("--mdm-approved")),
            ReadSignaturePresence = flags.Contains("--signatures"),
            VerifySignatures = flags.Contains("--signatures") ? new KextTrust.Kexts.Signing.KextSignatureVerifierOptions { MaxDegreeOfParallelism = 1 } : null,
        };
        if (flags.Contains("--macos"))
        {
            options = options with { Releases = [MacOSRelease.Parse("11")], Platforms = [MacPlatform.AppleSilicon] };
        }
        var auditor = new KextAuditor(KpiCatalog.Load(), options);
        var reports = new[] { auditor.AuditFile(notAKext) }.Concat(auditor.AuditMany(auditor.OpenBundles(tmp.Path)));
        Assert.Equal(JsonSerializer.Serialize(reports.Select(Project).ToArray(), Options) + Environment.NewLine, r.StdOut);
        Assert.Contains("\"KPI-USB-NETWORKING\"", r.StdOut); // the fixtures exercise findings, plug-ins and assumed symbols
        Assert.Contains("\"assumedSymbols\": [\n      {", r.StdOut);
    }

    private static Dictionary<string, object?> Project(KextAuditReport r)
    {
        var releases = r.Verdicts.Select(v => v.Release).Distinct().ToArray();
        var newest = releases.Length > 0 ? releases.Max()! : MacOSRelease.All[^1];
        return new Dictionary<string, object?>
        {
            ["path"] = r.Path,
            ["kind"] = r.Kind switch { KextAuditSubjectKind.Kext => "kext", KextAuditSubjectKind.NotAKext => "not-a-kext", _ => "unreadable" },
            ["bundleId"] = r.BundleId,
            ["version"] = r.Version,
            ["error"] = r.Error,
            ["architectures"] = r.Architectures,
            ["signature"] = r.Signature is { } s
                ? new Dictionary<string, object?>
                {
                    ["state"] = AuditCommand.SignatureState(s.State),
                    ["kextSigningAuthorized"] = s.KextSigningAuthorized,
                    ["teamId"] = s.TeamId,
                    ["detail"] = s.Detail,
                }
                : new Dictionary<string, object?> { ["state"] = "not-checked" },
            ["findings"] = r.Findings.Select(f =>
            {
                var status = f.StatusOn(newest);
                var since = status == KpiSupportStatus.Unsupported ? f.Rule.UnsupportedSince : f.Rule.DeprecatedSince;
                return new Dictionary<string, object?>
                {
                    ["rule"] = f.Rule.Id,
                    ["title"] = f.Rule.Title,
                    ["status"] = status switch
                    {
                        KpiSupportStatus.Unsupported => "unsupported",
                        KpiSupportStatus.Deprecated => "deprecated",
                        _ => "supported",
                    },
                    ["since"] = status == KpiSupportStatus.Supported ? null : since?.ToString(),
                    ["symbols"] = f.TriggeringSymbols,
                    ["libraries"] = f.TriggeringLibraries,
                    ["replacement"] = f.Rule.Replacement,
                    ["entitlement"] = f.Rule.ReplacementEntitlements.FirstOrDefault(),
                    ["entitlements"] = f.Rule.ReplacementEntitlements,
                };
            }).ToArray(),
            ["unresolvedSymbols"] = r.Link is { } unresolvedLink
                ? Candidates(unresolvedLink.Results.SelectMany(x => x.Unresolved.Select(u => (u.Symbol, u.AvailableFrom, x))))
                    .OrderBy(d => (string)d["symbol"]!, StringComparer.Ordinal).ToArray()
                : [],
            ["assumedSymbols"] = r.Link is { } link
                ? Candidates(link.Results.SelectMany(x => x.Assumed.Select(a => (a.Symbol, a.Libraries, x)))).ToArray()
                : [],
            ["libraries"] = r.Link?.Libraries.Select(l => new Dictionary<string, object?>
            {
                ["bundleId"] = l.BundleId,
                ["requested"] = l.RequestedVersion,
                ["kind"] = AuditCommand.LibraryKind(l.Kind),
                ["used"] = l.Used,
            }).ToArray() ?? [],
            ["unusedLibraries"] = r.Link?.UnusedLibraries ?? [],
            ["unknownLibraries"] = r.Link?.UnknownLibraries ?? [],
            ["verdicts"] = r.Verdicts.ToDictionary(v => v.Key, v => (object?)new Dictionary<string, object?>
            {
                ["verdict"] = v.VerdictCode,
                ["reasons"] = v.Reasons.Select(x => new Dictionary<string, object?>
                {
                    ["code"] = x.Key,
                    ["kmErrorCode"] = x.KMErrorCode,
                    ["severity"] = x.Severity switch
                    {
                        KextReasonSeverity.Refuses => "refuses",
                        KextReasonSeverity.Warns => "warns",
                        _ => "informs",
                    },
                    ["message"] = x.Message,
                    ["symbols"] = x.Symbols,
                    ["libraries"] = x.Libraries,
                    ["exemptions"] = x.Exemptions,
                }).ToArray(),
            }),
            ["plugIns"] = r.PlugIns.Select(Project).ToArray(),
            ["problems"] = r.Problems,
        };
    }

    /// <summary>Per symbol (first seen first): the union of its candidate libraries and the release/platform cells it is listed on.</summary>
    private static IEnumerable<Dictionary<string, object?>> Candidates(IEnumerable<(string Symbol, System.Collections.Immutable.ImmutableArray<string> Libraries, KextLinkResult Result)> entries) =>
        entries.GroupBy(e => e.Symbol, StringComparer.Ordinal).Select(g => new Dictionary<string, object?>
        {
            ["symbol"] = g.Key,
            ["libraries"] = g.SelectMany(e => e.Libraries).Distinct(StringComparer.Ordinal).ToArray(),
            ["on"] = g.Select(e => $"{e.Result.Release.Key}/{(e.Result.Architecture == KextArchitecture.Arm64 ? "apple-silicon" : "intel")}").Distinct(StringComparer.Ordinal).ToArray(),
        });
}

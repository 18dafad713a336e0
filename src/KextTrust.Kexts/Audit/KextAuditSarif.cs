using System.Text.Json.Nodes;
using KextTrust.Kexts.Kpi;
using KextTrust.Kexts.Trust;

namespace KextTrust.Kexts.Audit;

/// <summary>
/// Audit reports as SARIF 2.1.0 for GitHub code scanning: one rule per KPI group of Apple's guide and per other reason
/// code, one result per kext and problem, located at the kext's Info.plist (relative to a base folder).
/// </summary>
public static class KextAuditSarif
{
    /// <summary>The SARIF 2.1.0 JSON schema.</summary>
    internal const string SchemaUri = "https://json.schemastore.org/sarif-2.1.0.json";

    /// <summary>
    /// Where the rules come from: Apple's "Deprecated Kernel Extensions and System Extension Alternatives" (Apple's guide);
    /// used as each KPI rule's helpUri and as the driver's informationUri.
    /// </summary>
    internal const string AppleKernelExtensionsUri = "https://developer.apple.com/support/kernel-extensions/";

    /// <summary>Rule id of an unused declared library.</summary>
    internal const string UnusedLibraryRule = "unused-library";

    /// <summary>Rule id of a declared library that is neither Apple's nor found.</summary>
    internal const string UnknownLibraryRule = "unknown-library";

    /// <summary>Rule id of input that could not be read.</summary>
    internal const string UnreadableRule = "unreadable";

    private sealed record RuleInfo(string Id, string Short, string Full, string Level, string? HelpUri);

    /// <summary>Every rule the log declares, KPI groups first.</summary>
    internal static IReadOnlyList<string> RuleIds => [.. Rules().Select(r => r.Id)];

    private static IEnumerable<RuleInfo> Rules()
    {
        foreach (var r in KpiRules.All)
        {
            yield return new RuleInfo(
                r.Id,
                $"{r.Title} KPI: {(r.UnsupportedSince is { } u ? $"unsupported since macOS {u}" : $"deprecated since macOS {r.DeprecatedSince}")}",
                $"The kext uses the {r.Title} KPI group, deprecated since macOS {r.DeprecatedSince}" +
                (r.UnsupportedSince is { } v ? $" and unsupported (the kext does not load) since macOS {v}" : " (it loads with the legacy system extension alert)") +
                $". Replacement: {r.Replacement}; entitlement: {string.Join(", ", r.ReplacementEntitlements)}. Not enforced with SIP disabled or for a kext approved through MDM. {r.Note}",
                r.UnsupportedSince is null ? "warning" : "error",
                AppleKernelExtensionsUri);
        }
        yield return new(TrustCode.UnresolvedSymbols.Name(), "Imported symbols no declared library provides",
            "Some imported symbol is exported by none of the libraries in OSBundleLibraries: the kernel linker refuses the kext.", "error", null);
        yield return new(TrustCode.MissingArchitecture.Name(), "No slice for the Mac's architecture",
            "Apple silicon Macs load only arm64e kexts (a plain arm64 slice is not one), Intel Macs the x86_64 (or x86_64h) slice: KMErrorDomain code 71.", "error", null);
        yield return new(TrustCode.LibraryVersion.Name(), "Library version outside its compatible range",
            "A requested OSBundleLibraries version is outside the library's OSBundleCompatibleVersion…CFBundleVersion range.", "error", null);
        yield return new(TrustCode.MissingLibrary.Name(), "Kernel library missing on a release",
            "A declared kernel library (com.apple.kpi.*) does not exist on that macOS release.", "error", null);
        foreach (var (code, title) in new[]
                 {
                     (TrustCode.SignatureUnsigned, "Unsigned kext"), (TrustCode.SignatureAdHoc, "Ad hoc signed kext"),
                     (TrustCode.SignatureInvalid, "Invalid kext signature"), (TrustCode.NotKextSigningAuthority, "No kext-signing authority"),
                 })
        {
            yield return new(code.Name(), title,
                "With SIP enabled, a kext needs a valid signature from a Developer ID certificate with kext-signing authority: KMErrorDomain code 29.", "error", null);
        }
        yield return new(TrustCode.NotAKext.Name(), "Not a kext",
            "The executable is not an MH_KEXT_BUNDLE Mach-O.", "error", null);
        yield return new(TrustCode.MissingExecutable.Name(), "Executable missing",
            "Info.plist names a CFBundleExecutable that is not in the bundle.", "error", null);
        yield return new(UnusedLibraryRule, "Declared library not used",
            "A library in OSBundleLibraries provides none of the kext's imported symbols.", "warning", null);
        yield return new(UnknownLibraryRule, "Unknown library",
            "A library in OSBundleLibraries is neither Apple's nor found beside the kext: its exports and version were not checked.", "warning", null);
        yield return new(UnreadableRule, "Unreadable input",
            "The bundle or executable could not be read (no Info.plist, no bundle identifier, malformed Mach-O).", "error", null);
    }

    /// <summary>Builds the SARIF log.</summary>
    /// <param name="reports">Audit reports (plug-ins are included from their parents).</param>
    /// <param name="baseDirectory">Folder the artifact URIs are relative to (the repository root for code scanning).</param>
    /// <param name="toolVersion">The tool's version.</param>
    public static JsonObject Build(IEnumerable<KextAuditReport> reports, string baseDirectory, string toolVersion)
    {
        ArgumentNullException.ThrowIfNull(reports);
        ArgumentNullException.ThrowIfNull(baseDirectory);
        var rules = new JsonArray();
        foreach (var r in Rules())
        {
            var rule = new JsonObject
            {
                ["id"] = r.Id,
                ["shortDescription"] = new JsonObject { ["text"] = r.Short },
                ["fullDescription"] = new JsonObject { ["text"] = r.Full },
                ["defaultConfiguration"] = new JsonObject { ["level"] = r.Level },
            };
            if (r.HelpUri is not null)
            {
                rule["helpUri"] = r.HelpUri;
            }
            rules.Add((JsonNode)rule);
        }
        var results = new JsonArray();
        foreach (var report in reports.SelectMany(r => r.SelfAndPlugIns()))
        {
            foreach (var result in Results(report, baseDirectory))
            {
                results.Add((JsonNode)result);
            }
        }
        return new JsonObject
        {
            ["$schema"] = SchemaUri,
            ["version"] = "2.1.0",
            ["runs"] = new JsonArray
            {
                (JsonNode)new JsonObject
                {
                    ["tool"] = new JsonObject
                    {
                        ["driver"] = new JsonObject
                        {
                            ["name"] = "kextrust",
                            ["version"] = toolVersion,
                            ["informationUri"] = AppleKernelExtensionsUri,
                            ["rules"] = rules,
                        },
                    },
                    ["results"] = results,
                },
            },
        };
    }

    private static IEnumerable<JsonObject> Results(KextAuditReport report, string baseDirectory)
    {
        var uri = ArtifactUri(report.InfoPlistPath ?? report.Path, baseDirectory);
        var name = report.DisplayName;
        if (report.Kind == KextAuditSubjectKind.Unreadable)
        {
            yield return Result(UnreadableRule, "error", $"{name}: {report.Error}", uri);
            yield break;
        }
        var reasons = report.Verdicts.SelectMany(v => v.Reasons.Select(r => (Verdict: v, Reason: r))).ToArray();
        foreach (var f in report.Findings)
        {
            var rule = f.Rule;
            var refused = reasons.Where(x => x.Reason.Code == TrustCode.UnsupportedKpi && x.Reason.Rule == rule.Id).Select(x => x.Verdict.Key).ToArray();
            var evidence = string.Join(", ", f.TriggeringSymbols.Concat(f.TriggeringLibraries));
            var effect = refused.Length > 0
                ? $"refused on {string.Join(", ", refused)}"
                : rule.UnsupportedSince is { } u
                    ? $"unsupported since macOS {u}" + (reasons.Any(x => x.Reason.Code == TrustCode.KpiNotEnforced && x.Reason.Rule == rule.Id) ? ", not enforced here (SIP disabled or MDM approval)" : "")
                    : $"deprecated since macOS {rule.DeprecatedSince}, loads with the legacy system extension alert";
            yield return Result(rule.Id, refused.Length > 0 ? "error" : "warning",
                $"{name} uses the {rule.Title} KPI ({evidence}): {effect}. Move to {rule.Replacement} (entitlement {string.Join(", ", rule.ReplacementEntitlements)}).",
                uri);
        }
        foreach (var group in reasons
                     .Where(x => x.Reason.Severity == KextReasonSeverity.Refuses && x.Reason.Code != TrustCode.UnsupportedKpi)
                     .GroupBy(x => x.Reason.Key))
        {
            var first = group.First().Reason;
            var cells = string.Join(", ", group.Select(x => x.Verdict.Key).Distinct(StringComparer.Ordinal));
            yield return Result(group.Key, "error", $"{name}: {first.Message} (refused on {cells}).", uri);
        }
        if (report.Link is { } link)
        {
            foreach (var id in link.UnusedLibraries)
            {
                yield return Result(UnusedLibraryRule, "warning", $"{name} declares {id} but imports nothing from it.", uri);
            }
            foreach (var id in link.UnknownLibraries)
            {
                yield return Result(UnknownLibraryRule, "warning", $"{name} declares {id}, which is neither Apple's nor found beside it: not checked.", uri);
            }
        }
    }

    private static JsonObject Result(string ruleId, string level, string message, string uri) => new()
    {
        ["ruleId"] = ruleId,
        ["level"] = level,
        ["message"] = new JsonObject { ["text"] = message },
        ["locations"] = new JsonArray
        {
            (JsonNode)new JsonObject
            {
                ["physicalLocation"] = new JsonObject
                {
                    ["artifactLocation"] = new JsonObject { ["uri"] = uri },
                    ["region"] = new JsonObject { ["startLine"] = 1 },
                },
            },
        },
    };

    /// <summary>The path relative to the base folder with '/' separators; an absolute file URI when outside it.</summary>
    internal static string ArtifactUri(string path, string baseDirectory)
    {
        var relative = Path.GetRelativePath(Path.GetFullPath(baseDirectory), Path.GetFullPath(path));
        if (relative == ".." || relative.StartsWith(".." + Path.DirectorySeparatorChar, StringComparison.Ordinal) || Path.IsPathRooted(relative))
        {
            return new Uri(Path.GetFullPath(path)).AbsoluteUri;
        }
        return string.Join('/', relative.Split(Path.DirectorySeparatorChar).Select(Uri.EscapeDataString));
    }
}

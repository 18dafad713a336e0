using System.CommandLine;
using System.Reflection;
using System.Text.Encodings.Web;
using System.Text.Json;
using KextTrust.Kexts.Audit;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;
using KextTrust.Kexts.Signing;
using Spectre.Console;
using KextTrust.Kexts.Trust;

namespace KextTrust.Cli;

/// <summary>
/// <c>kextrust audit PATH… [--json | --sarif] [--macos V] [--platform apple-silicon|intel] [--sip-disabled]
/// [--mdm-approved] [--signatures]</c>: will each kext load on macOS 10.15–15.4, on Intel and Apple silicon.
/// </summary>
internal static class AuditCommand
{
    /// <summary>Creates the command.</summary>
    public static Command Create(CliOutput output)
    {
        var paths = new Argument<string[]>("PATH")
        {
            Description = "Kext bundles, bare Mach-O files, or folders to search for kexts (whole trees; plug-ins are audited too).",
            Arity = ArgumentArity.OneOrMore,
        };
        var json = new Option<bool>("--json") { Description = "Write JSON instead of the matrix." };
        var sarif = new Option<bool>("--sarif") { Description = "Write SARIF 2.1.0 for GitHub code scanning (locations relative to the current folder)." };
        var macos = new Option<string?>("--macos") { Description = "Audit one macOS release only: 10.15, 11, 12, 13, 14, 15 (15.0–15.3) or 15.4." };
        var platform = new Option<string?>("--platform") { Description = "Audit one platform only: intel or apple-silicon." };
        var sipDisabled = new Option<bool>("--sip-disabled") { Description = "SIP is disabled: KPI deprecation policy and kext signatures are not enforced." };
        var mdm = new Option<bool>("--mdm-approved") { Description = "The kexts are approved through an MDM profile: the KPI deprecation policy is not enforced." };
        var signatures = new Option<bool>("--signatures")
        {
            Description = "Verify each kext's code signature in full (as 'verify' does: every slice and page, Info.plist, resources, CMS, chain to Apple's root): where SIP requires a signature, a kext whose signature is missing, ad hoc, invalid or without the kext-signing authority is refused, with the verifier's problem code.",
        };
        var trustRoot = new Option<string?>("--trust-root") { Description = "With --signatures: also trust this root certificate (PEM or DER), e.g. from 'kextrust pki init'." };
        var cmd = new Command("audit", "Will these kexts load on macOS 10.15–15.4, on Intel and on Apple silicon? KPI rules, link check, architectures; migration advice.")
        {
            paths, json, sarif, macos, platform, sipDisabled, mdm, signatures, trustRoot,
        };
        cmd.SetAction(r => Run(output, new Request(
            r.GetValue(paths) ?? [], r.GetValue(json), r.GetValue(sarif), r.GetValue(macos), r.GetValue(platform),
            r.GetValue(sipDisabled), r.GetValue(mdm), r.GetValue(signatures), r.GetValue(trustRoot))));
        return cmd;
    }

    private sealed record Request(string[] Paths, bool Json, bool Sarif, string? MacOS, string? Platform, bool SipDisabled, bool MdmApproved, bool Signatures,
        string? TrustRoot);

    private static int Run(CliOutput output, Request request)
    {
        if (request.Json && request.Sarif)
        {
            return output.InputError("--json and --sarif are exclusive");
        }
        System.Security.Cryptography.X509Certificates.X509Certificate2? root = null;
        if (request.TrustRoot is not null)
        {
            try
            {
                root = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificateFromFile(request.TrustRoot);
            }
            catch (Exception e) when (e is System.Security.Cryptography.CryptographicException or IOException or UnauthorizedAccessException)
            {
                return output.InputError($"{request.TrustRoot}: cannot read the trust root: {e.Message}");
            }
        }
        using var trusted = root;
        var options = new KextAuditOptions
        {
            Enforcement = new KpiEnforcementContext(request.SipDisabled, request.MdmApproved),
            ReadSignaturePresence = request.Signatures,
            // The one signature verdict; kexts are audited on every core already, so each verification runs on one.
            VerifySignatures = request.Signatures ? new KextSignatureVerifierOptions { TrustedTestRoot = root, MaxDegreeOfParallelism = 1 } : null,
        };
        if (request.MacOS is not null)
        {
            if (!MacOSRelease.TryParse(request.MacOS, out var release))
            {
                return output.InputError($"--macos '{request.MacOS}': not a release the audit covers (10.15, 11, 12, 13, 14, 15, 15.4)");
            }
            options = options with { Releases = [release!] };
        }
        if (request.Platform is not null)
        {
            var name = request.Platform.ToLowerInvariant();
            MacPlatform? p = KextArchitectures.TryParsePlatform(name, out var platform) ? platform
                : KextArchitectures.TryParse(name, out var architecture) ? architecture.Platform() : null;
            if (p is null)
            {
                return output.InputError($"--platform '{request.Platform}': use intel or apple-silicon");
            }
            options = options with { Platforms = [p.Value] };
        }

        // The catalog is parsed on another core while the kexts are found and opened (which needs no catalog).
        KpiCatalog? catalog = null;
        System.Runtime.ExceptionServices.ExceptionDispatchInfo? loadFailure = null;
        var loader = new Thread(() =>
        {
            try
            {
                catalog = KpiCatalog.Load();
            }
            catch (Exception ex)
            {
                loadFailure = System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(ex);
            }
        }) { Name = "kextrust catalog" };
        loader.Start();
        var inputErrors = new List<string>();
        var files = new List<string>();
        var trees = new List<IReadOnlyList<KextBundle>>();
        foreach (var path in request.Paths)
        {
            try
            {
                if (File.Exists(path))
                {
                    files.Add(path);
                }
                else
                {
                    trees.Add(KextAuditor.OpenTree(path));
                }
            }
            catch (KextBundleException ex)
            {
                inputErrors.Add(ex.Message);
            }
        }

        loader.Join();
        loadFailure?.Throw();
        var auditor = new KextAuditor(catalog!, options);
        var bundles = trees.SelectMany(auditor.Adopt).ToList();
        var reports = new List<KextAuditReport>(files.Count + bundles.Count);
        reports.AddRange(files.Select(auditor.AuditFile));
        var tally = new Tally();
        foreach (var r in reports)
        {
            tally.Add(r);
        }
        if (request.Json && !(output.IsInteractive && bundles.Count > 1))
        {
            // Streamed: each report is written as soon as it is next in order.
            output.WriteJson(w =>
            {
                w.WriteStartArray();
                foreach (var r in reports)
                {
                    AuditJson.Write(w, r);
                }
                auditor.AuditInOrder(bundles, r =>
                {
                    tally.Add(r); // the report itself is dropped once written
                    AuditJson.Write(w, r);
                    CliOutput.FlushIfFull(w);
                });
                w.WriteEndArray();
            });
        }
        else
        {
            if (output.IsInteractive && bundles.Count > 1)
            {
                output.Console.Progress().AutoClear(true).Start(ctx =>
                {
                    var task = ctx.AddTask("auditing kexts", maxValue: bundles.Count);
                    var gate = new Lock();
                    reports.AddRange(auditor.AuditMany(bundles, _ =>
                    {
                        lock (gate)
                        {
                            task.Increment(1);
                        }
                    }));
                });
            }
            else
            {
                reports.AddRange(auditor.AuditMany(bundles));
            }

            if (request.Json)
            {
                output.WriteJson(w =>
                {
                    w.WriteStartArray();
                    foreach (var r in reports)
                    {
                        AuditJson.Write(w, r);
                    }
                    w.WriteEndArray();
                });
            }
            else if (request.Sarif)
            {
                var log = KextAuditSarif.Build(reports, Environment.CurrentDirectory, ToolVersion);
                output.Out.WriteLine(log.ToJsonString(JsonOptions));
            }
            else
            {
                WriteHuman(output, reports, options);
            }
        }

        foreach (var r in reports.Skip(files.Count)) // the bundles' reports when they were not streamed
        {
            tally.Add(r);
        }
        foreach (var r in tally.Unreadable)
        {
            output.Error.WriteLine($"kextrust: {r.Path}: {r.Error}");
        }
        foreach (var e in inputErrors)
        {
            output.Error.WriteLine($"kextrust: {e}");
        }
        if (inputErrors.Count > 0 || tally.Unreadable.Count > 0)
        {
            return ExitCodes.InputError;
        }
        return tally.Refused ? ExitCodes.Failed : ExitCodes.Ok;
    }

    /// <summary>What the exit code and standard error need of the reports (kexts and plug-ins).</summary>
    private sealed class Tally
    {
        public List<KextAuditReport> Unreadable { get; } = [];

        public bool Refused { get; private set; }

        public void Add(KextAuditReport report)
        {
            foreach (var r in report.SelfAndPlugIns())
            {
                if (r.Kind == KextAuditSubjectKind.Unreadable)
                {
                    Unreadable.Add(r);
                }
                Refused |= r.IsRefusedSomewhere;
            }
        }
    }

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private static string ToolVersion =>
        typeof(AuditCommand).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    internal static string SignatureState(KextSignatureState s) => s switch
    {
        KextSignatureState.Unsigned => "unsigned",
        KextSignatureState.AdHoc => "ad-hoc",
        KextSignatureState.CmsNotVerified => "cms-not-verified",
        KextSignatureState.Valid => "valid",
        _ => "invalid",
    };

    internal static string LibraryKind(KextLibraryKind k) => k switch
    {
        KextLibraryKind.KpiBundle => "kpi",
        KextLibraryKind.Kernel => "kernel",
        KextLibraryKind.KernelResource => "kernel-resource",
        KextLibraryKind.AppleFamily => "apple-family",
        KextLibraryKind.Bundled => "bundled",
        _ => "unknown",
    };

    // ---- human output ----

    private static void WriteHuman(CliOutput output, IReadOnlyList<KextAuditReport> reports, KextAuditOptions options)
    {
        var all = reports.SelectMany(r => r.SelfAndPlugIns()).ToArray();
        if (all.Length == 0)
        {
            output.Out.WriteLine("no kexts found");
            return;
        }
        var both = options.Platforms.Length == 2;
        var table = new Table().Border(TableBorder.Rounded);
        table.AddColumn("kext");
        table.AddColumn("version");
        foreach (var release in options.Releases)
        {
            table.AddColumn(new TableColumn(release.Key).Centered());
        }
        table.AddColumn("signature");
        foreach (var r in reports)
        {
            AddRows(table, r, options, depth: 0);
        }
        output.Console.Write(table);
        output.Out.WriteLine(both
            ? "each cell: Intel, Apple silicon · ✓ loads  ⚠ loads with warning  ✗ refused  – no such Mac  ? unreadable"
            : $"{options.Platforms[0].DisplayName()} only · ✓ loads  ⚠ loads with warning  ✗ refused  – no such Mac  ? unreadable");
        if (options.Enforcement.IsExempt)
        {
            output.Out.WriteLine($"KPI deprecation policy not enforced: {string.Join(", ", KextAuditor.ExemptionCodes(options.Enforcement))}");
        }

        foreach (var r in all)
        {
            WriteDetails(output, r);
        }
    }

    private static void AddRows(Table table, KextAuditReport r, KextAuditOptions options, int depth)
    {
        var name = new string(' ', depth * 2) + (depth > 0 ? "└ " : "") + r.DisplayName;
        var cells = new List<string> { Markup.Escape(name), Markup.Escape(r.Version ?? "") };
        foreach (var release in options.Releases)
        {
            if (r.Kind == KextAuditSubjectKind.Unreadable)
            {
                cells.Add("[grey]?[/]");
                continue;
            }
            cells.Add(string.Join(" ", options.Platforms.Select(p => Symbol(r.VerdictFor(release, p)?.Verdict))));
        }
        cells.Add(r.Signature is { } s ? Markup.Escape(s.State == KextSignatureState.CmsNotVerified ? "CMS not verified" : SignatureState(s.State)) : "not checked");
        table.AddRow(cells.ToArray());
        foreach (var p in r.PlugIns)
        {
            AddRows(table, p, options, depth + 1);
        }
    }

    private static string Symbol(KextLoadVerdict? v) => v switch
    {
        KextLoadVerdict.Loads => "[green]✓[/]",
        KextLoadVerdict.LoadsWithWarning => "[yellow]⚠[/]",
        KextLoadVerdict.Refused => "[red]✗[/]",
        KextLoadVerdict.NotApplicable => "[grey]–[/]",
        _ => "?",
    };

    private static void WriteDetails(CliOutput output, KextAuditReport r)
    {
        var lines = new List<string>();
        if (r.Kind == KextAuditSubjectKind.Unreadable)
        {
            lines.Add($"  ? unreadable: {r.Error}");
        }
        var reasons = r.Verdicts.SelectMany(v => v.Reasons.Select(x => (v, x))).ToArray();
        foreach (var f in r.Findings)
        {
            var rule = f.Rule;
            var refusedOn = reasons.Where(t => t.x.Code == TrustCode.UnsupportedKpi && t.x.Rule == rule.Id).Select(t => t.v.Key).ToArray();
            var exempt = reasons.Any(t => t.x.Code == TrustCode.KpiNotEnforced && t.x.Rule == rule.Id);
            var mark = refusedOn.Length > 0 ? "✗" : "⚠";
            var status = rule.UnsupportedSince is { } u
                ? $"deprecated since {rule.DeprecatedSince}, unsupported since {u}{(exempt ? " (not enforced: SIP disabled / MDM approval)" : "")}"
                : $"deprecated since {rule.DeprecatedSince} (loads with the legacy system extension alert)";
            lines.Add($"  {mark} {rule.Title} [{rule.Id}]: {status}");
            lines.Add($"      uses: {Shorten(f.TriggeringSymbols.Concat(f.TriggeringLibraries).ToArray())}");
            lines.Add($"      move to {rule.Replacement}; entitlement {string.Join(", ", rule.ReplacementEntitlements)}");
        }
        foreach (var g in reasons.Where(t => t.x.Severity == KextReasonSeverity.Refuses
                                             && t.x.Code != TrustCode.UnsupportedKpi)
                     .GroupBy(t => t.x.Key))
        {
            var cells = g.Select(t => t.v.Key).Distinct(StringComparer.Ordinal).ToArray();
            lines.Add($"  ✗ {g.Key} on {(cells.Length == r.Verdicts.Count(v => v.Verdict != KextLoadVerdict.NotApplicable) ? "every audited release" : string.Join(", ", cells))}: {g.First().x.Message}");
        }
        if (r.Link is { } link)
        {
            foreach (var id in link.UnusedLibraries)
            {
                lines.Add($"  · library {id} is declared but unused");
            }
            foreach (var id in link.UnknownLibraries)
            {
                lines.Add($"  · library {id} is neither Apple's nor found beside the kext: not checked");
            }
            // Grouped by the releases they are assumed on: a family's exports are often known on some releases only.
            foreach (var g in AuditJson.AssumedSymbols(link).GroupBy(a => string.Join(", ", a.On)))
            {
                var assumed = g.ToArray();
                lines.Add($"  · {assumed.Length} symbol(s) assumed provided by {string.Join(", ", assumed.SelectMany(a => a.Libraries).Distinct(StringComparer.Ordinal))} (exports not known) on {g.Key}: {Shorten(assumed.Select(a => a.Symbol).ToArray())}");
            }
        }
        foreach (var g in reasons.Where(t => t.x.Severity == KextReasonSeverity.Informs && t.x.Code != TrustCode.NotApplicable).GroupBy(t => t.x.Message))
        {
            var cells = g.Select(t => t.v.Key).Distinct(StringComparer.Ordinal).ToArray();
            lines.Add($"  · {g.Key} (on {(cells.Length == r.Verdicts.Count(v => v.Verdict != KextLoadVerdict.NotApplicable) ? "every audited release" : string.Join(", ", cells))})");
        }
        if (lines.Count == 0)
        {
            return;
        }
        output.Out.WriteLine();
        output.Out.WriteLine($"{r.DisplayName} {r.Version}".TrimEnd());
        foreach (var l in lines)
        {
            output.Out.WriteLine(l);
        }
    }

    private static string Shorten(IReadOnlyList<string> items) =>
        items.Count <= 6 ? string.Join(", ", items) : string.Join(", ", items.Take(6)) + $", … ({items.Count} in all)";
}

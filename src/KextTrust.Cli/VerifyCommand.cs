using System.CommandLine;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Serialization;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Signing;
using Spectre.Console;

namespace KextTrust.Cli;

/// <summary>One problem as written by <c>kextrust verify --json</c>.</summary>
internal sealed record VerifyProblemJson(KextSignatureProblemCode Code, string Message, string? Arch, long? Offset, string? Path);

/// <summary>One verified item as written by <c>kextrust verify --json</c>.</summary>
internal sealed record VerifyItemJson(
    string Path,
    string Status,
    string? Kind,
    string? Identifier,
    string? TeamId,
    string? Signer,
    bool KextSigningAuthorized,
    IReadOnlyList<string> Cdhashes,
    bool RequirementSatisfied,
    string? KextRequirement,
    string? DesignatedRequirement,
    string? DesignatedRequirementOutcome,
    string? TrustedRoot,
    bool TrustedByRequest,
    string? Note,
    bool IsKextBinary,
    long PagesVerified,
    IReadOnlyList<SliceVerification> Slices,
    IReadOnlyList<VerifyProblemJson> Problems,
    IReadOnlyList<VerifyItemJson> Nested,
    string? Error);

/// <summary>
/// Compile-time JSON metadata of the verify report, the document's schema under <see cref="CliOutput"/>'s options.
/// The command itself writes the report with <see cref="VerifyJsonWriter"/> (no serializer metadata to build at run
/// time); the tests hold the two to the same bytes.
/// </summary>
[JsonSerializable(typeof(VerifyItemJson[]))]
internal sealed partial class VerifyJsonContext : JsonSerializerContext;

/// <summary><c>kextrust verify PATH… [--json] [--trust-root FILE] [--parallel N] [--all-code-directories]</c>.</summary>
internal static class VerifyCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(CliOutput output)
    {
        var paths = new Argument<string[]>("PATH") { Description = "Kext bundles, bare Mach-O files, or folders to search.", Arity = ArgumentArity.OneOrMore };
        var json = new Option<bool>("--json") { Description = "Write JSON instead of a table." };
        var trustRoot = new Option<string?>("--trust-root") { Description = "Also trust this root certificate (PEM or DER), e.g. from 'kextrust pki init'. Never needed for Apple-signed code; the output says when it was used." };
        var parallel = new Option<int>("--parallel", "--threads") { Description = "Threads hashing code pages (default: all cores; 1 = single-threaded)." };
        var allCds = new Option<bool>("--all-code-directories") { Description = "Also hash every code page with each alternate CodeDirectory (e.g. the SHA-1 one), as 'codesign --verify' does; by default pages are checked against the strongest CodeDirectory only, as the kernel does, and alternates are bound by their cdhashes in the CMS." };
        var cmd = new Command("verify", "Verify code signatures as Apple's kext loader does: every code page of every architecture, Info.plist, the resource seal, nested plug-ins, the CMS chain to the pinned Apple Root CA, and the kext requirement.")
        {
            paths, json, trustRoot, parallel, allCds,
        };
        cmd.SetAction(r => Run(output, r.GetValue(paths)!, r.GetValue(json), r.GetValue(trustRoot), r.GetValue(parallel), r.GetValue(allCds)));
        return cmd;
    }

    private static int Run(CliOutput output, string[] paths, bool json, string? trustRootPath, int parallel, bool allCodeDirectories)
    {
        X509Certificate2? root = null;
        if (trustRootPath is not null)
        {
            try
            {
                root = X509CertificateLoader.LoadCertificateFromFile(trustRootPath);
            }
            catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
            {
                return output.InputError($"{trustRootPath}: cannot read the trust root: {e.Message}");
            }
        }
        using (root)
        {
            var inputs = new List<string>();
            var missing = new List<string>();
            foreach (var p in paths)
            {
                if (!File.Exists(p) && !Directory.Exists(p))
                {
                    missing.Add(p);
                    continue;
                }
                inputs.AddRange(Expand(p));
            }
            var items = KextSignatureVerifier.VerifyMany(inputs, new KextSignatureVerifierOptions
            {
                TrustedTestRoot = root,
                MaxDegreeOfParallelism = parallel > 0 ? parallel : null,
                AllCodeDirectories = allCodeDirectories,
            });
            var note = root is null ? null : $"the root '{root.Subject}' was trusted by request (--trust-root); it is not Apple's";
            var report = items.Select(i => ToJson(i, note)).Concat(missing.Select(m => Unreadable(m, $"{m}: no such file or folder"))).ToArray();
            if (json)
            {
                output.WriteJson(w => VerifyJsonWriter.Write(w, report));
            }
            else
            {
                WriteTable(output, report, note);
            }
            foreach (var u in report.Where(r => r.Error is not null))
            {
                output.Error.WriteLine($"kextrust: {u.Error}");
            }
            return report.Any(r => r.Error is not null) ? ExitCodes.InputError
                : report.All(r => r.Status == "valid") ? ExitCodes.Ok
                : ExitCodes.Failed;
        }
    }

    /// <summary>A file or bundle as itself; a plain folder as the kexts and bare Mach-O files under it (not inside those kexts).</summary>
    private static IEnumerable<string> Expand(string path)
    {
        if (File.Exists(path) || BundleResourceScanner.LooksLikeBundle(path) || File.Exists(Path.Combine(path, "Info.plist")))
        {
            return [path];
        }
        // KextDiscovery answers full paths: search the full path too, or a relative folder's kext executables
        // would not be recognised as inside their kexts and would be verified again as bare Mach-O files.
        // The walk for bare Mach-O files does not enter the kexts found (their files are the kexts' own): with
        // every file checked against every kext instead, 1,000 kexts cost ~5 million prefix comparisons.
        var kexts = KextDiscovery.FindKexts(path);
        var inside = new HashSet<string>(kexts, StringComparer.Ordinal);
        var machos = new System.IO.Enumeration.FileSystemEnumerable<string>(Path.GetFullPath(path), (ref System.IO.Enumeration.FileSystemEntry e) => e.ToFullPath(),
            new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint })
        {
            ShouldIncludePredicate = (ref System.IO.Enumeration.FileSystemEntry e) => !e.IsDirectory,
            ShouldRecursePredicate = (ref System.IO.Enumeration.FileSystemEntry e) => !inside.Contains(e.ToFullPath()),
        }.Where(IsMachO);
        return kexts.Concat(machos).Order(StringComparer.Ordinal).ToArray();
    }

    private static bool IsMachO(string file)
    {
        try
        {
            return BundleResourceScanner.IsMachOFile(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static VerifyItemJson Unreadable(string path, string error) =>
        new(path, "unreadable", null, null, null, null, false, [], false, null, null, null, null, false, null, false, 0, [], [], [], error);

    private static VerifyItemJson ToJson(KextVerifyItem item, string? note)
    {
        if (item.Result is not { } r)
        {
            return Unreadable(item.Path, item.Error!.Message);
        }
        return ToJson(r, note);
    }

    private static VerifyItemJson ToJson(KextSignatureVerification r, string? note) => new(
        r.Path,
        StatusName(r.Status),
        r.Kind,
        r.Identifier,
        r.TeamId,
        r.Signer,
        r.KextSigningAuthorized,
        r.CdHashes,
        r.RequirementSatisfied,
        r.KextRequirement?.Requirement,
        r.DesignatedRequirement?.Requirement,
        r.DesignatedRequirement is { } dr ? MachineOption.Kebab(dr.Outcome) : null,
        r.TrustedRoot,
        r.TrustedByRequest,
        r.TrustedByRequest ? note : r.IsKextBinary || r.Slices.Count == 0 ? null : $"not a kext: the executable is {string.Join("/", r.Slices.Select(s => s.FileType).Distinct())}",
        r.IsKextBinary,
        r.PagesVerified,
        r.Slices,
        r.Problems.Select(p => new VerifyProblemJson(p.Code, p.Message, p.Arch, p.Offset, p.Path)).ToArray(),
        r.Nested.Select(n => ToJson(n, note)).ToArray(),
        null);

    private static string StatusName(KextSignatureStatus status) => status switch
    {
        KextSignatureStatus.Valid => "valid",
        KextSignatureStatus.Invalid => "invalid",
        KextSignatureStatus.AdHoc => "adhoc",
        _ => "unsigned",
    };

    private static IEnumerable<VerifyItemJson> Flatten(VerifyItemJson r) => r.Nested.SelectMany(Flatten).Prepend(r);

    private static void WriteTable(CliOutput output, IReadOnlyList<VerifyItemJson> report, string? note)
    {
        if (report.Count == 0)
        {
            output.Out.WriteLine("nothing to verify");
            return;
        }
        var table = new Table().Border(TableBorder.Rounded);
        table.AddColumn("path");
        table.AddColumn("status");
        table.AddColumn("team");
        table.AddColumn("signer");
        table.AddColumn("kext signing");
        table.AddColumn("kext requirement");
        table.AddColumn("root");
        table.AddColumn("cdhash");
        foreach (var r in report.SelectMany(Flatten))
        {
            var status = r.Status switch
            {
                "valid" => "[green]valid[/]",
                "invalid" or "unreadable" => $"[red]{r.Status}[/]",
                _ => $"[yellow]{r.Status}[/]",
            };
            table.AddRow(Markup.Escape(r.Path), status, Markup.Escape(r.TeamId ?? "-"), Markup.Escape(r.Signer ?? "-"),
                r.KextSigningAuthorized ? "yes" : "no", r.RequirementSatisfied ? "satisfied" : "not satisfied",
                Markup.Escape(r.TrustedRoot is null ? "-" : r.TrustedByRequest ? $"{r.TrustedRoot} (by request)" : r.TrustedRoot),
                Markup.Escape(r.Cdhashes.Count == 0 ? "-" : string.Join(" ", r.Cdhashes.Take(2)) + (r.Cdhashes.Count > 2 ? " …" : "")));
        }
        output.Console.Write(table);
        if (note is not null)
        {
            output.Out.WriteLine($"note: {note}");
        }
        foreach (var r in report.SelectMany(Flatten))
        {
            if (r.Note is not null && r.Note != note)
            {
                output.Out.WriteLine($"{r.Path}: note: {r.Note}");
            }
            foreach (var p in r.Problems)
            {
                var where = string.Join(" ", new[] { p.Arch, p.Offset is { } o ? $"offset 0x{o:x}" : null, p.Path }.Where(x => x is not null));
                output.Out.WriteLine($"{r.Path}: {p.Code}: {p.Message}{(where.Length > 0 ? $" [{where}]" : "")}");
            }
        }
    }
}

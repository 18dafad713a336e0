using System.Collections.Immutable;
using System.Text.Json;
using KextTrust.Kexts.Audit;
using KextTrust.Kexts.Kpi;
using KextTrust.Kexts.Trust;

namespace KextTrust.Cli;

/// <summary>
/// Writes <see cref="KextAuditReport"/>s as <c>audit --json</c> prints them, straight to a <see cref="Utf8JsonWriter"/>
/// (no object graph or reflection per report, so a scan can stream its reports as they are made).
/// </summary>
internal static class AuditJson
{
    /// <summary>An unresolved or assumed symbol with its candidate libraries and the cells (<c>release/platform</c>) where it is so.</summary>
    /// <param name="Symbol">Mangled name.</param>
    /// <param name="Libraries">Candidates: for an unresolved symbol the libraries that would provide it if declared, for an assumed one the declared libraries it is taken from.</param>
    /// <param name="On">The cells, oldest release first.</param>
    public sealed record SymbolCandidate(string Symbol, ImmutableArray<string> Libraries, ImmutableArray<string> On);

    /// <summary>Every unresolved symbol of a link report (sorted) with the union of its candidates and its cells.</summary>
    public static IReadOnlyList<SymbolCandidate> UnresolvedSymbols(KextLinkReport link) =>
        Candidates(link, r => r.Unresolved.Select(u => (u.Symbol, u.AvailableFrom)), sort: true);

    /// <summary>Every assumed symbol of a link report (first-seen order) with the union of its candidates and its cells.</summary>
    public static IReadOnlyList<SymbolCandidate> AssumedSymbols(KextLinkReport link) =>
        Candidates(link, r => r.Assumed.Select(a => (a.Symbol, a.Libraries)), sort: false);

    private static List<SymbolCandidate> Candidates(
        KextLinkReport link, Func<KextLinkResult, IEnumerable<(string Symbol, ImmutableArray<string> Libraries)>> select, bool sort)
    {
        ArgumentNullException.ThrowIfNull(link);
        var order = new List<string>();
        var bySymbol = new Dictionary<string, (List<string> Libraries, List<string> On)>(StringComparer.Ordinal);
        foreach (var r in link.Results)
        {
            string? cell = null; // made once per result, and only for a result that lists a symbol
            foreach (var (symbol, libraries) in select(r))
            {
                cell ??= $"{r.Release.Key}/{r.Architecture.Platform().Name()}";
                if (!bySymbol.TryGetValue(symbol, out var entry))
                {
                    bySymbol[symbol] = entry = ([], []);
                    order.Add(symbol);
                }
                foreach (var l in libraries)
                {
                    if (!entry.Libraries.Contains(l))
                    {
                        entry.Libraries.Add(l);
                    }
                }
                if (!entry.On.Contains(cell))
                {
                    entry.On.Add(cell);
                }
            }
        }
        if (sort)
        {
            order.Sort(StringComparer.Ordinal);
        }
        return order.Select(s => new SymbolCandidate(s, [.. bySymbol[s].Libraries], [.. bySymbol[s].On])).ToList();
    }

    private static void SymbolCandidates(Utf8JsonWriter w, SymbolCandidate c)
    {
        w.WriteStartObject();
        w.WriteString("symbol", c.Symbol);
        Strings(w, "libraries", c.Libraries);
        Strings(w, "on", c.On);
        w.WriteEndObject();
    }

    /// <summary>Writes one report (plug-ins nested) as a JSON object.</summary>
    public static void Write(Utf8JsonWriter w, KextAuditReport r)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(r);
        var newest = r.Verdicts.IsEmpty ? MacOSRelease.All[^1] : r.Verdicts.Max(v => v.Release)!;
        w.WriteStartObject();
        w.WriteString("path", r.Path);
        w.WriteString("kind", r.Kind switch { KextAuditSubjectKind.Kext => "kext", KextAuditSubjectKind.NotAKext => "not-a-kext", _ => "unreadable" });
        w.WriteString("bundleId", r.BundleId);
        w.WriteString("version", r.Version);
        w.WriteString("error", r.Error);
        Strings(w, "architectures", r.Architectures);
        w.WriteStartObject("signature");
        if (r.Signature is { } s)
        {
            w.WriteString("state", AuditCommand.SignatureState(s.State));
            w.WriteBoolean("kextSigningAuthorized", s.KextSigningAuthorized);
            w.WriteString("teamId", s.TeamId);
            w.WriteString("detail", s.Detail);
        }
        else
        {
            w.WriteString("state", "not-checked");
        }
        w.WriteEndObject();
        w.WriteStartArray("findings");
        foreach (var f in r.Findings)
        {
            var status = f.StatusOn(newest);
            var since = status == KpiSupportStatus.Unsupported ? f.Rule.UnsupportedSince : f.Rule.DeprecatedSince;
            w.WriteStartObject();
            w.WriteString("rule", f.Rule.Id);
            w.WriteString("title", f.Rule.Title);
            w.WriteString("status", status switch
            {
                KpiSupportStatus.Unsupported => "unsupported",
                KpiSupportStatus.Deprecated => "deprecated",
                _ => "supported",
            });
            w.WriteString("since", status == KpiSupportStatus.Supported ? null : since?.ToString());
            Strings(w, "symbols", f.TriggeringSymbols);
            Strings(w, "libraries", f.TriggeringLibraries);
            w.WriteString("replacement", f.Rule.Replacement);
            w.WriteString("entitlement", f.Rule.ReplacementEntitlements.FirstOrDefault());
            Strings(w, "entitlements", f.Rule.ReplacementEntitlements);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        // Per symbol: the candidate libraries (those that would provide an unresolved one if declared; the declared
        // ones an assumed one is taken from) and the cells (release/platform) where it is unresolved or assumed.
        w.WriteStartArray("unresolvedSymbols");
        foreach (var u in r.Link is { } unresolvedLink ? UnresolvedSymbols(unresolvedLink) : [])
        {
            SymbolCandidates(w, u);
        }
        w.WriteEndArray();
        w.WriteStartArray("assumedSymbols");
        foreach (var a in r.Link is { } assumedLink ? AssumedSymbols(assumedLink) : [])
        {
            SymbolCandidates(w, a);
        }
        w.WriteEndArray();
        w.WriteStartArray("libraries");
        foreach (var l in r.Link?.Libraries ?? [])
        {
            w.WriteStartObject();
            w.WriteString("bundleId", l.BundleId);
            w.WriteString("requested", l.RequestedVersion);
            w.WriteString("kind", AuditCommand.LibraryKind(l.Kind));
            if (l.Used is { } used)
            {
                w.WriteBoolean("used", used);
            }
            else
            {
                w.WriteNull("used");
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
        Strings(w, "unusedLibraries", r.Link?.UnusedLibraries ?? []);
        Strings(w, "unknownLibraries", r.Link?.UnknownLibraries ?? []);
        w.WriteStartObject("verdicts");
        foreach (var v in r.Verdicts)
        {
            w.WriteStartObject(v.Key);
            w.WriteString("verdict", v.VerdictCode);
            w.WriteStartArray("reasons");
            foreach (var x in v.Reasons)
            {
                w.WriteStartObject();
                w.WriteString("code", x.Key);
                if (x.KMErrorCode is { } km)
                {
                    w.WriteNumber("kmErrorCode", km);
                }
                else
                {
                    w.WriteNull("kmErrorCode");
                }
                w.WriteString("severity", x.Severity switch
                {
                    KextReasonSeverity.Refuses => "refuses",
                    KextReasonSeverity.Warns => "warns",
                    _ => "informs",
                });
                w.WriteString("message", x.Message);
                Strings(w, "symbols", x.Symbols);
                Strings(w, "libraries", x.Libraries);
                Strings(w, "exemptions", x.Exemptions);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndObject();
        w.WriteStartArray("plugIns");
        foreach (var p in r.PlugIns)
        {
            Write(w, p);
        }
        w.WriteEndArray();
        Strings(w, "problems", r.Problems);
        w.WriteEndObject();
    }

    private static void Strings(Utf8JsonWriter w, string name, ImmutableArray<string> values)
    {
        w.WriteStartArray(name);
        foreach (var v in values)
        {
            w.WriteStringValue(v);
        }
        w.WriteEndArray();
    }
}

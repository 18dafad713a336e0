using System.Collections.Immutable;

namespace KextTrust.Kexts.Kpi;

/// <summary>Applies <see cref="KpiRules"/> to a kext's imported symbols and declared libraries.</summary>
public static class KpiRuleEvaluator
{
    /// <summary>Evaluates <see cref="KpiRules.All"/>.</summary>
    /// <param name="importedSymbols">The kext's undefined (imported) symbols, mangled (<c>_sock_socket</c>, <c>__ZN11IOUSBDevice…</c>).</param>
    /// <param name="declaredLibraries">OSBundleLibraries: bundle id → requested version.</param>
    /// <param name="enforcement">The footnote's conditions; null = enforced (SIP on, no MDM approval).</param>
    public static KpiEvaluation Evaluate(
        IReadOnlyCollection<string> importedSymbols,
        IReadOnlyDictionary<string, string> declaredLibraries,
        KpiEnforcementContext? enforcement = null) =>
        Evaluate(KpiRules.All, importedSymbols, declaredLibraries, enforcement);

    /// <summary>Evaluates the given rules.</summary>
    public static KpiEvaluation Evaluate(
        IEnumerable<KpiRule> rules,
        IReadOnlyCollection<string> importedSymbols,
        IReadOnlyDictionary<string, string> declaredLibraries,
        KpiEnforcementContext? enforcement = null)
    {
        ArgumentNullException.ThrowIfNull(rules);
        ArgumentNullException.ThrowIfNull(importedSymbols);
        ArgumentNullException.ThrowIfNull(declaredLibraries);
        var context = enforcement ?? KpiEnforcementContext.Enforced;
        var imports = new Imports(importedSymbols, declaredLibraries);

        var findings = ImmutableArray.CreateBuilder<KpiFinding>();
        foreach (var rule in rules)
        {
            var symbols = new SortedSet<string>(StringComparer.Ordinal);
            var libraries = new SortedSet<string>(StringComparer.Ordinal);
            if (Match(rule.Trigger, imports, symbols, libraries))
            {
                findings.Add(new KpiFinding(rule, [.. symbols], [.. libraries]));
            }
        }
        var all = findings.ToImmutable();

        var verdicts = ImmutableArray.CreateBuilder<KpiReleaseVerdict>(MacOSRelease.All.Count);
        foreach (var release in MacOSRelease.All)
        {
            var statuses = all
                .Select(f =>
                {
                    var s = f.StatusOn(release);
                    return new KpiFindingStatus(f, s, s == KpiSupportStatus.Unsupported && !context.IsExempt);
                })
                .ToImmutableArray();
            var worst = statuses.Length == 0 ? KpiSupportStatus.Supported : statuses.Max(s => s.Status);
            verdicts.Add(new KpiReleaseVerdict(release, worst, statuses.Any(s => s.BlocksLoad), statuses));
        }
        return new KpiEvaluation(all, context, verdicts.MoveToImmutable());
    }

    private static bool Match(KpiTrigger trigger, Imports imports, SortedSet<string> symbols, SortedSet<string> libraries)
    {
        switch (trigger)
        {
            case KpiSymbolTrigger t:
                var hit = false;
                foreach (var s in t.Symbols)
                {
                    if (imports.Symbols.Contains(s))
                    {
                        symbols.Add(s);
                        hit = true;
                    }
                }
                return hit;
            case KpiFamilyTrigger t:
                var used = false;
                foreach (var id in t.Family.LibraryIds)
                {
                    if (imports.Libraries.ContainsKey(id))
                    {
                        libraries.Add(id);
                        used = true;
                    }
                }
                foreach (var (symbol, identifiers) in imports.Mangled)
                {
                    if (identifiers.Any(t.Family.MatchesIdentifier))
                    {
                        symbols.Add(symbol);
                        used = true;
                    }
                }
                return used;
            case KpiAnyOfTrigger t:
                var any = false;
                foreach (var sub in t.Triggers)
                {
                    any |= Match(sub, imports, symbols, libraries);
                }
                return any;
            case KpiAllOfTrigger t:
                var s2 = new SortedSet<string>(StringComparer.Ordinal);
                var l2 = new SortedSet<string>(StringComparer.Ordinal);
                foreach (var sub in t.Triggers)
                {
                    if (!Match(sub, imports, s2, l2))
                    {
                        return false;
                    }
                }
                symbols.UnionWith(s2);
                libraries.UnionWith(l2);
                return true;
            case KpiNoneOfTrigger t:
                return !t.Triggers.Any(sub => Match(sub, imports, new SortedSet<string>(StringComparer.Ordinal), new SortedSet<string>(StringComparer.Ordinal)));
            default:
                throw new ArgumentException($"unknown trigger {trigger.GetType().Name}", nameof(trigger));
        }
    }

    private sealed class Imports
    {
        public Imports(IReadOnlyCollection<string> symbols, IReadOnlyDictionary<string, string> libraries)
        {
            Symbols = new HashSet<string>(symbols, StringComparer.Ordinal);
            Libraries = libraries;
            Mangled = symbols.Where(ItaniumIdentifiers.IsMangled)
                .Distinct(StringComparer.Ordinal)
                .Select(s => (s, ItaniumIdentifiers.Extract(s)))
                .ToArray();
        }

        public IReadOnlySet<string> Symbols { get; }

        public IReadOnlyDictionary<string, string> Libraries { get; }

        public (string Symbol, IReadOnlyList<string> Identifiers)[] Mangled { get; }
    }
}

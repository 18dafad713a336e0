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
            // The sets are made on the first hit: most rules match nothing.
            SortedSet<string>? symbols = null, libraries = null;
            if (Match(rule.Trigger, imports, ref symbols, ref libraries))
            {
                findings.Add(new KpiFinding(rule, symbols is null ? [] : [.. symbols], libraries is null ? [] : [.. libraries]));
            }
        }
        var all = findings.ToImmutable();

        var verdicts = ImmutableArray.CreateBuilder<KpiReleaseVerdict>(MacOSRelease.All.Count);
        foreach (var release in MacOSRelease.All)
        {
            var statuses = ImmutableArray.CreateBuilder<KpiFindingStatus>(all.Length);
            var worst = KpiSupportStatus.Supported;
            var blocks = false;
            foreach (var f in all)
            {
                var s = f.StatusOn(release);
                var status = new KpiFindingStatus(f, s, s == KpiSupportStatus.Unsupported && !context.IsExempt);
                statuses.Add(status);
                worst = status.Status > worst ? status.Status : worst;
                blocks |= status.BlocksLoad;
            }
            verdicts.Add(new KpiReleaseVerdict(release, worst, blocks, statuses.MoveToImmutable()));
        }
        return new KpiEvaluation(all, context, verdicts.MoveToImmutable());
    }

    /// <summary>Matches a trigger, adding what it matched to the sets (made on first use).</summary>
    private static bool Match(KpiTrigger trigger, Imports imports, ref SortedSet<string>? symbols, ref SortedSet<string>? libraries)
    {
        switch (trigger)
        {
            case KpiSymbolTrigger t:
                var hit = false;
                foreach (var s in t.Symbols)
                {
                    if (imports.Symbols.Contains(s))
                    {
                        (symbols ??= new SortedSet<string>(StringComparer.Ordinal)).Add(s);
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
                        (libraries ??= new SortedSet<string>(StringComparer.Ordinal)).Add(id);
                        used = true;
                    }
                }
                foreach (var (symbol, identifiers) in imports.Mangled)
                {
                    if (NamesFamily(identifiers, t.Family))
                    {
                        (symbols ??= new SortedSet<string>(StringComparer.Ordinal)).Add(symbol);
                        used = true;
                    }
                }
                return used;
            case KpiAnyOfTrigger t:
                var any = false;
                foreach (var sub in t.Triggers)
                {
                    any |= Match(sub, imports, ref symbols, ref libraries);
                }
                return any;
            case KpiAllOfTrigger t:
                SortedSet<string>? s2 = null, l2 = null;
                foreach (var sub in t.Triggers)
                {
                    if (!Match(sub, imports, ref s2, ref l2))
                    {
                        return false;
                    }
                }
                if (s2 is not null)
                {
                    (symbols ??= new SortedSet<string>(StringComparer.Ordinal)).UnionWith(s2);
                }
                if (l2 is not null)
                {
                    (libraries ??= new SortedSet<string>(StringComparer.Ordinal)).UnionWith(l2);
                }
                return true;
            case KpiNoneOfTrigger t:
                foreach (var sub in t.Triggers)
                {
                    SortedSet<string>? ignoredSymbols = null, ignoredLibraries = null;
                    if (Match(sub, imports, ref ignoredSymbols, ref ignoredLibraries))
                    {
                        return false;
                    }
                }
                return true;
            default:
                throw new ArgumentException($"unknown trigger {trigger.GetType().Name}", nameof(trigger));
        }
    }

    private static bool NamesFamily(IReadOnlyList<string> identifiers, KpiFamily family)
    {
        for (var i = 0; i < identifiers.Count; i++)
        {
            if (family.MatchesIdentifier(identifiers[i]))
            {
                return true;
            }
        }
        return false;
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

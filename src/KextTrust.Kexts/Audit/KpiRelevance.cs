using System.Collections.Frozen;
using KextTrust.Kexts.Kpi;

namespace KextTrust.Kexts.Audit;

/// <summary>
/// The imported symbols that can affect a set of <see cref="KpiRule"/>s: the exact names of their symbol triggers and the
/// C++ symbols naming a class of one of their families. Filtering a kext's imports through it before
/// <see cref="KpiRuleEvaluator.Evaluate(IEnumerable{KpiRule}, IReadOnlyCollection{string}, IReadOnlyDictionary{string, string}, KpiEnforcementContext?)"/>
/// gives the same findings (no other symbol can match a trigger) at a fraction of the cost.
/// </summary>
internal sealed class KpiRelevance
{
    private readonly FrozenSet<string> _symbols;
    private readonly FrozenSet<string> _classNames;
    private readonly string[] _classPrefixes;

    /// <summary>The relevance index of <paramref name="rules"/>.</summary>
    public KpiRelevance(IEnumerable<KpiRule> rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        var symbols = new HashSet<string>(StringComparer.Ordinal);
        var families = new HashSet<KpiFamily>();
        foreach (var rule in rules)
        {
            Walk(rule.Trigger, symbols, families);
        }
        _symbols = symbols.ToFrozenSet(StringComparer.Ordinal);
        _classNames = families.SelectMany(f => f.ClassNames).ToFrozenSet(StringComparer.Ordinal);
        _classPrefixes = [.. families.SelectMany(f => f.ClassPrefixes).Distinct(StringComparer.Ordinal)];
    }

    private static void Walk(KpiTrigger trigger, HashSet<string> symbols, HashSet<KpiFamily> families)
    {
        switch (trigger)
        {
            case KpiSymbolTrigger t:
                symbols.UnionWith(t.Symbols);
                break;
            case KpiFamilyTrigger t:
                families.Add(t.Family);
                break;
            case KpiAnyOfTrigger t:
                foreach (var s in t.Triggers)
                {
                    Walk(s, symbols, families);
                }
                break;
            case KpiAllOfTrigger t:
                foreach (var s in t.Triggers)
                {
                    Walk(s, symbols, families);
                }
                break;
            case KpiNoneOfTrigger t:
                foreach (var s in t.Triggers)
                {
                    Walk(s, symbols, families);
                }
                break;
            default:
                throw new NotSupportedException($"KPI trigger {trigger.GetType().Name} is not known to the audit");
        }
    }

    /// <summary>True when the symbol can match some trigger of the rules.</summary>
    public bool IsRelevant(string symbol)
    {
        ArgumentNullException.ThrowIfNull(symbol);
        if (_symbols.Contains(symbol))
        {
            return true;
        }
        if (!ItaniumIdentifiers.IsMangled(symbol))
        {
            return false;
        }
        foreach (var id in ItaniumIdentifiers.Extract(symbol))
        {
            if (_classNames.Contains(id))
            {
                return true;
            }
            foreach (var p in _classPrefixes)
            {
                if (id.StartsWith(p, StringComparison.Ordinal))
                {
                    return true;
                }
            }
        }
        return false;
    }

    /// <summary>The relevant symbols of the given imports, distinct, in first-seen order.</summary>
    public IReadOnlyCollection<string> Filter(IEnumerable<string> symbols)
    {
        ArgumentNullException.ThrowIfNull(symbols);
        var kept = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var s in symbols)
        {
            if (seen.Add(s) && IsRelevant(s))
            {
                kept.Add(s);
            }
        }
        return kept;
    }
}

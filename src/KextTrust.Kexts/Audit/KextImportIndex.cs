using System.Collections.Concurrent;
using System.Text;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Kpi;

namespace KextTrust.Kexts.Audit;

/// <summary>Everything the audit asks about one imported symbol, independent of the kext importing it.</summary>
/// <param name="Symbol">The symbol, mangled.</param>
/// <param name="Exports">Which pseudo-kexts export it on each (release, architecture) slot.</param>
/// <param name="IsMangled">An Itanium C++ name.</param>
/// <param name="Family">For a C++ name, the first family of <see cref="KextLinkChecker"/>'s class families one of its identifiers belongs to.</param>
/// <param name="IsRuleRelevant">It can match a trigger of <see cref="KpiRules.All"/> (<see cref="KpiRelevance"/>).</param>
/// <param name="ClassVtable">For a member of a class, <c>__ZN[K]&lt;n&gt;C…</c>, the vtable of that class (<c>__ZTV&lt;n&gt;C</c>); else null.</param>
/// <param name="IsPadSlot">A reserved vtable slot, <c>__ZN&lt;n&gt;C&lt;m&gt;_RESERVEDC&lt;k&gt;Ev</c> (what xnu's kxld calls a padslot):
/// the kernel linker patches it from <paramref name="ClassVtable"/>.</param>
internal sealed record KextImportFacts(string Symbol, KpiSymbolExports Exports, bool IsMangled, KpiFamily? Family, bool IsRuleRelevant, string? ClassVtable, bool IsPadSlot)
{
    // What the link check reports when no declared library provides the symbol on a slot: the same for every kext,
    // so made once per slot (filled on demand; a race only builds an equal value twice).
    private readonly KextUnresolvedSymbol?[] _unresolved = new KextUnresolvedSymbol?[2 * MacOSRelease.All.Count];

    /// <summary>The symbol unresolved on a slot (<see cref="KpiCatalog.Slot"/>), with the libraries that would provide it, sorted.</summary>
    public KextUnresolvedSymbol UnresolvedOn(int slot)
    {
        var i = System.Numerics.BitOperations.Log2((uint)slot);
        return _unresolved[i] ??= Create();

        KextUnresolvedSymbol Create()
        {
            var available = new SortedSet<string>(Exports.BundlesOn(slot), StringComparer.Ordinal);
            available.UnionWith(Exports.FamiliesOn(slot));
            if (Family is not null)
            {
                available.Add(Family.LibraryIds[0]);
            }
            return new KextUnresolvedSymbol(Symbol, [.. available]);
        }
    }
}

/// <summary>
/// A memo of <see cref="KextImportFacts"/> per distinct imported symbol: kexts share most of their imports, so a scan
/// pays one catalog lookup (all releases and architectures at once), one demangling and one rule-relevance test
/// per distinct symbol, and a single hash lookup per import after that — from the import's UTF-8 bytes in the file,
/// so that only a new distinct symbol makes a string (kept in <see cref="KextImportFacts.Symbol"/>, shared by every
/// kext importing it). Thread-safe; grows with the distinct imports seen.
/// </summary>
internal sealed class KextImportIndex
{
    private readonly KpiCatalog _catalog;
    private readonly KpiRelevance _relevance = new(KpiRules.All);
    private readonly ConcurrentDictionary<string, KextImportFacts> _facts = new(Utf8SymbolComparer.Instance);
    private readonly ConcurrentDictionary<string, KextImportFacts>.AlternateLookup<ReadOnlySpan<byte>> _byUtf8;
    private readonly Func<string, KextImportFacts> _create;

    /// <summary>An index over a loaded catalog.</summary>
    public KextImportIndex(KpiCatalog catalog)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        _catalog = catalog;
        _create = Create;
        _byUtf8 = _facts.GetAlternateLookup<ReadOnlySpan<byte>>();
    }

    /// <summary>The facts of one symbol (computed on first use).</summary>
    public KextImportFacts this[string symbol] => _facts.TryGetValue(symbol, out var known) ? known : _facts.GetOrAdd(symbol, _create);

    /// <summary>
    /// The facts of one symbol given as its UTF-8 bytes, standing for the string <see cref="Encoding.UTF8"/> decodes
    /// them to (computed on first use; a string is made only then).
    /// </summary>
    public KextImportFacts this[ReadOnlySpan<byte> utf8Symbol] =>
        _byUtf8.TryGetValue(utf8Symbol, out var known) ? known : _facts.GetOrAdd(Encoding.UTF8.GetString(utf8Symbol), _create);

    /// <summary>The facts of each import of a slice, in its order.</summary>
    public KextImportFacts[] Lookup(KextSliceFacts slice) => [.. Imports(slice)];

    /// <summary>The facts of each name, in order (see <see cref="MachOSlice.UndefinedSymbolNames"/>).</summary>
    public KextImportFacts[] Lookup(MachOSymbolNames names)
    {
        var facts = names.Count == 0 ? [] : new KextImportFacts[names.Count];
        for (var i = 0; i < facts.Length; i++)
        {
            facts[i] = this[names[i]];
        }
        return facts;
    }

    /// <summary>As <see cref="Lookup(KextSliceFacts)"/>, without a copy when the slice was read with this index (the array is shared: read only).</summary>
    internal KextImportFacts[] Imports(KextSliceFacts slice)
    {
        ArgumentNullException.ThrowIfNull(slice);
        if (slice.ImportIndex == this && slice.Imports is { } known)
        {
            return known;
        }
        var facts = new KextImportFacts[slice.UndefinedSymbols.Length];
        for (var i = 0; i < facts.Length; i++)
        {
            facts[i] = this[slice.UndefinedSymbols[i]];
        }
        return facts;
    }

    /// <summary>The imports (each slice's <see cref="Lookup"/>) that can match a KPI rule, distinct, in first-seen order.</summary>
    public static IReadOnlyCollection<string> RuleRelevant(IEnumerable<KextImportFacts[]> slices)
    {
        ArgumentNullException.ThrowIfNull(slices);
        List<string>? kept = null;
        HashSet<string>? seen = null;
        foreach (var slice in slices)
        {
            foreach (var f in slice)
            {
                if (f.IsRuleRelevant && (seen ??= new HashSet<string>(StringComparer.Ordinal)).Add(f.Symbol))
                {
                    (kept ??= []).Add(f.Symbol);
                }
            }
        }
        return (IReadOnlyCollection<string>?)kept ?? [];
    }

    private KextImportFacts Create(string symbol)
    {
        var mangled = ItaniumIdentifiers.IsMangled(symbol);
        var (classVtable, isPadSlot) = mangled ? ClassMember(symbol) : (null, false);
        return new KextImportFacts(symbol, _catalog.SymbolExports(symbol), mangled,
            mangled ? KextLinkChecker.ClassFamilyOf(symbol) : null, _relevance.IsRelevant(symbol), classVtable, isPadSlot);
    }

    /// <summary>
    /// For a class member <c>__ZN[K|V|r…]&lt;n&gt;&lt;Class&gt;…</c>, the class's vtable <c>__ZTV&lt;n&gt;&lt;Class&gt;</c>, and
    /// whether the member is a reserved pad slot <c>__ZN&lt;n&gt;&lt;Class&gt;&lt;m&gt;_RESERVED&lt;Class&gt;&lt;digits&gt;Ev</c>
    /// (OSMetaClassDeclareReservedUnused, what xnu's kxld calls a padslot); (null, false) for anything else.
    /// </summary>
    internal static (string? ClassVtable, bool IsPadSlot) ClassMember(string symbol)
    {
        const string Prefix = "__ZN";
        const string Reserved = "_RESERVED";
        if (!symbol.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return (null, false);
        }
        var at = Prefix.Length;
        while (at < symbol.Length && symbol[at] is 'K' or 'V' or 'r')
        {
            at++; // CV-qualifiers of a member function
        }
        if (!ReadLength(symbol, ref at, out var classLength) || at + classLength >= symbol.Length)
        {
            return (null, false);
        }
        var className = symbol.AsSpan(at, classLength);
        var vtable = string.Concat("__ZTV", classLength.ToString(System.Globalization.CultureInfo.InvariantCulture), className);
        at += classLength;
        if (!symbol.EndsWith("Ev", StringComparison.Ordinal) || !ReadLength(symbol, ref at, out var nameLength) || at + nameLength != symbol.Length - 2)
        {
            return (vtable, false);
        }
        var name = symbol.AsSpan(at, nameLength);
        var isPadSlot = name.StartsWith(Reserved, StringComparison.Ordinal) && name[Reserved.Length..].StartsWith(className, StringComparison.Ordinal)
            && name[(Reserved.Length + classLength)..] is { IsEmpty: false } digits && !digits.ContainsAnyExceptInRange('0', '9');
        return (vtable, isPadSlot);

        static bool ReadLength(string s, ref int at, out int length)
        {
            length = 0;
            var start = at;
            while (at < s.Length && char.IsAsciiDigit(s[at]) && at - start < 4)
            {
                length = length * 10 + (s[at] - '0');
                at++;
            }
            return at > start && length > 0;
        }
    }
}

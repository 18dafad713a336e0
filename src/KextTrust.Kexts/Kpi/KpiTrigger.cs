using System.Collections.Immutable;

namespace KextTrust.Kexts.Kpi;

/// <summary>What makes a <see cref="KpiRule"/> apply to a kext: a small immutable expression over its imports.</summary>
public abstract record KpiTrigger;

/// <summary>Any of these exact mangled symbols is imported (e.g. <c>_kauth_listen_scope</c>).</summary>
/// <param name="Symbols">Mangled names, leading underscore included.</param>
internal sealed record KpiSymbolTrigger(ImmutableArray<string> Symbols) : KpiTrigger;

/// <summary>The family is used: one of its libraries is declared or one of its classes is imported.</summary>
/// <param name="Family">The family.</param>
internal sealed record KpiFamilyTrigger(KpiFamily Family) : KpiTrigger;

/// <summary>At least one trigger matches; evidence of every matching one.</summary>
/// <param name="Triggers">The alternatives.</param>
internal sealed record KpiAnyOfTrigger(ImmutableArray<KpiTrigger> Triggers) : KpiTrigger;

/// <summary>Every trigger matches; evidence of all.</summary>
/// <param name="Triggers">The conditions.</param>
internal sealed record KpiAllOfTrigger(ImmutableArray<KpiTrigger> Triggers) : KpiTrigger;

/// <summary>No trigger matches (a condition that contributes no evidence).</summary>
/// <param name="Triggers">The excluded conditions.</param>
internal sealed record KpiNoneOfTrigger(ImmutableArray<KpiTrigger> Triggers) : KpiTrigger;

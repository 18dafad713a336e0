namespace KextTrust.Kexts.Audit;

/// <summary>
/// The stable reason codes of <see cref="KextVerdict"/>s. Scripts and SARIF consumers key on these; the
/// human messages beside them may change.
/// </summary>
public static class KextAuditCodes
{
    /// <summary>Prefix of <c>unsupported-kpi:&lt;RULE-ID&gt;</c>: a KPI group unsupported there (refuses).</summary>
    public const string UnsupportedKpiPrefix = "unsupported-kpi:";

    /// <summary>Prefix of <c>deprecated-kpi:&lt;RULE-ID&gt;</c>: a deprecated KPI group (legacy system extension alert).</summary>
    public const string DeprecatedKpiPrefix = "deprecated-kpi:";

    /// <summary>
    /// Prefix of <c>kpi-not-enforced:&lt;RULE-ID&gt;</c>: an unsupported KPI group that does not refuse because the
    /// seed's footnote exempts the kext (SIP disabled or MDM approval); the reason names the exemption.
    /// </summary>
    public const string KpiNotEnforcedPrefix = "kpi-not-enforced:";

    /// <summary>Apple silicon needs an arm64e slice (a plain arm64 slice is not one): <c>KMErrorDomain</c> code 71.</summary>
    public const string MissingArm64e = "missing-arm64e";

    /// <summary>An Intel Mac needs an x86_64 (or x86_64h) slice.</summary>
    public const string MissingX86_64 = "missing-x86_64";

    /// <summary>Some imported symbol is exported by none of the declared libraries: the kernel linker refuses the kext.</summary>
    public const string UnresolvedSymbols = "unresolved-symbols";

    /// <summary>A declared library's requested version is outside its OSBundleCompatibleVersion…CFBundleVersion range.</summary>
    public const string LibraryVersion = "library-version";

    /// <summary>A declared kernel library (<c>com.apple.kpi.*</c>, a pseudo-kext) does not exist on that release.</summary>
    public const string MissingLibrary = "missing-library";

    /// <summary>No Developer ID kext signature where SIP requires one (unsigned, ad-hoc, invalid, or no kext-signing authority).</summary>
    public const string NoKextSignature = "no-kext-signature";

    /// <summary>No such Mac: macOS 10.15 never ran on Apple silicon.</summary>
    public const string NotApplicable = "not-applicable";

    /// <summary>
    /// The executable is not an <c>MH_KEXT_BUNDLE</c> (a dylib, an executable, …), or the slice of the platform's own
    /// architecture (the one its kernel loads) is not.
    /// </summary>
    public const string NotAKext = "not-a-kext";

    /// <summary>A slice that is no kext (e.g. acidanthera's i386 <c>MH_OBJECT</c>) beside the one the platform's kernel loads: ignored, as xnu does (informs).</summary>
    public const string IgnoredSlice = "ignored-slice";

    /// <summary>Info.plist names a CFBundleExecutable that is not in the bundle.</summary>
    public const string MissingExecutable = "missing-executable";

    /// <summary><c>unsupported-kpi:&lt;ruleId&gt;</c>.</summary>
    public static string UnsupportedKpi(string ruleId) => UnsupportedKpiPrefix + ruleId;

    /// <summary><c>deprecated-kpi:&lt;ruleId&gt;</c>.</summary>
    public static string DeprecatedKpi(string ruleId) => DeprecatedKpiPrefix + ruleId;

    /// <summary><c>kpi-not-enforced:&lt;ruleId&gt;</c>.</summary>
    public static string KpiNotEnforced(string ruleId) => KpiNotEnforcedPrefix + ruleId;
}

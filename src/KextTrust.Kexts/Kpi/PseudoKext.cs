namespace KextTrust.Kexts.Kpi;

/// <summary>
/// A kernel pseudo-kext of xnu's <c>System.kext</c> tree for one release: the bundle a kext names in
/// <c>OSBundleLibraries</c> to link a KPI.
/// </summary>
/// <param name="Release">The macOS release.</param>
/// <param name="BundleId">CFBundleIdentifier, e.g. <c>com.apple.kpi.bsd</c>.</param>
/// <param name="SymbolSet">The xnu symbol set it exports (CFBundleExecutable: BSDKernel, IOKit, …); null for
/// codeless resources (com.apple.kernel, AppleNMI, ApplePlatformFamily, IONVRAMFamily, IOSystemManagementFamily).</param>
/// <param name="CompatibleVersion">OSBundleCompatibleVersion (e.g. <c>8.0.0b1</c>); null when absent.</param>
/// <param name="Version">CFBundleVersion: the <c>###KERNEL_VERSION_LONG###</c> placeholder as the Darwin version
/// of the release's xnu tag (e.g. 20.6.0 for 11). Within a release the patch level varies; the major is
/// <see cref="MacOSRelease.KernelMajor"/>.</param>
public sealed record PseudoKext(MacOSRelease Release, string BundleId, string? SymbolSet, string? CompatibleVersion, string Version)
{
    /// <summary>True when the pseudo-kext carries a KPI symbol set (com.apple.kpi.*).</summary>
    public bool ExportsSymbolSet => SymbolSet is not null;
}

/// <summary>Where one catalog release came from.</summary>
/// <param name="Release">The release.</param>
/// <param name="XnuTag">xnu tag of the data (SOURCE-TAG), e.g. <c>xnu-7195.141.2</c>.</param>
/// <param name="KernelVersion">Darwin version of that tag, e.g. <c>20.6.0</c>.</param>
public sealed record KpiCatalogRelease(MacOSRelease Release, string XnuTag, string KernelVersion);

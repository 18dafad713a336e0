using System.Diagnostics.CodeAnalysis;
using KextTrust.Formats.MachO;

namespace KextTrust.Kexts.Kpi;

/// <summary>The two kext architectures of macOS 11+: x86_64 (Intel) and arm64e (Apple silicon).</summary>
public enum KextArchitecture
{
    /// <summary>x86_64 / x86_64h: Intel Macs.</summary>
    X86_64 = 0,

    /// <summary>arm64 / arm64e: Apple silicon (xnu's arm64 export files stand for arm64e kexts).</summary>
    Arm64 = 1,
}

/// <summary>
/// The kind of Mac: its hardware platform. The one platform type of every layer (the audit's verdict cells, the
/// machine description's <c>platform</c>, secure boot); its names are <see cref="KextArchitectures.Name(MacPlatform)"/>.
/// </summary>
public enum MacPlatform
{
    /// <summary>An Intel Mac (kexts are x86_64; recovery is recoveryOS, Command-R).</summary>
    Intel,

    /// <summary>A Mac with Apple silicon (kexts are arm64e; recovery is One True Recovery).</summary>
    AppleSilicon,
}

/// <summary>
/// The one mapping between <see cref="MacPlatform"/>, <see cref="KextArchitecture"/> and Mach-O (slice names as
/// <see cref="MachOSlice.Architecture"/> gives them, the builders' <see cref="MachOTargetArchitecture"/>). Every layer
/// asks here rather than writing its own <c>AppleSilicon ? "arm64e" : "x86_64"</c>.
/// </summary>
public static class KextArchitectures
{
    /// <summary>Maps Mach-O architecture names: x86_64, x86_64h → X86_64; arm64, arm64e → Arm64 (xnu's export files).</summary>
    public static bool TryParse(string? name, out KextArchitecture architecture)
    {
        switch (name)
        {
            case "x86_64" or "x86_64h":
                architecture = KextArchitecture.X86_64;
                return true;
            case "arm64" or "arm64e":
                architecture = KextArchitecture.Arm64;
                return true;
            default:
                architecture = default;
                return false;
        }
    }

    /// <summary>
    /// The architecture whose <see cref="SliceName"/> is exactly <paramref name="sliceName"/> ("arm64e" or "x86_64"):
    /// the names kmd, the receipt and an AuxKC accept (an arm64 slice is not one Apple silicon's kernel loads).
    /// </summary>
    public static bool TryParseSliceName(string? sliceName, out KextArchitecture architecture)
    {
        switch (sliceName)
        {
            case "x86_64":
                architecture = KextArchitecture.X86_64;
                return true;
            case "arm64e":
                architecture = KextArchitecture.Arm64;
                return true;
            default:
                architecture = default;
                return false;
        }
    }

    /// <summary>Intel or Apple silicon.</summary>
    public static MacPlatform Platform(this KextArchitecture architecture) =>
        architecture == KextArchitecture.Arm64 ? MacPlatform.AppleSilicon : MacPlatform.Intel;

    /// <summary>The kext architecture a Mac of <paramref name="platform"/> loads.</summary>
    public static KextArchitecture Architecture(this MacPlatform platform) =>
        platform == MacPlatform.AppleSilicon ? KextArchitecture.Arm64 : KextArchitecture.X86_64;

    /// <summary>xnu's name in export file names: "x86_64" or "arm64".</summary>
    public static string XnuName(this KextArchitecture architecture) =>
        architecture == KextArchitecture.Arm64 ? "arm64" : "x86_64";

    /// <summary>The Mach-O slice the Mac's kernel loads, as lipo names it: "arm64e" (Apple silicon) or "x86_64".</summary>
    public static string SliceName(this KextArchitecture architecture) =>
        architecture == KextArchitecture.Arm64 ? "arm64e" : "x86_64";

    /// <summary>What the Mach-O builders emit for that slice: arm64e (CPU_SUBTYPE_ARM64E, PAC ABI) or x86_64.</summary>
    public static MachOTargetArchitecture MachOTarget(this KextArchitecture architecture) =>
        architecture == KextArchitecture.Arm64 ? MachOTargetArchitecture.Arm64e : MachOTargetArchitecture.X86_64;

    /// <summary>The platform's name in JSON and on the command line: "apple-silicon" or "intel".</summary>
    public static string Name(this MacPlatform platform) => platform == MacPlatform.AppleSilicon ? "apple-silicon" : "intel";

    /// <summary>The platform's name in prose: "Apple silicon" or "Intel".</summary>
    public static string DisplayName(this MacPlatform platform) => platform == MacPlatform.AppleSilicon ? "Apple silicon" : "Intel";

    /// <summary>Parses <see cref="Name(MacPlatform)"/> ("apple-silicon", "intel"), exactly.</summary>
    public static bool TryParsePlatform([NotNullWhen(true)] string? name, out MacPlatform platform)
    {
        switch (name)
        {
            case "apple-silicon":
                platform = MacPlatform.AppleSilicon;
                return true;
            case "intel":
                platform = MacPlatform.Intel;
                return true;
            default:
                platform = default;
                return false;
        }
    }
}

namespace KextTrust.Kexts.Kpi;

/// <summary>The two kext architectures of macOS 11+: x86_64 (Intel) and arm64e (Apple silicon).</summary>
public enum KextArchitecture
{
    /// <summary>x86_64 / x86_64h: Intel Macs.</summary>
    X86_64 = 0,

    /// <summary>arm64 / arm64e: Apple silicon (xnu's arm64 export files stand for arm64e kexts).</summary>
    Arm64 = 1,
}

/// <summary>The Mac hardware platform of an architecture.</summary>
public enum MacPlatform
{
    /// <summary>Intel Macs.</summary>
    Intel,

    /// <summary>Apple silicon Macs.</summary>
    AppleSilicon,
}

/// <summary>Parsing and naming of <see cref="KextArchitecture"/>.</summary>
public static class KextArchitectures
{
    /// <summary>Maps Mach-O architecture names: x86_64, x86_64h → X86_64; arm64, arm64e → Arm64.</summary>
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

    /// <summary>Intel or Apple silicon.</summary>
    public static MacPlatform Platform(this KextArchitecture architecture) =>
        architecture == KextArchitecture.Arm64 ? MacPlatform.AppleSilicon : MacPlatform.Intel;

    /// <summary>xnu's name in export file names: "x86_64" or "arm64".</summary>
    public static string XnuName(this KextArchitecture architecture) =>
        architecture == KextArchitecture.Arm64 ? "arm64" : "x86_64";
}

namespace KextTrust.Machine;

/// <summary>
/// Where things live in a simulated Mac's folder, laid out like the real volumes (machine-relative paths,
/// forward slashes). <c>machine.json</c> and <c>nvram.plist</c> stand for the hardware and firmware.
/// </summary>
public static class MachineLayout
{
    /// <summary>The machine description (hardware, users, OS, clock): <see cref="MachineDescription"/> as JSON.</summary>
    public const string Description = "machine.json";
    /// <summary>NVRAM variables as an XML plist (<c>kext-consent</c> state of <c>spctl kext-consent</c>).</summary>
    public const string Nvram = "nvram.plist";
    /// <summary>Third-party kexts as installed.</summary>
    public const string LibraryExtensions = "Library/Extensions";
    /// <summary>Validated copies made by kext staging, under their original path.</summary>
    public const string StagedExtensions = "Library/StagedExtensions";
    /// <summary>Apple's kexts.</summary>
    internal const string SystemExtensions = "System/Library/Extensions";
    /// <summary>The exclude-list kext.</summary>
    internal const string ExcludeListKext = "System/Library/Extensions/AppleKextExcludeList.kext";
    /// <summary>The exclude list's Info.plist.</summary>
    public const string ExcludeListInfoPlist = "System/Library/Extensions/AppleKextExcludeList.kext/Contents/Info.plist";
    /// <summary>The syspolicyd KextPolicy SQLite database.</summary>
    public const string KextPolicy = "var/db/SystemPolicyConfiguration/KextPolicy";
    /// <summary>Installed configuration profiles, one <c>PAYLOAD-IDENTIFIER.mobileconfig</c> each (as delivered).</summary>
    public const string ProfileStore = "var/db/ConfigurationProfiles/Store";
    /// <summary>The Preboot volume (the LocalPolicy and the Apple-silicon AuxKC live here).</summary>
    public const string Preboot = "Preboot";

    /// <summary>An optional extra trusted root certificate (PEM) for kext signatures (a test PKI on a demo Mac).</summary>
    public const string TrustRoot = "trust-root.pem";
    /// <summary>The user-authorized kext list as last derived (the bytes of the consent layer's <c>UserApprovedKextList</c>).</summary>
    public const string Uakl = "var/db/KernelExtensionManagement/UserApprovedKextList.uakl";

    /// <summary>Folders created by <c>machine init</c>.</summary>
    public static IReadOnlyList<string> Folders { get; } =
    [
        LibraryExtensions, StagedExtensions, SystemExtensions, "var/db/SystemPolicyConfiguration", ProfileStore,
        "var/db/KernelExtensionManagement", Preboot, "System/Library/KernelCollections", "Users",
    ];

    /// <summary>The staged path of a kext installed at <paramref name="libraryRelative"/> (StagedExtensions + original path).</summary>
    public static string StagedPathOf(string libraryRelative) => StagedExtensions + "/" + libraryRelative;
}

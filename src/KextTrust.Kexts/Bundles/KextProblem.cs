namespace KextTrust.Kexts.Bundles;

/// <summary>Stable codes for what is wrong with a kext bundle. Each is reported, never thrown.</summary>
public enum KextProblemCode
{
    /// <summary>No Info.plist where the layout needs one.</summary>
    InfoPlistMissing,
    /// <summary>Info.plist exists but is not a readable property list.</summary>
    InfoPlistUnreadable,
    /// <summary>Info.plist's root is not a dictionary.</summary>
    InfoPlistNotDictionary,
    /// <summary>CFBundleIdentifier absent or not a string.</summary>
    BundleIdentifierMissing,
    /// <summary>CFBundleVersion absent, not a string, or not in the kext version grammar.</summary>
    BundleVersionInvalid,
    /// <summary>OSBundleCompatibleVersion present but invalid, or newer than CFBundleVersion.</summary>
    CompatibleVersionInvalid,
    /// <summary>CFBundleExecutable names a file that is not there.</summary>
    ExecutableMissing,
    /// <summary>CFBundlePackageType present and not KEXT.</summary>
    PackageTypeNotKext,
    /// <summary>An OSBundleLibraries entry is not a string version in the kext grammar.</summary>
    LibraryVersionInvalid,
    /// <summary>OSBundleLibraries is not a dictionary.</summary>
    LibrariesNotDictionary,
    /// <summary>A symbolic link inside the bundle points outside it (or is absolute).</summary>
    SymlinkEscapesBundle,
    /// <summary>A file the bundle needs (Info.plist, executable) is itself a link out of the bundle.</summary>
    RequiredFileIsEscapingLink,
    /// <summary>A nested plug-in could not be read as a kext.</summary>
    PlugInUnreadable,
}

/// <summary>One problem found in a bundle: code, message and the path it concerns.</summary>
public sealed record KextProblem(KextProblemCode Code, string Message, string? Path = null)
{
    public override string ToString() => Path is null ? $"{Code}: {Message}" : $"{Code}: {Message} ({Path})";
}

/// <summary>The bundle cannot be opened at all (path missing, not a folder, unreadable).</summary>
public sealed class KextBundleException(string path, string reason, Exception? inner = null)
    : KextTrust.Formats.KextTrustException($"{path}: {reason}", inner)
{
    /// <inheritdoc/>
    public override string ErrorCode => "UnreadableBundle";

    /// <inheritdoc/>
    public override KextTrust.Formats.ErrorKind Kind => KextTrust.Formats.ErrorKind.InvalidInput;

    public string BundlePath { get; } = path;
    public string Reason { get; } = reason;
}

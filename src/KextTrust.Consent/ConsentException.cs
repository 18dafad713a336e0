using KextTrust.Formats;

namespace KextTrust.Consent;

/// <summary>
/// Stable codes of the errors (exceptions) of KextTrust.Consent; ours start at 1000. Why a kext does not load is not an
/// error: load decisions carry the one shared vocabulary, <see cref="Kexts.Trust.TrustCode"/>, and so does a refused
/// signature (<see cref="KextSignatureRefusedException"/>).
/// </summary>
public enum ConsentCode
{
    /// <summary>The kext is not installed on this Mac.</summary>
    NotInstalled = 1004,
    /// <summary>The kext bundle cannot be read.</summary>
    UnreadableKext = 1005,
    /// <summary>Unknown user or wrong password.</summary>
    AuthenticationFailed = 1200,
    /// <summary>The user is not an administrator and the rule requires one.</summary>
    AdminRequired = 1201,
    /// <summary>No "blocked" alert was shown for this team / bundle.</summary>
    NoPendingAlert = 1202,
    /// <summary>The 30-minute approval window after the alert has passed.</summary>
    ApprovalWindowExpired = 1203,
    /// <summary>User approvals are disabled (MDM without AllowUserOverrides, or consent not in force).</summary>
    UserApprovalDisabled = 1204,
    /// <summary>The command is only available in recoveryOS.</summary>
    RecoveryOnly = 1300,
    /// <summary>The Mac is not enrolled in MDM (or the enrollment cannot deliver this payload).</summary>
    NotEnrolled = 1400,
    /// <summary>The profile is malformed or hostile.</summary>
    ProfileInvalid = 1401,
    /// <summary>This payload cannot be installed manually.</summary>
    ManualInstallNotAllowed = 1402,
    /// <summary>The payload needs a newer macOS.</summary>
    UnsupportedOSVersion = 1403,
    /// <summary>No installed profile has this PayloadIdentifier.</summary>
    ProfileNotInstalled = 1404,
    /// <summary>The profile was installed through the other channel (MDM-installed profiles are replaced and removed only by MDM).</summary>
    ProfileManagedByMdm = 1405,
    /// <summary>An exclude list is malformed or not newer than the installed one.</summary>
    ExcludeListInvalid = 1600,
    /// <summary>The exclude list offered is not newer than the installed one.</summary>
    ExcludeListNotNewer = 1601,
    /// <summary>A command argument is invalid.</summary>
    InvalidArgument = 1700,
}

/// <summary>A typed error of the consent pipeline, naming the file (when any) and what was wrong.</summary>
/// <remarks>The message names the path once: a message that already starts with "path: " (a format exception's, which
/// names its file) is not prefixed again.</remarks>
public sealed class ConsentException(ConsentCode code, string? path, string message, Exception? inner = null)
    : KextTrustException(NamingPathOnce(path, message), inner)
{
    /// <summary>The stable code.</summary>
    public ConsentCode Code { get; } = code;

    /// <inheritdoc/>
    public override string ErrorCode => Code.ToString();

    /// <summary>The action ran and the Mac refused it (exit 1); every other code is bad input or misuse (exit 2).</summary>
    public override ErrorKind Kind => Code is ConsentCode.AuthenticationFailed or ConsentCode.AdminRequired
        or ConsentCode.NoPendingAlert or ConsentCode.ApprovalWindowExpired or ConsentCode.UserApprovalDisabled
        or ConsentCode.RecoveryOnly or ConsentCode.NotEnrolled or ConsentCode.ManualInstallNotAllowed
        or ConsentCode.UnsupportedOSVersion or ConsentCode.ExcludeListNotNewer or ConsentCode.ProfileNotInstalled
        or ConsentCode.ProfileManagedByMdm
        ? ErrorKind.Refused : ErrorKind.InvalidInput;

    /// <summary>"1203 approval-window-expired": the stable number and its kebab-case name.</summary>
    public override string Label => NumberedLabel(Code);

    /// <summary>The file or folder concerned, when any.</summary>
    public string? Path { get; } = path;
}

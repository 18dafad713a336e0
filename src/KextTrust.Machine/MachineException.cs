using KextTrust.Formats;

namespace KextTrust.Machine;

/// <summary>
/// Stable codes of the machine folder's errors. The numbers are those the consent codes used for the same conditions
/// (KMErrorDomain 30 for a file that cannot be staged), so the CLI's <c>(code N name)</c> is unchanged.
/// </summary>
public enum MachineCode
{
    /// <summary>KMErrorDomain 30: a file cannot be copied into the machine as it is (a symbolic link).</summary>
    ValidationFailed = 30,
    /// <summary>The machine folder is missing or its description or journal is malformed.</summary>
    MachineInvalid = 1100,
    /// <summary>Another command holds the machine lock.</summary>
    MachineBusy = 1101,
    /// <summary>The KextPolicy database has the wrong schema or a row of the wrong type.</summary>
    DatabaseInvalid = 1500,
}

/// <summary>A typed error of the machine folder (lock, description, journal, KextPolicy database), naming the file concerned.</summary>
/// <remarks>The message names the path once: a message that already starts with "path: " is not prefixed again.</remarks>
public sealed class MachineException(MachineCode code, string? path, string message, Exception? inner = null)
    : KextTrustException(NamingPathOnce(path, message), inner)
{
    /// <summary>The stable code.</summary>
    public MachineCode Code { get; } = code;

    /// <inheritdoc/>
    public override string ErrorCode => Code.ToString();

    /// <summary>Busy when another command holds the lock; otherwise the folder or database is not readable input.</summary>
    public override ErrorKind Kind => Code == MachineCode.MachineBusy ? ErrorKind.Busy : ErrorKind.InvalidInput;

    /// <summary>"1100 machine-invalid": the stable number and its kebab-case name.</summary>
    public override string Label => NumberedLabel(Code);

    /// <summary>The file or folder concerned, when any.</summary>
    public string? Path { get; } = path;
}

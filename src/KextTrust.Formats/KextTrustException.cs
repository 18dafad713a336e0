namespace KextTrust.Formats;

/// <summary>What a failure means for the caller: the CLI exits 1 for a refusal, 2 for bad input or a busy Mac.</summary>
public enum ErrorKind
{
    /// <summary>The operation ran and was refused (wrong password, not in recovery, a signature SIP will not accept, …).</summary>
    Refused,
    /// <summary>An input could not be read or is malformed, or the request itself is invalid.</summary>
    InvalidInput,
    /// <summary>The resource is held by someone else (the Mac's lock).</summary>
    Busy,
}

/// <summary>
/// The base of every KextTrust error: a stable code (as JSON's <c>error.code</c> writes it), a kind (refused, invalid input,
/// busy) and a message naming what was wrong. Callers map errors generically from these two facts.
/// </summary>
public abstract class KextTrustException : Exception
{
    /// <summary>Creates the error with its message.</summary>
    protected KextTrustException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }

    /// <summary>The stable code (<c>NotInOneTrueRecovery</c>, <c>signature-invalid</c>, <c>Malformed</c>, …).</summary>
    public abstract string ErrorCode { get; }

    /// <summary>Refused, invalid input or busy.</summary>
    public abstract ErrorKind Kind { get; }

    /// <summary>
    /// The code as the "(code …)" suffix of a one-line report shows it, or null for none; by default the code of a
    /// refusal, nothing for bad input (whose message already names the file, offset and rule).
    /// </summary>
    public virtual string? Label => Kind == ErrorKind.Refused ? ErrorCode : null;

    /// <summary>
    /// The message naming <paramref name="path"/> once: prefixed with "path: " unless it already starts so (a format
    /// exception's message names its file) or there is no path.
    /// </summary>
    protected static string NamingPathOnce(string? path, string message) =>
        path is null || message.StartsWith(path + ": ", StringComparison.Ordinal) ? message : $"{path}: {message}";

    /// <summary>"1203 approval-window-expired": a numbered code's stable number and its kebab-case name.</summary>
    protected static string NumberedLabel<TCode>(TCode code) where TCode : struct, Enum =>
        $"{Convert.ToInt64(code, System.Globalization.CultureInfo.InvariantCulture).ToString(System.Globalization.CultureInfo.InvariantCulture)} "
        + System.Text.Json.JsonNamingPolicy.KebabCaseLower.ConvertName(code.ToString());
}

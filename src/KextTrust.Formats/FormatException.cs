namespace KextTrust.Formats;

/// <summary>
/// The base of every parse failure in KextTrust: names the input (file path or a caller-given
/// label), the byte offset at which the rule was broken, and the rule itself. Parsers throw a
/// subclass per format (<c>MachOFormatException</c>, <c>PropertyListFormatException</c>, …) and
/// never any other exception type for malformed input.
/// </summary>
public abstract class KextTrustFormatException : KextTrustException
{
    protected KextTrustFormatException(string format, string? source, long offset, string rule, Exception? inner = null)
        : base(Compose(format, source, offset, rule), inner)
    {
        Format = format;
        SourceName = source;
        Offset = offset;
        Rule = rule;
    }

    /// <summary>The format being parsed ("Mach-O", "property list", …).</summary>
    public string Format { get; }

    /// <summary>The file path or label of the input; null when the caller gave none.</summary>
    public string? SourceName { get; }

    /// <summary>Byte offset in the input where the problem was found (-1 when not applicable).</summary>
    public long Offset { get; }

    /// <summary>The rule that was broken, in plain words.</summary>
    public string Rule { get; }

    /// <inheritdoc/>
    public override string ErrorCode => "Malformed";

    /// <inheritdoc/>
    public override ErrorKind Kind => ErrorKind.InvalidInput;

    private static string Compose(string format, string? source, long offset, string rule)
    {
        var where = source ?? "<input>";
        return offset >= 0
            ? $"{where}: invalid {format} at offset {offset} (0x{offset:x}): {rule}"
            : $"{where}: invalid {format}: {rule}";
    }
}

namespace KextTrust.Formats.PropertyLists;

/// <summary>A malformed property list (XML or <c>bplist00</c>), or a required key that is missing or of the wrong type.</summary>
public sealed class PropertyListFormatException : KextTrustFormatException
{
    /// <summary>Creates the exception for <paramref name="source"/> at byte <paramref name="offset"/> (-1 when not applicable).</summary>
    public PropertyListFormatException(string? source, long offset, string rule, Exception? inner = null)
        : base("property list", source, offset, rule, inner)
    {
    }
}

namespace KextTrust.Formats.Image4;

/// <summary>
/// Thrown for any malformed Image4 input (IMG4, IM4P, IM4M, IM4R or a property): not strict DER,
/// wrong magic, wrong structure, duplicate or mismatched property 4CCs, trailing bytes.
/// </summary>
public sealed class Image4FormatException : KextTrustFormatException
{
    /// <summary>Creates the exception for the given input, byte offset and broken rule.</summary>
    public Image4FormatException(string? source, long offset, string rule, Exception? inner = null)
        : base("Image4", source, offset, rule, inner)
    {
    }
}

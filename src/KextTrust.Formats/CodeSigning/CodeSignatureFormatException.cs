namespace KextTrust.Formats.CodeSigning;

/// <summary>A malformed Apple code-signature blob (SuperBlob, CodeDirectory, requirement, …).</summary>
public sealed class CodeSignatureFormatException : KextTrustFormatException
{
    /// <summary>Creates the exception for <paramref name="source"/> at <paramref name="offset"/>.</summary>
    public CodeSignatureFormatException(string? source, long offset, string rule, Exception? inner = null)
        : base("code signature", source, offset, rule, inner)
    {
    }
}

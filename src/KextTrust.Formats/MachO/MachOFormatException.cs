namespace KextTrust.Formats.MachO;

/// <summary>A Mach-O input broke a structural rule; names the input, the absolute file offset and the rule.</summary>
public sealed class MachOFormatException : KextTrustFormatException
{
    /// <summary>Creates the exception for <paramref name="source"/> at absolute file offset <paramref name="offset"/>.</summary>
    public MachOFormatException(string? source, long offset, string rule, Exception? inner = null)
        : base("Mach-O", source, offset, rule, inner)
    {
    }
}

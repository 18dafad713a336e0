namespace KextTrust.Formats.MachO;

/// <summary>What <see cref="MachOFile"/> reads beyond the headers and load commands.</summary>
public sealed record MachOReadOptions
{
    /// <summary>Everything: the default of every factory that takes no options.</summary>
    public static MachOReadOptions Default { get; } = new();

    /// <summary>Only the headers and load commands, for callers that need nothing else (signature verification).</summary>
    public static MachOReadOptions LoadCommandsOnly { get; } = new() { Symbols = false };

    /// <summary>
    /// Read LC_SYMTAB's entries, LC_DYSYMTAB and the LC_DYLD_CHAINED_FIXUPS blob (true by default). Off, their load
    /// commands are still read and bounds-checked as commands, but the tables themselves are neither walked nor
    /// validated: a malformed symbol table or fixups blob is then not an error (a code signature does not depend on
    /// it, and <c>codesign --verify</c> does not read it), and <see cref="MachOSlice.SymbolTable"/>,
    /// <see cref="MachOSlice.DynamicSymbolTable"/>, <see cref="MachOSlice.ChainedFixups"/> and the symbol lists
    /// throw <see cref="InvalidOperationException"/>.
    /// </summary>
    public bool Symbols { get; init; } = true;
}

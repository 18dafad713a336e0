namespace KextTrust.Formats.PropertyLists;

/// <summary>Reads and writes property lists in Apple's XML and <c>bplist00</c> binary forms.</summary>
public static class PropertyList
{
    /// <summary>Parses <paramref name="bytes"/>, choosing binary when they start with <c>bplist</c> and XML otherwise.</summary>
    /// <exception cref="PropertyListFormatException">The input is malformed.</exception>
    public static PlistNode Parse(ReadOnlySpan<byte> bytes, string? sourceName = null) =>
        IsBinary(bytes) ? BinaryPropertyListReader.Parse(bytes, sourceName) : XmlPropertyListReader.Parse(bytes, sourceName, null);

    /// <summary>Parses an XML property list.</summary>
    public static PlistNode ParseXml(ReadOnlySpan<byte> bytes, string? sourceName = null) => XmlPropertyListReader.Parse(bytes, sourceName, null);

    /// <summary>
    /// Parses an XML property list and tells where each value starts, for callers whose own checks of the contents
    /// must name an offset (see <see cref="PlistOffsets"/>).
    /// </summary>
    public static PlistNode ParseXml(ReadOnlySpan<byte> bytes, string? sourceName, out PlistOffsets offsets)
    {
        offsets = new PlistOffsets();
        return XmlPropertyListReader.Parse(bytes, sourceName, offsets);
    }

    /// <summary>Parses a <c>bplist00</c> binary property list.</summary>
    public static PlistNode ParseBinary(ReadOnlySpan<byte> bytes, string? sourceName = null) => BinaryPropertyListReader.Parse(bytes, sourceName);

    /// <summary>
    /// Parses a <c>bplist00</c> binary property list and tells where each value's object starts (its marker byte; an
    /// object that several containers reference has that one offset), like <see cref="ParseXml(ReadOnlySpan{byte}, string?, out PlistOffsets)"/>.
    /// </summary>
    public static PlistNode ParseBinary(ReadOnlySpan<byte> bytes, string? sourceName, out PlistOffsets offsets)
    {
        offsets = new PlistOffsets();
        return BinaryPropertyListReader.Parse(bytes, sourceName, offsets);
    }

    /// <summary>Parses either form (as <see cref="Parse"/> chooses) and tells where each value starts.</summary>
    public static PlistNode Parse(ReadOnlySpan<byte> bytes, string? sourceName, out PlistOffsets offsets) =>
        IsBinary(bytes) ? ParseBinary(bytes, sourceName, out offsets) : ParseXml(bytes, sourceName, out offsets);

    /// <summary>Reads and parses the file at <paramref name="path"/>; errors name the path.</summary>
    public static PlistNode ReadFile(string path) => Parse(File.ReadAllBytes(path), path);

    /// <summary>Whether <paramref name="bytes"/> start with the binary magic <c>bplist</c>.</summary>
    public static bool IsBinary(ReadOnlySpan<byte> bytes) => bytes.StartsWith("bplist"u8);

    /// <summary>
    /// UTF-8 XML in Apple's layout. Dates lose sub-second precision; a string holding an unpaired
    /// surrogate throws <see cref="ArgumentException"/>.
    /// </summary>
    public static byte[] ToXml(PlistNode root) => XmlPropertyListWriter.Write(root);

    /// <summary>A deterministic <c>bplist00</c> encoding of <paramref name="root"/>.</summary>
    public static byte[] ToBinary(PlistNode root) => BinaryPropertyListWriter.Write(root);
}

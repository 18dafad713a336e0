using System.Globalization;

namespace KextTrust.TestSupport;

/// <summary>Locates LC_CODE_SIGNATURE with the independent llvm-otool and returns the signature bytes.</summary>
public static class SignatureLocator
{
    public sealed record Located(string Path, long DataOffset, long DataSize, byte[] File)
    {
        public ReadOnlyMemory<byte> Signature => File.AsMemory((int)DataOffset, (int)DataSize);
    }

    public static Located Locate(string path)
    {
        var text = ExternalTool.RunChecked(ExternalTool.LlvmOtool, "-l", path);
        var lines = text.Split('\n').Select(l => l.Trim()).ToArray();
        var at = Array.FindIndex(lines, l => l == "cmd LC_CODE_SIGNATURE");
        if (at < 0)
        {
            throw new InvalidOperationException($"llvm-otool shows no LC_CODE_SIGNATURE in {path}");
        }
        long Field(string name) => long.Parse(
            lines.Skip(at).First(l => l.StartsWith(name + " ", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1],
            CultureInfo.InvariantCulture);
        var file = File.ReadAllBytes(path);
        var off = Field("dataoff");
        var size = Field("datasize");
        if (size <= 0 || off < 0 || off + size > file.Length)
        {
            throw new InvalidOperationException($"llvm-otool's LC_CODE_SIGNATURE dataoff {off} datasize {size} lies outside {path} ({file.Length} bytes)");
        }
        return new Located(path, off, size, file);
    }

    public static IEnumerable<object[]> Files() => Corpus.RuntimePackMachOFiles().Select(f => new object[] { f });
}

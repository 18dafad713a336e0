using KextTrust.Formats.MachO;

namespace KextTrust.TestSupport;

/// <summary>Tampers with a signed Mach-O file's code the way an attacker patching a kext would.</summary>
public static class CodePageTamper
{
    /// <summary>
    /// XORs <paramref name="mask"/> into the first byte of the first <c>__TEXT</c> section of the file's
    /// <paramref name="architecture"/> slice, rewrites the file, and returns the code page (4 KiB, counted from the
    /// slice's start) that now fails its hash.
    /// </summary>
    public static int FlipFirstTextByte(string executable, string architecture = "arm64e", byte mask = 0x01)
    {
        var bytes = File.ReadAllBytes(executable);
        long at, sliceOffset;
        using (var file = MachOFile.FromBytes(bytes, executable))
        {
            var slice = file.Slices.Single(s => s.Architecture == architecture);
            sliceOffset = slice.FileOffset;
            at = slice.FileOffset + slice.Segments.Single(s => s.Name == "__TEXT").Sections[0].Offset;
        }
        bytes[at] ^= mask;
        File.WriteAllBytes(executable, bytes);
        return (int)((at - sliceOffset) / 4096);
    }
}

using System.Buffers.Binary;
using System.Text;
using KextTrust.Boot.KernelManagement;
using KextTrust.Formats;
using KextTrust.Formats.MachO;

namespace KextTrust.Boot.Tests.KernelManagement;

/// <summary>A malformed AuxKC fails with <see cref="AuxKcFormatException"/> naming the file, the offset and the rule.</summary>
public sealed class AuxKcFormatTests
{
    private const string Source = "/System/Volumes/Preboot/test/AuxiliaryKernelCollection.kc";

    private static byte[] Built()
    {
        using var f = KmdBuildTests.Cast("kextrust-auxkc-format");
        return Kmd.BuildAuxKc(f.Request()).AuxKc.Bytes.ToArray();
    }

    private static AuxKcFormatException Refused(byte[] bytes)
    {
        var e = Assert.Throws<AuxKcFormatException>(() => AuxiliaryKernelCollection.Read(bytes, Source));
        Assert.IsAssignableFrom<KextTrustFormatException>(e);
        Assert.Equal(Source, e.SourceName);
        Assert.StartsWith(Source + ": invalid auxiliary kernel collection", e.Message);
        return e;
    }

    /// <summary>The file offset of the prelink info text (the only <c>__PRELINK_INFO,__info</c> section) and the text.</summary>
    private static (long Offset, string Text) PrelinkInfo(byte[] bytes)
    {
        var slice = MachOFile.FromBytes(bytes).Slices[0];
        var info = slice.Segments.Single(s => s.Name == "__PRELINK_INFO").Sections.Single(s => s.SectionName == "__info");
        return (info.Offset, Encoding.UTF8.GetString(bytes, (int)info.Offset, (int)info.Size));
    }

    [Fact]
    public void ATruncatedCollectionNamesTheFileAndTheLoadCommandThatReachesPastTheEnd()
    {
        var bytes = Built();
        var lastEntry = MachOFile.FromBytes(bytes).Slices[0].FilesetEntries[^1];
        // Cut the file inside the last kext: its LC_FILESET_ENTRY (fileoff field, 16 bytes into the command) now points past the end.
        var cut = bytes[..(int)(lastEntry.FileOffset + 16)];
        var e = Refused(cut);
        Assert.IsType<MachOFormatException>(e.InnerException);
        Assert.InRange(e.Offset, 32, (long)lastEntry.FileOffset);
        Assert.Equal(((MachOFormatException)e.InnerException!).Offset, e.Offset);
    }

    [Fact]
    public void AFilesetEntryWhoseOffsetIsOutOfTheFileIsRefusedAtItsFileoffField()
    {
        var bytes = Built();
        var entry = MachOFile.FromBytes(bytes).Slices[0].FilesetEntries[1];
        // fileset_entry_command: cmd, cmdsize, vmaddr (8), fileoff (8) at +16.
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan((int)entry.CommandFileOffset + 16), (ulong)bytes.Length + 0x4000);
        var e = Refused(bytes);
        Assert.Equal(entry.CommandFileOffset + 16, e.Offset);
        Assert.Contains(entry.EntryId, e.Rule);
    }

    [Fact]
    public void ACollectionThatIsNotAFilesetIsRefusedAtItsFirstFilesetEntryCommand()
    {
        var bytes = Built();
        var first = MachOFile.FromBytes(bytes).Slices[0].FilesetEntries[0];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(12), 2); // filetype MH_EXECUTE
        var e = Refused(bytes);
        Assert.Equal(first.CommandFileOffset, e.Offset);
        Assert.Contains("filetype is not MH_FILESET", e.Rule);
    }

    [Fact]
    public void AnArchitectureOtherThanArm64eOrX86_64IsRefusedAtTheHeadersCpuFields()
    {
        var bytes = Built();
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), 0); // cpusubtype ARM64_ALL: plain arm64
        var e = Refused(bytes);
        Assert.Equal(4, e.Offset);
        Assert.Equal("architecture arm64 is not arm64e or x86_64", e.Rule);
    }

    [Fact]
    public void APrelinkValueThatBreaksARuleIsRefusedAtThatValuesOffsetInTheFile()
    {
        var bytes = Built();
        var (at, text) = PrelinkInfo(bytes);
        // The second kext's _PrelinkKCID becomes 4: the error points at that <integer> element, not at the section.
        var key = "<key>_PrelinkKCID</key>";
        var second = text.IndexOf(key, text.IndexOf(key, StringComparison.Ordinal) + 1, StringComparison.Ordinal);
        var value = text.IndexOf("<integer>3</integer>", second, StringComparison.Ordinal);
        Encoding.UTF8.GetBytes("<integer>4</integer>").CopyTo(bytes, at + Encoding.UTF8.GetByteCount(text[..value]));
        var e = Refused(bytes);
        Assert.Equal(at + Encoding.UTF8.GetByteCount(text[..value]), e.Offset);
        Assert.Contains("_PrelinkKCID is not 3", e.Rule);
    }

    [Fact]
    public void MalformedPrelinkXmlIsRefusedAtTheOffsetTheXmlReaderFoundInTheFile()
    {
        var bytes = Built();
        var (at, text) = PrelinkInfo(bytes);
        var close = text.IndexOf("</dict>", StringComparison.Ordinal);
        Encoding.UTF8.GetBytes("</dicx>").CopyTo(bytes, at + close);
        var e = Refused(bytes);
        Assert.Equal(at + close, e.Offset);
        Assert.Contains("mismatched end tag", e.Rule);
    }
}

using System.Buffers.Binary;
using KextTrust.Formats;
using KextTrust.Formats.MachO;

namespace KextTrust.Kexts.Signing;

/// <summary>Signing could not be done: names the file, the offset (or −1) and the rule that stopped it.</summary>
public sealed class KextSigningException(string path, long offset, string rule, Exception? inner = null)
    : KextTrust.Formats.KextTrustException($"{path}: {(offset >= 0 ? $"at offset {offset} (0x{offset:x}): " : "")}{rule}", inner)
{
    /// <inheritdoc/>
    public override string ErrorCode => "SigningFailed";

    /// <inheritdoc/>
    public override KextTrust.Formats.ErrorKind Kind => KextTrust.Formats.ErrorKind.InvalidInput;

    /// <summary>The file or bundle.</summary>
    public string PathName { get; } = path;
    /// <summary>Offset of the problem, or −1.</summary>
    public long Offset { get; } = offset;
    /// <summary>The rule.</summary>
    public string Rule { get; } = rule;
}

/// <summary>
/// Places an embedded signature into one thin Mach-O slice: adds <c>LC_CODE_SIGNATURE</c> in the free header
/// space (or reuses the existing one), puts the SuperBlob at a 16-byte-aligned offset after <c>__LINKEDIT</c>'s
/// content and grows <c>__LINKEDIT</c>'s filesize and vmsize to cover it. The header is final before the code
/// pages are hashed, so the CodeDirectory covers exactly the bytes that end up in the file.
/// </summary>
internal static class MachOSignatureWriter
{
    /// <summary>Size of <c>linkedit_data_command</c>.</summary>
    public const int CodeSignatureCommandSize = 16;

    /// <summary>What a signature builder is given: the code (every byte before the signature) and the slice's facts.</summary>
    public sealed record SliceToSign(ReadOnlyMemory<byte> Code, string Architecture, MachOFileType FileType, ulong TextFileOffset, ulong TextFileSize);

    /// <summary>
    /// Returns the signed slice. <paramref name="buildSignature"/> gets the final code bytes and returns the
    /// SuperBlob; it may be called more than once if the reserved space turns out too small.
    /// </summary>
    /// <exception cref="KextSigningException">No room for the load command, no <c>__LINKEDIT</c>, or bytes after it.</exception>
    public static byte[] Sign(ReadOnlyMemory<byte> thinSlice, string path, Func<SliceToSign, byte[]> buildSignature)
    {
        ArgumentNullException.ThrowIfNull(buildSignature);
        MachOSlice slice;
        try
        {
            var file = MachOFile.FromBytes(thinSlice, path);
            if (file.IsFat)
            {
                throw new KextSigningException(path, 0, "expected a thin slice, got a fat file");
            }
            slice = file.Slices[0];
        }
        catch (KextTrustFormatException e)
        {
            throw new KextSigningException(path, e.Offset, e.Rule, e);
        }
        var src = thinSlice.Span;
        var le = slice.Segments.LastOrDefault(s => s.Name == "__LINKEDIT")
            ?? throw new KextSigningException(path, -1, $"the {slice.Architecture} slice has no __LINKEDIT segment to hold a signature");
        var leCommand = slice.LoadCommands.Single(c => c.Command is MachOLoadCommandType.Segment or MachOLoadCommandType.Segment64
            && SegmentName(c.Data.Span) == "__LINKEDIT");
        if (slice.Segments.Any(s => s.FileSize > 0 && s.FileOffset > le.FileOffset))
        {
            throw new KextSigningException(path, leCommand.FileOffset, "__LINKEDIT is not the last segment in the file");
        }
        var existing = slice.LoadCommands.Where(c => c.Command == MachOLoadCommandType.CodeSignature).Select(c => (long?)c.FileOffset).FirstOrDefault();
        long contentEnd;
        if (existing is not null)
        {
            contentEnd = slice.CodeSignature!.Value.DataOffset;
        }
        else
        {
            contentEnd = checked((long)(le.FileOffset + le.FileSize));
            if (contentEnd != src.Length)
            {
                throw new KextSigningException(path, contentEnd, $"__LINKEDIT ends at {contentEnd} but the {slice.Architecture} slice has {src.Length} bytes: data after __LINKEDIT cannot be signed");
            }
        }
        if (contentEnd < (long)le.FileOffset)
        {
            throw new KextSigningException(path, contentEnd, "the existing signature does not lie inside __LINKEDIT");
        }
        var dataOffset = (contentEnd + 15) & ~15L;
        var headerSize = slice.Is64Bit ? 32 : 28;
        var commandsEnd = headerSize + (long)slice.SizeOfCommands;
        long commandAt;
        if (existing is { } at)
        {
            commandAt = at;
        }
        else
        {
            var firstData = slice.Segments.SelectMany(s => s.Sections).Where(s => !s.IsZeroFill && s.Offset > 0).Select(s => (long)s.Offset)
                .Concat(slice.Segments.Where(s => s.FileSize > 0 && s.FileOffset > 0).Select(s => (long)s.FileOffset))
                .DefaultIfEmpty(src.Length).Min();
            if (commandsEnd + CodeSignatureCommandSize > firstData || src.Slice((int)commandsEnd, CodeSignatureCommandSize).ContainsAnyExcept((byte)0))
            {
                throw new KextSigningException(path, commandsEnd,
                    $"no room for LC_CODE_SIGNATURE in the {slice.Architecture} header: load commands end at {commandsEnd}, the first section starts at {firstData} (16 free zero bytes are needed)");
            }
            commandAt = commandsEnd;
        }
        var textSegment = slice.Segments.FirstOrDefault(s => s.Name == "__TEXT");
        var vmPage = (slice.CpuType & 0xFF) == 12 ? 0x4000UL : 0x1000UL;

        var reserve = 0L;
        for (var attempt = 0; attempt < 4; attempt++)
        {
            var buffer = new byte[checked(dataOffset + reserve)];
            src[..(int)contentEnd].CopyTo(buffer);
            var s = buffer.AsSpan();
            if (existing is null)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(s[16..], slice.NumberOfCommands + 1);
                BinaryPrimitives.WriteUInt32LittleEndian(s[20..], slice.SizeOfCommands + CodeSignatureCommandSize);
                BinaryPrimitives.WriteUInt32LittleEndian(s[(int)commandAt..], MachOLoadCommandType.CodeSignature);
                BinaryPrimitives.WriteUInt32LittleEndian(s[(int)(commandAt + 4)..], CodeSignatureCommandSize);
            }
            BinaryPrimitives.WriteUInt32LittleEndian(s[(int)(commandAt + 8)..], checked((uint)dataOffset));
            BinaryPrimitives.WriteUInt32LittleEndian(s[(int)(commandAt + 12)..], checked((uint)reserve));
            var fileSize = (ulong)(dataOffset + reserve) - le.FileOffset;
            var vmSize = Math.Max(le.VmSize, (fileSize + vmPage - 1) & ~(vmPage - 1));
            var cmd = (int)leCommand.FileOffset;
            if (leCommand.Command == MachOLoadCommandType.Segment64)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(s[(cmd + 32)..], vmSize);
                BinaryPrimitives.WriteUInt64LittleEndian(s[(cmd + 48)..], fileSize);
            }
            else
            {
                BinaryPrimitives.WriteUInt32LittleEndian(s[(cmd + 28)..], checked((uint)vmSize));
                BinaryPrimitives.WriteUInt32LittleEndian(s[(cmd + 36)..], checked((uint)fileSize));
            }
            var superBlob = buildSignature(new SliceToSign(buffer.AsMemory(0, (int)dataOffset), slice.Architecture, slice.FileType,
                textSegment?.FileOffset ?? 0, textSegment?.FileSize ?? 0));
            if (superBlob.Length <= reserve)
            {
                superBlob.CopyTo(buffer, dataOffset);
                return buffer;
            }
            // Too small (first pass, or a CMS a few bytes longer): reserve what was needed plus slack, and redo.
            reserve = ((superBlob.Length + 15) & ~15L) + 256;
        }
        throw new KextSigningException(path, dataOffset, "the signature size did not settle");
    }

    private static string SegmentName(ReadOnlySpan<byte> command)
    {
        var name = command.Slice(8, 16);
        var nul = name.IndexOf((byte)0);
        return System.Text.Encoding.ASCII.GetString(nul < 0 ? name : name[..nul]);
    }
}

using System.Buffers;
using System.Buffers.Binary;

namespace KextTrust.Formats.MachO;

/// <summary>
/// A Mach-O file: thin (one slice) or fat/universal (several). Every offset, size and count is checked
/// before use; malformed input raises <see cref="MachOFormatException"/> and nothing else.
/// </summary>
public sealed class MachOFile : IDisposable
{
    /// <summary>FAT_MAGIC (big-endian on disk).</summary>
    internal const uint FatMagic = 0xCAFEBABE;
    /// <summary>FAT_MAGIC_64 (big-endian on disk).</summary>
    internal const uint FatMagic64 = 0xCAFEBABF;
    /// <summary>MH_MAGIC.</summary>
    internal const uint MachMagic = 0xFEEDFACE;
    /// <summary>MH_MAGIC_64.</summary>
    internal const uint MachMagic64 = 0xFEEDFACF;

    /// <summary>
    /// Largest nfat_arch accepted. Real universal binaries carry a handful of slices; Java class files share
    /// 0xcafebabe and put their major version (≥ 45) where nfat_arch is, so anything above this is not Mach-O.
    /// </summary>
    internal const int MaxFatArchitectures = 30;

    private readonly IDisposable? _owner;
    private readonly MachOBytesLifetime? _lifetime;

    private readonly bool _readSymbols;

    private MachOFile(ReadOnlyMemory<byte> data, string? sourceName, IDisposable? owner, MachOReadOptions? options = null)
    {
        _readSymbols = (options ?? MachOReadOptions.Default).Symbols;
        Data = data;
        SourceName = sourceName;
        _owner = owner;
        _lifetime = owner is null ? null : new MachOBytesLifetime();
        var span = data.Span;
        if (span.Length < 4)
        {
            throw new MachOFormatException(sourceName, 0, $"file is {span.Length} bytes: too short for a Mach-O magic");
        }
        var be = BinaryPrimitives.ReadUInt32BigEndian(span);
        if (be is FatMagic or FatMagic64)
        {
            IsFat = true;
            Slices = ReadFat(span, be == FatMagic64);
        }
        else
        {
            Slices = [new MachOSlice(sourceName, data, 0, 0, isFilesetEntry: false, _lifetime, _readSymbols)];
        }
    }

    /// <summary>The file path or caller-given label used in errors.</summary>
    public string? SourceName { get; }

    /// <summary>All bytes of the file.</summary>
    public ReadOnlyMemory<byte> Data { get; }

    /// <summary>True for a fat (universal) file.</summary>
    public bool IsFat { get; }

    /// <summary>The thin Mach-O images: one for a thin file, one per fat_arch otherwise.</summary>
    public IReadOnlyList<MachOSlice> Slices { get; }

    /// <summary>
    /// Opens and parses a file: through a read-only memory map when it is at least
    /// <see cref="MemoryMapThreshold"/> bytes, else read in one call. Dispose to unmap.
    /// </summary>
    public static MachOFile Open(string path) => Open(path, pooled: false);

    /// <summary>
    /// Like <see cref="Open(string)"/>, but a file below <see cref="PooledReadLimit"/> is read into a buffer
    /// rented from <see cref="ArrayPool{T}.Shared"/> and given back on <see cref="Dispose"/> (larger ones are mapped): for scans of many
    /// files, where a fresh buffer per file costs more (zeroing, page faults) than parsing it. Nothing that views
    /// the file's bytes (<see cref="Data"/>, slices, lazily decoded symbols) may be used after Dispose; strings
    /// already returned stay valid.
    /// </summary>
    public static MachOFile OpenPooled(string path) => Open(path, pooled: true);

    /// <summary>
    /// Like <see cref="OpenPooled(string)"/>, but through a handle the caller opened and keeps (it is not closed here,
    /// nor when the file is disposed): a caller that later reads more of the file through the same handle (to stream
    /// its code pages, say) reads the very file that was parsed, even if the path is replaced in between.
    /// <see cref="IsMemoryMapped"/> tells which way the bytes came.
    /// </summary>
    public static MachOFile OpenPooled(Microsoft.Win32.SafeHandles.SafeFileHandle handle, string path, MachOReadOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(handle);
        return Open(handle, path, pooled: true, options);
    }

    private static MachOFile Open(string path, bool pooled)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        return Open(handle, path, pooled, null);
    }

    private static MachOFile Open(Microsoft.Win32.SafeHandles.SafeFileHandle handle, string path, bool pooled, MachOReadOptions? options)
    {
        var length = RandomAccess.GetLength(handle);
        if (length > int.MaxValue)
        {
            throw new MachOFormatException(path, -1, $"file is {length} bytes: larger than 2 GiB is not supported");
        }
        if (length == 0)
        {
            return new MachOFile(ReadOnlyMemory<byte>.Empty, path, null, options);
        }
        if (length < (pooled ? PooledReadLimit : MemoryMapThreshold))
        {
            // Mapping a file costs a fixed ~0.5 ms (open, mmap, munmap, handles); for small files one read
            // is several times faster, and the bytes are no larger than the map would touch anyway.
            // Pooled: always a buffer of PooledReadLimit bytes, so that one buffer per thread serves every small file
            // in turn (buffers rented by each file's own size class would each be fresh memory, and a fresh page's
            // first touch costs more than reading it). Only the bytes read are touched, and the size is the one a
            // verifier rents for streaming the pages of mapped files, so one buffer per thread serves both.
            var buffer = pooled ? ArrayPool<byte>.Shared.Rent(PooledReadLimit) : new byte[length];
            var lease = pooled ? new PooledBuffer(buffer) : null;
            try
            {
                ReadFully(handle, path, buffer.AsSpan(0, (int)length));
                return new MachOFile(buffer.AsMemory(0, (int)length), path, lease, options);
            }
            catch
            {
                lease?.Dispose();
                throw;
            }
        }
        var manager = new MappedMemoryManager(handle, (int)length);
        try
        {
            return new MachOFile(manager.Memory, path, manager, options);
        }
        catch
        {
            ((IDisposable)manager).Dispose();
            throw;
        }
    }

    /// <summary>
    /// True when <see cref="Data"/> is a read-only memory map of the file (files of at least
    /// <see cref="MemoryMapThreshold"/> bytes, or <see cref="PooledReadLimit"/> for pooled opens): touching a byte then faults its page
    /// in, so a caller that walks the whole file once (hashing every code page) does better reading it through its
    /// own handle into a small reused buffer than through the map.
    /// </summary>
    public bool IsMemoryMapped => _owner is MappedMemoryManager;

    /// <summary>Files at least this large are read through a memory map; smaller ones with one read.</summary>
    internal const long MemoryMapThreshold = 1 << 20;

    /// <summary>
    /// Pooled opens read files below this size into one pooled buffer of this size; larger ones are mapped. A 1 MiB
    /// buffer cost ~250 first-touch page faults per thread (~3 ms of a 28-file verify) for files that a map serves
    /// as well once their pages are read through the handle.
    /// </summary>
    public const int PooledReadLimit = 256 * 1024;

    private static void ReadFully(Microsoft.Win32.SafeHandles.SafeFileHandle handle, string path, Span<byte> buffer)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = RandomAccess.Read(handle, buffer[read..], read);
            if (n == 0)
            {
                throw new MachOFormatException(path, read, $"file shrank while being read: {read} of {buffer.Length} bytes");
            }
            read += n;
        }
    }

    private sealed class PooledBuffer(byte[] buffer) : IDisposable
    {
        private byte[]? _buffer = buffer;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _buffer, null) is { } b)
            {
                ArrayPool<byte>.Shared.Return(b);
            }
        }
    }

    /// <summary>Parses bytes the caller owns (they are not copied).</summary>
    public static MachOFile FromBytes(ReadOnlyMemory<byte> bytes, string? sourceName = null) => new(bytes, sourceName, null);

    /// <summary>True when the header starts with a thin little-endian Mach-O magic or a plausible fat header.</summary>
    public static bool IsMachO(ReadOnlySpan<byte> header)
    {
        if (header.Length < 4)
        {
            return false;
        }
        var le = BinaryPrimitives.ReadUInt32LittleEndian(header);
        if (le is MachMagic or MachMagic64)
        {
            return true;
        }
        var be = BinaryPrimitives.ReadUInt32BigEndian(header);
        if (be is FatMagic or FatMagic64)
        {
            return header.Length >= 8 && BinaryPrimitives.ReadUInt32BigEndian(header[4..]) is > 0 and <= MaxFatArchitectures;
        }
        return false;
    }

    /// <summary>
    /// Releases the memory map or pooled buffer (for <see cref="Open"/> and <see cref="OpenPooled"/>); slices must not
    /// be used afterwards: what they would still have to decode from the file's bytes then throws <see cref="ObjectDisposedException"/>.
    /// </summary>
    public void Dispose()
    {
        _lifetime?.Release();
        _owner?.Dispose();
    }

    private MachOSlice[] ReadFat(ReadOnlySpan<byte> span, bool is64)
    {
        if (span.Length < 8)
        {
            throw new MachOFormatException(SourceName, 4, "fat_header truncated: nfat_arch missing");
        }
        var count = BinaryPrimitives.ReadUInt32BigEndian(span[4..]);
        if (count == 0 || count > MaxFatArchitectures)
        {
            throw new MachOFormatException(SourceName, 4,
                $"fat_header.nfat_arch is {count}: must be 1..{MaxFatArchitectures} (0xcafebabe with a large count is a Java class file, not Mach-O)");
        }
        var entrySize = is64 ? 32 : 20;
        long tableEnd = 8 + (long)count * entrySize;
        if (tableEnd > span.Length)
        {
            throw new MachOFormatException(SourceName, 8, $"fat_arch table of {count} entries ends at {tableEnd}, past the end of the file ({span.Length} bytes)");
        }
        var ranges = new (long Start, long End, long EntryOffset)[count];
        for (var i = 0; i < count; i++)
        {
            var e = 8 + i * entrySize;
            ulong offset, size;
            if (is64)
            {
                offset = BinaryPrimitives.ReadUInt64BigEndian(span[(e + 8)..]);
                size = BinaryPrimitives.ReadUInt64BigEndian(span[(e + 16)..]);
            }
            else
            {
                offset = BinaryPrimitives.ReadUInt32BigEndian(span[(e + 8)..]);
                size = BinaryPrimitives.ReadUInt32BigEndian(span[(e + 12)..]);
            }
            if (offset < (ulong)tableEnd || offset > (ulong)span.Length || size > (ulong)span.Length - offset)
            {
                throw new MachOFormatException(SourceName, e + 8,
                    $"fat_arch[{i}] offset {offset} size {size} does not lie inside the file after the fat header (file is {span.Length} bytes)");
            }
            ranges[i] = ((long)offset, (long)(offset + size), e + 8);
        }
        var sorted = (((long Start, long End, long EntryOffset)[])ranges.Clone());
        Array.Sort(sorted, (a, b) => a.Start.CompareTo(b.Start));
        for (var i = 1; i < sorted.Length; i++)
        {
            if (sorted[i].Start < sorted[i - 1].End)
            {
                throw new MachOFormatException(SourceName, sorted[i].EntryOffset,
                    $"fat slice at {sorted[i].Start} overlaps the slice at {sorted[i - 1].Start}..{sorted[i - 1].End}");
            }
        }
        var slices = new MachOSlice[count];
        for (var i = 0; i < count; i++)
        {
            var (start, end, _) = ranges[i];
            var data = Data.Slice((int)start, (int)(end - start));
            if (data.Length >= 4 && BinaryPrimitives.ReadUInt32BigEndian(data.Span) is FatMagic or FatMagic64)
            {
                throw new MachOFormatException(SourceName, start, "fat slice is itself a fat file: nesting is not allowed");
            }
            slices[i] = new MachOSlice(SourceName, data, start, 0, isFilesetEntry: false, _lifetime, _readSymbols);
        }
        return slices;
    }
}

/// <summary>Whether the bytes a <see cref="MachOFile"/> views (a pooled buffer or a memory map) are still its own.</summary>
internal sealed class MachOBytesLifetime
{
    private volatile bool _released;

    public void Release() => _released = true;

    /// <summary>Throws once the file was disposed: its bytes may already hold another file.</summary>
    public void ThrowIfReleased(string? source)
    {
        if (_released)
        {
            throw new ObjectDisposedException(nameof(MachOFile), $"{source ?? "Mach-O"}: the file was disposed before this was read from its bytes");
        }
    }
}

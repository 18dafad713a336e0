using KextTrust.Formats.MachO;

namespace KextTrust.Formats;

/// <summary>
/// A whole file's bytes for reading in place: a read-only memory map (no copy on the managed heap: the pages come
/// from the page cache as they are touched), or, for an empty file, no bytes. Dispose to unmap; the
/// <see cref="Memory"/> must not be used after that.
/// </summary>
public sealed class MappedFile : IDisposable
{
    private readonly IDisposable? _map;

    private MappedFile(ReadOnlyMemory<byte> memory, IDisposable? map)
    {
        Memory = memory;
        _map = map;
    }

    /// <summary>The file's bytes.</summary>
    public ReadOnlyMemory<byte> Memory { get; }

    /// <summary>Maps <paramref name="path"/> read-only.</summary>
    /// <exception cref="IOException">The file cannot be opened, or is larger than 2 GiB.</exception>
    public static MappedFile Open(string path)
    {
        var length = new FileInfo(path).Length;
        if (length > int.MaxValue)
        {
            throw new IOException($"{path}: {length} bytes, larger than 2 GiB is not supported");
        }
        if (length == 0)
        {
            return new MappedFile(ReadOnlyMemory<byte>.Empty, null);
        }
        var manager = new MappedMemoryManager(path, (int)length);
        return new MappedFile(manager.Memory, manager);
    }

    /// <summary>Maps <paramref name="path"/> read-only, or returns null when there is no such file.</summary>
    public static MappedFile? OpenOptional(string path) => File.Exists(path) ? Open(path) : null;

    /// <inheritdoc/>
    public void Dispose() => _map?.Dispose();
}

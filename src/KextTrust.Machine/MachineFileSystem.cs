namespace KextTrust.Machine;

/// <summary>
/// The mutating file operations a machine store performs. Every write goes through this seam so that
/// tests can inject a fault at the N-th operation (<see cref="FaultInjectingFileSystem"/>).
/// </summary>
public interface IMachineFileSystem
{
    /// <summary>Writes <paramref name="bytes"/> to a new file and flushes it to disk.</summary>
    void WriteFileFlushed(string path, ReadOnlySpan<byte> bytes);

    /// <summary>Creates a directory (and parents).</summary>
    void CreateDirectory(string path);

    /// <summary>Renames a file or directory (never overwrites).</summary>
    void Move(string source, string destination);

    /// <summary>Deletes a file or a directory tree, if present.</summary>
    void Delete(string path);

    /// <summary>Copies a file byte for byte and flushes the copy; keeps the Unix mode.</summary>
    void CopyFileFlushed(string source, string destination);
}

/// <summary>The real file system.</summary>
internal sealed class PhysicalFileSystem : IMachineFileSystem
{
    /// <summary>The shared instance (stateless).</summary>
    public static PhysicalFileSystem Instance { get; } = new();

    /// <inheritdoc/>
    public void WriteFileFlushed(string path, ReadOnlySpan<byte> bytes)
    {
        using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None);
        fs.Write(bytes);
        fs.Flush(flushToDisk: true);
    }

    /// <inheritdoc/>
    public void CreateDirectory(string path) => Directory.CreateDirectory(path);

    /// <inheritdoc/>
    public void Move(string source, string destination)
    {
        if (Directory.Exists(source))
        {
            Directory.Move(source, destination);
        }
        else
        {
            File.Move(source, destination, overwrite: false);
        }
    }

    /// <inheritdoc/>
    public void Delete(string path)
    {
        if (Directory.Exists(path))
        {
            Directory.Delete(path, recursive: true);
        }
        else if (File.Exists(path))
        {
            File.Delete(path);
        }
    }

    /// <inheritdoc/>
    public void CopyFileFlushed(string source, string destination)
    {
        using (var input = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.Read))
        using (var output = new FileStream(destination, FileMode.CreateNew, FileAccess.Write, FileShare.None))
        {
            input.CopyTo(output);
            output.Flush(flushToDisk: true);
        }
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(destination, File.GetUnixFileMode(source));
        }
    }
}

/// <summary>Thrown by <see cref="FaultInjectingFileSystem"/> at the chosen operation.</summary>
internal sealed class InjectedFaultException(int operation) : IOException($"injected fault at file operation {operation}")
{
    /// <summary>The 1-based operation number that failed.</summary>
    public int Operation { get; } = operation;
}

/// <summary>
/// A file system that fails at the <see cref="FailAt"/>-th mutating operation and, like a power loss, at
/// every operation after it. With <see cref="FailAt"/> = 0 it only counts.
/// </summary>
internal sealed class FaultInjectingFileSystem(IMachineFileSystem inner, int failAt) : IMachineFileSystem
{
    private int _count;

    /// <summary>The 1-based operation to fail at; 0 never fails.</summary>
    public int FailAt { get; } = failAt;

    /// <summary>Mutating operations attempted so far.</summary>
    public int Count => _count;

    private void Tick()
    {
        var n = Interlocked.Increment(ref _count);
        if (FailAt > 0 && n >= FailAt)
        {
            throw new InjectedFaultException(n);
        }
    }

    /// <inheritdoc/>
    public void WriteFileFlushed(string path, ReadOnlySpan<byte> bytes) { Tick(); inner.WriteFileFlushed(path, bytes); }

    /// <inheritdoc/>
    public void CreateDirectory(string path) { Tick(); inner.CreateDirectory(path); }

    /// <inheritdoc/>
    public void Move(string source, string destination) { Tick(); inner.Move(source, destination); }

    /// <inheritdoc/>
    public void Delete(string path) { Tick(); inner.Delete(path); }

    /// <inheritdoc/>
    public void CopyFileFlushed(string source, string destination) { Tick(); inner.CopyFileFlushed(source, destination); }
}

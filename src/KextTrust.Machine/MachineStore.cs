using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace KextTrust.Machine;

/// <summary>
/// The simulated Mac's folder, opened under its lock file, with atomic multi-file changes.
/// <para>
/// Protocol of <see cref="MachineTransaction.Commit"/>: every new file or folder is first written beside its
/// target as <c>NAME.kt-new</c> and flushed (SQLite changes are made, inside a SQLite transaction, on such a
/// copy of the database). Then a journal <c>.kextrust-journal</c> listing the targets is written (temp name,
/// flush, rename). Each target is then switched: the current one renamed to <c>NAME.kt-old</c>, the new one
/// renamed into place. Deleting the journal is the commit point; the <c>.kt-old</c> copies are removed after.
/// Opening a machine whose journal still exists (a command failed or was interrupted before its commit point)
/// puts every <c>.kt-old</c> back, so the machine reads exactly as before; stray <c>.kt-new</c>/<c>.kt-old</c>
/// without a journal are leftovers and are removed. Leftovers can exist only after a transaction staged something:
/// the first staged change of a transaction first writes the marker <c>.kextrust-staging</c>, and a transaction
/// that committed completely removes it; opening walks the folder for leftovers only while a journal or that
/// marker exists, so opening a clean machine does not read every installed bundle.
/// </para>
/// Concurrent commands are serialised by <c>.kextrust.lock</c>, held open with <see cref="FileShare.None"/>.
/// </summary>
public sealed class MachineStore : IDisposable
{
    /// <summary>Name of the lock file in the machine folder.</summary>
    internal const string LockFileName = ".kextrust.lock";
    /// <summary>Name of the journal file in the machine folder.</summary>
    internal const string JournalFileName = ".kextrust-journal";
    /// <summary>Name of the marker that exists while staged changes (<c>.kt-new</c>/<c>.kt-old</c>) may exist.</summary>
    internal const string StagingMarkerFileName = ".kextrust-staging";
    internal const string NewSuffix = ".kt-new";
    internal const string OldSuffix = ".kt-old";

    private readonly FileStream _lock;
    private int _staging;

    private MachineStore(string root, IMachineFileSystem fs, FileStream lockStream)
    {
        Root = root;
        FileSystem = fs;
        _lock = lockStream;
    }

    /// <summary>The machine folder (absolute).</summary>
    public string Root { get; }

    /// <summary>The file-system seam writes go through.</summary>
    public IMachineFileSystem FileSystem { get; }

    /// <summary>Absolute path of a machine-relative path (forward slashes).</summary>
    public string PathOf(string relative) => Path.Combine(Root, relative.Replace('/', Path.DirectorySeparatorChar));

    /// <summary>
    /// Takes the lock of <paramref name="root"/> (waiting up to <paramref name="timeout"/>), then rolls back any
    /// change a failed or interrupted command left behind.
    /// </summary>
    public static MachineStore Open(string root, IMachineFileSystem? fs = null, TimeSpan? timeout = null, bool create = false)
    {
        root = Path.GetFullPath(root);
        if (!Directory.Exists(root))
        {
            if (!create)
            {
                throw new MachineException(MachineCode.MachineInvalid, root, "no simulated Mac here (run `kextrust machine init`)");
            }
            Directory.CreateDirectory(root);
        }
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        FileStream? stream = null;
        while (stream is null)
        {
            try
            {
                stream = new FileStream(Path.Combine(root, LockFileName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(15);
            }
            catch (IOException e)
            {
                throw new MachineException(MachineCode.MachineBusy, root, "another kextrust command holds the machine lock", e);
            }
        }
        var store = new MachineStore(root, fs ?? PhysicalFileSystem.Instance, stream);
        try
        {
            store.Recover();
        }
        catch
        {
            store.Dispose();
            throw;
        }
        return store;
    }

    /// <summary>Starts a transaction: stage changes, then <see cref="MachineTransaction.Commit"/>.</summary>
    public MachineTransaction Begin() => new(this);

    /// <summary>Opens the KextPolicy database read-only (no pooling, so no handle outlives the call).</summary>
    public SqliteConnection OpenDatabaseReadOnly() => KextPolicyDatabase.OpenReadOnly(PathOf(MachineLayout.KextPolicy));

    private void Recover()
    {
        // Recovery always uses the real file system: it runs when a machine is opened after a failure.
        var fs = PhysicalFileSystem.Instance;
        var journal = Path.Combine(Root, JournalFileName);
        fs.Delete(journal + ".tmp");
        var marker = Path.Combine(Root, StagingMarkerFileName);
        var staged = File.Exists(marker);
        if (File.Exists(journal))
        {
            staged = true;
            JournalEntry[] entries;
            try
            {
                entries = JsonSerializer.Deserialize(File.ReadAllBytes(journal), MachineJsonContext.Default.JournalEntryArray) ?? [];
            }
            catch (JsonException e)
            {
                throw new MachineException(MachineCode.MachineInvalid, journal, "the change journal is unreadable: " + e.Message, e);
            }
            foreach (var e in entries.Reverse())
            {
                var target = PathOf(e.Target);
                var old = target + OldSuffix;
                if (Exists(old))
                {
                    fs.Delete(target);
                    fs.Move(old, target);
                }
                else if (!e.HadOld)
                {
                    fs.Delete(target);
                }
                fs.Delete(target + NewSuffix);
            }
            fs.Delete(journal);
        }
        if (!staged)
        {
            return;
        }
        foreach (var leftover in Directory.EnumerateFileSystemEntries(Root, "*", SearchOption.AllDirectories)
                     .Where(p => p.EndsWith(NewSuffix, StringComparison.Ordinal) || p.EndsWith(OldSuffix, StringComparison.Ordinal))
                     .OrderByDescending(p => p.Length).ToArray())
        {
            fs.Delete(leftover);
        }
        fs.Delete(marker);
    }

    /// <summary>
    /// After a failed <c>machine init</c>: with the real file system (the failure may have been the file system's),
    /// rolls back whatever the init staged or switched (as opening would), removes the folders it created while they
    /// are empty, releases and removes the lock file, and removes the root when the init created it and it is empty.
    /// The folder is left as it was before the init, so the init can be run again. Disposes the store.
    /// </summary>
    internal void AbandonInit(IReadOnlySet<string> foldersBefore, bool createdRoot)
    {
        try
        {
            Recover();
            foreach (var dir in Directory.EnumerateDirectories(Root, "*", SearchOption.AllDirectories)
                         .Where(d => !foldersBefore.Contains(d)).OrderByDescending(d => d.Length).ToArray())
            {
                if (!Directory.EnumerateFileSystemEntries(dir).Any())
                {
                    Directory.Delete(dir);
                }
            }
        }
        finally
        {
            Dispose();
        }
        File.Delete(Path.Combine(Root, LockFileName));
        if (createdRoot && !Directory.EnumerateFileSystemEntries(Root).Any())
        {
            Directory.Delete(Root);
        }
    }

    /// <summary>Called before a transaction stages its first change: writes the staging marker unless it exists.</summary>
    internal void BeginStaging()
    {
        var marker = Path.Combine(Root, StagingMarkerFileName);
        if (_staging == 0 && !File.Exists(marker))
        {
            FileSystem.WriteFileFlushed(marker, []);
        }
        _staging++;
    }

    /// <summary>Called when a transaction committed and removed its old copies: the last one removes the marker.</summary>
    internal void EndStaging()
    {
        if (--_staging == 0)
        {
            FileSystem.Delete(Path.Combine(Root, StagingMarkerFileName));
        }
    }

    internal static bool Exists(string path) => File.Exists(path) || Directory.Exists(path);

    internal sealed record JournalEntry(string Target, bool HadOld);

    /// <summary>Releases the lock.</summary>
    public void Dispose() => _lock.Dispose();
}

/// <summary>A set of staged changes to a machine, switched in together by <see cref="Commit"/>.</summary>
public sealed class MachineTransaction
{
    private readonly MachineStore _store;
    private readonly List<string> _targets = [];
    private readonly HashSet<string> _deletes = new(StringComparer.Ordinal);
    private bool _committed;

    internal MachineTransaction(MachineStore store) => _store = store;

    private IMachineFileSystem Fs => _store.FileSystem;

    /// <summary>True when nothing is staged.</summary>
    public bool IsEmpty => _targets.Count == 0;

    private string Claim(string relative)
    {
        if (_committed)
        {
            throw new InvalidOperationException("the transaction is already committed");
        }
        if (_targets.Contains(relative))
        {
            throw new InvalidOperationException($"{relative} is staged twice");
        }
        if (_targets.Count == 0)
        {
            _store.BeginStaging();
        }
        _targets.Add(relative);
        var target = _store.PathOf(relative);
        var parent = Path.GetDirectoryName(target)!;
        if (!Directory.Exists(parent))
        {
            Fs.CreateDirectory(parent);
        }
        var staged = target + MachineStore.NewSuffix;
        Fs.Delete(staged);
        return staged;
    }

    /// <summary>Stages the new content of a file.</summary>
    public void StageFile(string relative, ReadOnlySpan<byte> bytes) => Fs.WriteFileFlushed(Claim(relative), bytes);

    /// <summary>Stages a copy of the folder <paramref name="sourceDirectory"/> (modes kept; symlinks refused) at <paramref name="relative"/>.</summary>
    public void StageDirectoryCopy(string relative, string sourceDirectory)
    {
        var staged = Claim(relative);
        CopyTree(sourceDirectory, staged);
    }

    private void CopyTree(string source, string destination)
    {
        Fs.CreateDirectory(destination);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(destination, File.GetUnixFileMode(source));
        }
        foreach (var entry in Directory.EnumerateFileSystemEntries(source).Order(StringComparer.Ordinal))
        {
            var info = new FileInfo(entry);
            var dest = Path.Combine(destination, Path.GetFileName(entry));
            if (info.LinkTarget is not null)
            {
                throw new MachineException(MachineCode.ValidationFailed, entry, "symbolic links are not copied into the machine");
            }
            if (Directory.Exists(entry))
            {
                CopyTree(entry, dest);
            }
            else
            {
                Fs.CopyFileFlushed(entry, dest);
            }
        }
    }

    /// <summary>Stages the removal of a file or folder.</summary>
    public void StageDelete(string relative)
    {
        Claim(relative);
        _deletes.Add(relative);
    }

    /// <summary>
    /// Stages a change of the KextPolicy database: copies it, runs <paramref name="change"/> inside one SQLite
    /// transaction on the copy, and switches the copy in at commit.
    /// </summary>
    public void StageDatabase(Action<KextPolicyDatabase.Writer> change)
    {
        var staged = Claim(MachineLayout.KextPolicy);
        var current = _store.PathOf(MachineLayout.KextPolicy);
        if (File.Exists(current))
        {
            Fs.CopyFileFlushed(current, staged);
        }
        using var db = KextPolicyDatabase.OpenReadWrite(staged);
        using var tx = db.BeginTransaction();
        change(new KextPolicyDatabase.Writer(db, tx));
        tx.Commit();
    }

    /// <summary>Switches every staged change in (see <see cref="MachineStore"/> for the protocol).</summary>
    public void Commit()
    {
        if (_committed)
        {
            throw new InvalidOperationException("the transaction is already committed");
        }
        _committed = true;
        if (_targets.Count == 0)
        {
            return;
        }
        var entries = _targets.Select(t => new MachineStore.JournalEntry(t, MachineStore.Exists(_store.PathOf(t)))).ToArray();
        var journal = Path.Combine(_store.Root, MachineStore.JournalFileName);
        Fs.WriteFileFlushed(journal + ".tmp", JsonSerializer.SerializeToUtf8Bytes(entries, MachineJsonContext.Default.JournalEntryArray));
        Fs.Move(journal + ".tmp", journal);
        foreach (var e in entries)
        {
            var target = _store.PathOf(e.Target);
            if (e.HadOld)
            {
                Fs.Move(target, target + MachineStore.OldSuffix);
            }
            if (!_deletes.Contains(e.Target))
            {
                Fs.Move(target + MachineStore.NewSuffix, target);
            }
        }
        Fs.Delete(journal);
        var clean = true;
        foreach (var e in entries.Where(e => e.HadOld))
        {
            try
            {
                Fs.Delete(_store.PathOf(e.Target) + MachineStore.OldSuffix);
            }
            catch (IOException)
            {
                // Committed already; the next open removes the leftover (the staging marker stays).
                clean = false;
            }
        }
        if (clean)
        {
            try
            {
                _store.EndStaging();
            }
            catch (IOException)
            {
                // Committed already; the marker only makes the next open look for leftovers.
            }
        }
    }
}

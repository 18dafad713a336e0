using System.Security.Cryptography;
using System.Text;

namespace KextTrust.TestSupport;

/// <summary>Whole-folder helpers for simulated Macs: a content hash (to prove "nothing changed") and a copy.</summary>
public static class MachineFolder
{
    /// <summary>The machine folder's lock file: never part of a snapshot or a copy.</summary>
    public const string LockFileName = ".kextrust.lock";

    /// <summary>
    /// SHA-256 (hex) over every file's relative path and content, sorted by path; the lock file and files for which
    /// <paramref name="skip"/> (given the '/'-separated relative path) is true are left out; <paramref name="normalize"/>
    /// may rewrite a file's bytes before hashing (to mask a field a command legitimately changes).
    /// </summary>
    public static string Snapshot(string dir, Func<string, bool>? skip = null, Func<string, byte[], byte[]>? normalize = null)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var f in Files(dir, skip))
        {
            var bytes = File.ReadAllBytes(Path.Combine(dir, f));
            h.AppendData(Encoding.UTF8.GetBytes(f + "\0"));
            h.AppendData(SHA256.HashData(normalize is null ? bytes : normalize(f, bytes)));
        }
        return Convert.ToHexString(h.GetHashAndReset());
    }

    /// <summary>The relative paths ('/'-separated, sorted) of the files in <paramref name="dir"/>, without the lock file.</summary>
    public static IReadOnlyList<string> Files(string dir, Func<string, bool>? skip = null) =>
        [.. Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(dir, f).Replace(Path.DirectorySeparatorChar, '/'))
            .Where(f => f != LockFileName && (skip is null || !skip(f)))
            .Order(StringComparer.Ordinal)];

    /// <summary>Copies the folder tree (Unix modes kept; the lock file left out) to <paramref name="to"/>.</summary>
    public static void Copy(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var d in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
        {
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, d)));
        }
        foreach (var f in Files(from))
        {
            var source = Path.Combine(from, f);
            var destination = Path.Combine(to, f);
            File.Copy(source, destination);
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(destination, File.GetUnixFileMode(source));
            }
        }
    }
}

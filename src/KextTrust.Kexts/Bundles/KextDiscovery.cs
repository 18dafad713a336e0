namespace KextTrust.Kexts.Bundles;

/// <summary>
/// Finds kext bundles under a folder the way an admin expects: <c>*.kext</c> folders anywhere below it,
/// including inside applications (<c>*.app/Contents/Library/Extensions</c>), file-system bundles
/// (<c>*.fs/Contents/Extensions</c>) and other kexts' <c>PlugIns</c>. Kexts nested in a found kext's
/// PlugIns are not listed separately: they belong to their parent bundle. Symbolic links to folders
/// are never followed, so a link loop cannot hang the scan and a link cannot lead it outside the tree.
/// </summary>
public static class KextDiscovery
{
    /// <summary>The extension of kext bundles.</summary>
    internal const string KextExtension = ".kext";

    /// <summary>Returns the paths of the top-level kext bundles under <paramref name="root"/>, sorted.</summary>
    public static IReadOnlyList<string> FindKexts(string root)
    {
        var found = new List<string>();
        var rootInfo = new DirectoryInfo(root);
        if (!rootInfo.Exists)
        {
            throw new KextBundleException(root, "no such folder");
        }
        if (IsKext(rootInfo))
        {
            found.Add(rootInfo.FullName);
            return found;
        }
        var pending = new Stack<DirectoryInfo>();
        pending.Push(rootInfo);
        while (pending.Count > 0)
        {
            var dir = pending.Pop();
            IEnumerable<DirectoryInfo> children;
            try
            {
                children = dir.EnumerateDirectories();
                foreach (var child in children)
                {
                    if (child.LinkTarget is not null)
                    {
                        continue; // never follow links to folders
                    }
                    if (IsKext(child))
                    {
                        found.Add(child.FullName);
                    }
                    else
                    {
                        pending.Push(child);
                    }
                }
            }
            catch (UnauthorizedAccessException)
            {
                // An unreadable folder holds nothing we can report as a kext.
            }
            catch (DirectoryNotFoundException)
            {
                // Removed while scanning.
            }
        }
        found.Sort(StringComparer.Ordinal);
        return found;
    }

    private static bool IsKext(DirectoryInfo dir) =>
        dir.Name.EndsWith(KextExtension, StringComparison.OrdinalIgnoreCase);
}

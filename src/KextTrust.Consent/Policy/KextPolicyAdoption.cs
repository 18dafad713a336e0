using KextTrust.Consent.Mdm;
using KextTrust.Machine;
using Microsoft.Data.Sqlite;

namespace KextTrust.Consent.Policy;

/// <summary>What adopting a KextPolicy database kept.</summary>
/// <param name="Source">The database given.</param>
/// <param name="HadCdHashColumn">False for the 10.13-era schema; the column is added (as macOS's own ALTER TABLE did) so new history rows can carry it.</param>
public sealed record KextPolicyAdoption(string Source, KextPolicyContent Content, bool HadCdHashColumn, IReadOnlyList<string> ExtraTables)
{
    /// <summary>Rows kept, all tables together.</summary>
    public int Rows => Content.History.Count + Content.Policy.Count + Content.Mdm.Count + Content.Settings.Count;
}

/// <summary>
/// Starts a simulated Mac's KextPolicy database from one copied from a real Mac (<c>machine init --kextpolicy</c>,
/// <c>kextpolicy import</c>): any schema since 10.13 — history with or without <c>cdhash</c>, extra tables — with every
/// row kept. The source is opened read-only, its schema and every value type-checked, then copied with SQLite's backup
/// (a write-ahead log beside it is included), switched to rollback journaling, given the <c>cdhash</c> column when it
/// lacks it, and the MDM rows of the profiles installed on this Mac applied on top; the result replaces the Mac's
/// database in one machine transaction.
/// </summary>
public static class KextPolicyAdopter
{
    /// <summary>Reads and checks <paramref name="source"/>, and returns the bytes of the adopted copy.</summary>
    public static (byte[] Bytes, KextPolicyAdoption Adoption) Prepare(string source, IEnumerable<MdmProfile> installedProfiles)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(installedProfiles);
        var full = Path.GetFullPath(source);
        var temp = Path.Combine(Path.GetTempPath(), "kextrust-adopt-" + Guid.NewGuid().ToString("N"));
        try
        {
            KextPolicyContent content;
            bool hadCdHash;
            string[] extra;
            using (var src = KextPolicyDatabase.OpenReadOnly(full))
            {
                content = KextPolicyDatabase.ReadAll(src, full);
                hadCdHash = KextPolicyDatabase.HasColumn(src, "kext_load_history_v3", "cdhash");
                extra = KextPolicyDatabase.TableNames(src).Except(KextPolicyDatabase.TableNamesOfSchema, StringComparer.OrdinalIgnoreCase).Order(StringComparer.Ordinal).ToArray();
                using var copy = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = temp, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = false }.ToString());
                copy.Open();
                try
                {
                    src.BackupDatabase(copy);
                }
                catch (SqliteException e)
                {
                    throw new MachineException(MachineCode.DatabaseInvalid, full, "cannot copy the database: " + e.Message, e);
                }
                KextPolicyDatabase.PrepareAdopted(copy, hadCdHash);
                var profiles = installedProfiles.ToArray();
                var combined = CombinedKextPolicy.Combine(profiles);
                if (combined.Present)
                {
                    using var tx = copy.BeginTransaction();
                    new KextPolicyDatabase.Writer(copy, tx).ReplaceMdm(combined.Allowed,
                        [("mdm.AllowUserOverrides", combined.AllowUserOverrides), ("mdm.AllowNonAdminUserApprovals", combined.AllowNonAdminUserApprovals)],
                        profiles.SelectMany(p => p.KernelExtensionPolicies).Select(k => k.PayloadUuid).ToHashSet(StringComparer.Ordinal));
                    tx.Commit();
                }
            }
            return (File.ReadAllBytes(temp), new KextPolicyAdoption(full, content, hadCdHash, extra));
        }
        finally
        {
            foreach (var f in new[] { temp, temp + "-journal", temp + "-wal", temp + "-shm" })
            {
                File.Delete(f);
            }
        }
    }

    /// <summary><c>kextpolicy import FILE</c>: replaces this Mac's KextPolicy database with the adopted copy of <paramref name="source"/>.</summary>
    public static KextPolicyAdoption Import(SystemPolicy mac, string source)
    {
        ArgumentNullException.ThrowIfNull(mac);
        var (bytes, adoption) = Prepare(source, mac.ReadProfiles());
        var tx = mac.Store.Begin();
        tx.StageFile(MachineLayout.KextPolicy, bytes);
        tx.Commit();
        return adoption;
    }
}

using Microsoft.Data.Sqlite;

namespace KextTrust.Machine;

/// <summary>A row of <c>kext_load_history_v3</c>.</summary>
public sealed record LoadHistoryRow(string Path, string? TeamId, string? BundleId, string? BootUuid, string? CreatedAt, string? LastSeen, long? Flags, string? CdHash);

/// <summary>A row of <c>kext_policy</c> (user approval, grandfathering, replacement).</summary>
public sealed record KextPolicyRow(string? TeamId, string? BundleId, bool Allowed, string? DeveloperName, long? Flags);

/// <summary>A row of <c>kext_policy_mdm</c>; <see cref="BundleId"/> null means every kext of the team.</summary>
public sealed record KextPolicyMdmRow(string? TeamId, string? BundleId, bool Allowed, string? PayloadUuid);

/// <summary>A row of <c>settings</c>.</summary>
public sealed record SettingRow(string Name, string? Value);

/// <summary>The whole content of a KextPolicy database.</summary>
public sealed record KextPolicyContent(
    IReadOnlyList<LoadHistoryRow> History,
    IReadOnlyList<KextPolicyRow> Policy,
    IReadOnlyList<KextPolicyMdmRow> Mdm,
    IReadOnlyList<SettingRow> Settings);

/// <summary>Meaning of <c>flags</c> values. Apple does not document them; these are KextTrust's assignments.</summary>
public static class KextPolicyFlags
{
    /// <summary>kext_policy: approved by a user with the "Allow" button (1 is also seen on real Macs).</summary>
    public const long UserApproved = 1;
    /// <summary>kext_policy: grandfathered, present in /Library/Extensions when upgrading from 10.12 or earlier.</summary>
    public const long Grandfathered = 8;
    /// <summary>kext_policy: approved because it replaced a previously approved kext (same team and bundle id).</summary>
    public const long Replacement = 16;

    /// <summary>history: the load was refused and the "blocked" alert shown.</summary>
    public const long HistoryAlertShown = 1;
    /// <summary>history: the load was allowed.</summary>
    public const long HistoryAllowed = 2;
    /// <summary>history: staging validation failed.</summary>
    public const long HistoryValidationFailed = 8;
}

/// <summary>
/// The KextPolicy SQLite database with macOS's schema (<c>pipeline-facts.md</c> §6). Like newer macOS, the
/// history table has an extra <c>cdhash</c> column (hex); databases without it (older Macs) are read too.
/// Timestamps are <c>YYYY-MM-DD HH:MM:SS</c> UTC.
/// </summary>
public static class KextPolicyDatabase
{
    /// <summary>The CREATE statements, as on macOS (plus the cdhash column).</summary>
    public static IReadOnlyList<string> Schema { get; } =
    [
        "CREATE TABLE kext_load_history_v3 ( path TEXT PRIMARY KEY, team_id TEXT, bundle_id TEXT, boot_uuid TEXT, created_at TEXT, last_seen TEXT, flags INTEGER , cdhash TEXT)",
        "CREATE TABLE kext_policy ( team_id TEXT, bundle_id TEXT, allowed BOOLEAN, developer_name TEXT, flags INTEGER, PRIMARY KEY (team_id, bundle_id) )",
        "CREATE TABLE kext_policy_mdm ( team_id TEXT, bundle_id TEXT, allowed BOOLEAN, payload_uuid TEXT, PRIMARY KEY (team_id, bundle_id) )",
        "CREATE TABLE settings ( name TEXT, value TEXT, PRIMARY KEY (name) )",
    ];

    private static readonly Dictionary<string, string[]> RequiredColumns = new(StringComparer.Ordinal)
    {
        ["kext_load_history_v3"] = ["path", "team_id", "bundle_id", "boot_uuid", "created_at", "last_seen", "flags"],
        ["kext_policy"] = ["team_id", "bundle_id", "allowed", "developer_name", "flags"],
        ["kext_policy_mdm"] = ["team_id", "bundle_id", "allowed", "payload_uuid"],
        ["settings"] = ["name", "value"],
    };

    /// <summary>Formats a timestamp as the database does.</summary>
    public static string Timestamp(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Parses a database timestamp.</summary>
    public static DateTimeOffset? ParseTimestamp(string? text) =>
        DateTimeOffset.TryParseExact(text, "yyyy-MM-dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture,
            System.Globalization.DateTimeStyles.AssumeUniversal | System.Globalization.DateTimeStyles.AdjustToUniversal, out var t) ? t : null;

    /// <summary>Creates an empty database with the schema at <paramref name="path"/>.</summary>
    internal static void Create(SqliteConnection db)
    {
        using var tx = db.BeginTransaction();
        foreach (var sql in Schema)
        {
            Exec(db, tx, sql);
        }
        tx.Commit();
    }

    /// <summary>Opens read-write (creating the file and schema if it is new); pooling off.</summary>
    public static SqliteConnection OpenReadWrite(string path)
    {
        var isNew = !File.Exists(path) || new FileInfo(path).Length == 0;
        var db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = false }.ToString());
        db.Open();
        if (isNew)
        {
            Create(db);
        }
        return db;
    }

    /// <summary>Opens read-only (<c>Mode=ReadOnly</c>, pooling off) and validates the schema.</summary>
    public static SqliteConnection OpenReadOnly(string path)
    {
        if (!File.Exists(path))
        {
            throw new MachineException(MachineCode.DatabaseInvalid, path, "no such database");
        }
        var db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        try
        {
            db.Open();
            ValidateSchema(db, path);
            return db;
        }
        catch (SqliteException e)
        {
            db.Dispose();
            throw new MachineException(MachineCode.DatabaseInvalid, path, "not a readable SQLite database: " + e.Message, e);
        }
        catch
        {
            db.Dispose();
            throw;
        }
    }

    /// <summary>Checks that the four tables exist with their columns.</summary>
    internal static void ValidateSchema(SqliteConnection db, string path)
    {
        foreach (var (table, columns) in RequiredColumns)
        {
            var present = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            using (var cmd = db.CreateCommand())
            {
                cmd.CommandText = $"PRAGMA table_info({table})";
                using var r = cmd.ExecuteReader();
                while (r.Read())
                {
                    present.Add(r.GetString(1));
                }
            }
            if (present.Count == 0)
            {
                throw new MachineException(MachineCode.DatabaseInvalid, path, $"table {table} is missing");
            }
            var missing = columns.Where(c => !present.Contains(c)).ToArray();
            if (missing.Length > 0)
            {
                throw new MachineException(MachineCode.DatabaseInvalid, path, $"table {table} lacks column(s) {string.Join(", ", missing)}");
            }
        }
    }

    /// <summary>Reads every table, checking each value's type; a bad value names its table, row and column.</summary>
    public static KextPolicyContent ReadAll(SqliteConnection db, string path)
    {
        var hasCdHash = HasColumn(db, "kext_load_history_v3", "cdhash");
        var history = Read(db, path, "kext_load_history_v3",
            "path, team_id, bundle_id, boot_uuid, created_at, last_seen, flags" + (hasCdHash ? ", cdhash" : ""),
            v => new LoadHistoryRow(v.Text(0, nullable: false)!, v.Text(1), v.Text(2), v.Text(3), v.Time(4), v.Time(5), v.Int(6), hasCdHash ? v.Text(7) : null));
        var policy = Read(db, path, "kext_policy", "team_id, bundle_id, allowed, developer_name, flags",
            v => new KextPolicyRow(v.Text(0), v.Text(1), v.Bool(2), v.Text(3), v.Int(4)));
        var mdm = Read(db, path, "kext_policy_mdm", "team_id, bundle_id, allowed, payload_uuid",
            v => new KextPolicyMdmRow(v.Text(0), v.Text(1), v.Bool(2), v.Text(3)));
        var settings = Read(db, path, "settings", "name, value", v => new SettingRow(v.Text(0, nullable: false)!, v.Text(1)));
        return new KextPolicyContent(history, policy, mdm, settings);
    }

    /// <summary>The four tables of <see cref="Schema"/>.</summary>
    public static IReadOnlyList<string> TableNamesOfSchema { get; } = ["kext_load_history_v3", "kext_policy", "kext_policy_mdm", "settings"];

    /// <summary>Every table of <paramref name="db"/>.</summary>
    public static IReadOnlyList<string> TableNames(SqliteConnection db)
    {
        ArgumentNullException.ThrowIfNull(db);
        using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name";
        using var r = cmd.ExecuteReader();
        var names = new List<string>();
        while (r.Read())
        {
            names.Add(r.GetString(0));
        }
        return names;
    }

    /// <summary>
    /// Makes a copy of a real Mac's database usable by the simulated Mac: rollback journaling (a copied WAL-mode file
    /// would otherwise need its -wal/-shm beside it), and the <c>cdhash</c> history column added when it lacks it, with
    /// the same ALTER TABLE macOS used (SQLite then records "flags INTEGER , cdhash TEXT", as in real <c>.schema</c> output).
    /// </summary>
    public static void PrepareAdopted(SqliteConnection db, bool hasCdHash)
    {
        ArgumentNullException.ThrowIfNull(db);
        Exec(db, null, "PRAGMA journal_mode = DELETE");
        if (!hasCdHash)
        {
            Exec(db, null, "ALTER TABLE kext_load_history_v3 ADD COLUMN cdhash TEXT");
        }
    }

    /// <summary>True when <paramref name="table"/> has <paramref name="column"/>.</summary>
    public static bool HasColumn(SqliteConnection db, string table, string column)
    {
        using var cmd = db.CreateCommand();
        cmd.CommandText = $"PRAGMA table_info({table})";
        using var r = cmd.ExecuteReader();
        while (r.Read())
        {
            if (string.Equals(r.GetString(1), column, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }
        return false;
    }

    private static List<T> Read<T>(SqliteConnection db, string path, string table, string columns, Func<RowReader, T> map)
    {
        using var cmd = db.CreateCommand();
        cmd.CommandText = $"SELECT rowid, {columns} FROM {table} ORDER BY rowid";
        using var r = cmd.ExecuteReader();
        var names = columns.Split(',', StringSplitOptions.TrimEntries);
        var list = new List<T>();
        while (r.Read())
        {
            list.Add(map(new RowReader(r, path, table, r.GetInt64(0), names)));
        }
        return list;
    }

    /// <summary>Typed access to one row, failing with the table, row and column named.</summary>
    private readonly struct RowReader(SqliteDataReader r, string path, string table, long rowid, string[] names)
    {
        private MachineException Bad(int i, string expected) =>
            new(MachineCode.DatabaseInvalid, path, $"table {table}, row {rowid}, column {names[i]}: expected {expected}, found {r.GetDataTypeName(i + 1)} value");

        public string? Text(int i, bool nullable = true)
        {
            var v = r.GetValue(i + 1);
            return v switch
            {
                DBNull when nullable => null,
                string s => s,
                _ => throw Bad(i, nullable ? "TEXT or NULL" : "TEXT"),
            };
        }

        public string? Time(int i)
        {
            var s = Text(i);
            if (s is not null && ParseTimestamp(s) is null)
            {
                throw new MachineException(MachineCode.DatabaseInvalid, path, $"table {table}, row {rowid}, column {names[i]}: '{s}' is not a YYYY-MM-DD HH:MM:SS timestamp");
            }
            return s;
        }

        public long? Int(int i) => r.GetValue(i + 1) switch
        {
            DBNull => null,
            long l => l,
            _ => throw Bad(i, "INTEGER or NULL"),
        };

        public bool Bool(int i) => r.GetValue(i + 1) switch
        {
            long l and (0 or 1) => l == 1,
            DBNull => false,
            _ => throw Bad(i, "BOOLEAN (0 or 1)"),
        };
    }

    /// <summary>True when <c>kext_load_history_v3</c> has a row for <paramref name="bundleId"/>.</summary>
    public static bool HistoryHas(SqliteConnection db, string bundleId)
    {
        ArgumentNullException.ThrowIfNull(db);
        using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT COUNT(*) FROM kext_load_history_v3 WHERE bundle_id = $b";
        cmd.Parameters.AddWithValue("$b", bundleId);
        return Convert.ToInt64(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) > 0;
    }

    /// <summary>
    /// The changes syspolicyd, kmd and the kernel make to the database, one typed method each, inside one SQLite transaction
    /// (<see cref="MachineTransaction.StageDatabase"/> runs them on the staged copy). No SQL lives outside this class.
    /// </summary>
    public sealed class Writer(SqliteConnection db, SqliteTransaction? transaction)
    {
        /// <summary>A load request (install): the history row for <paramref name="path"/>, created or updated.</summary>
        public void RecordLoadRequest(string path, string teamId, string bundleId, string bootUuid, DateTimeOffset now, long flags, string? cdHash) =>
            Exec(db, transaction,
                "INSERT INTO kext_load_history_v3 (path, team_id, bundle_id, boot_uuid, created_at, last_seen, flags, cdhash) VALUES ($p0, $p1, $p2, $p3, $p4, $p4, $p5, $p6) " +
                "ON CONFLICT (path) DO UPDATE SET team_id = $p1, bundle_id = $p2, boot_uuid = $p3, last_seen = $p4, flags = $p5, cdhash = $p6",
                path, teamId, bundleId, bootUuid, Timestamp(now), flags, cdHash);

        /// <summary>Marks an allowed kext's row as replaced by a newer version of the same team and bundle id.</summary>
        public void MarkReplacement(string teamId, string bundleId) =>
            Exec(db, transaction, "UPDATE kext_policy SET flags = flags | $p2 WHERE team_id = $p0 AND bundle_id = $p1", teamId, bundleId, KextPolicyFlags.Replacement);

        /// <summary>Allows (team, bundle id) with <paramref name="flags"/> added to the row's flags (user approval, grandfathering).</summary>
        public void Allow(string teamId, string bundleId, string developerName, long flags, bool updateDeveloperName = true) =>
            Exec(db, transaction,
                "INSERT INTO kext_policy (team_id, bundle_id, allowed, developer_name, flags) VALUES ($p0, $p1, 1, $p2, $p3) " +
                (updateDeveloperName
                    ? "ON CONFLICT (team_id, bundle_id) DO UPDATE SET allowed = 1, developer_name = $p2, flags = flags | $p3"
                    : "ON CONFLICT (team_id, bundle_id) DO UPDATE SET allowed = 1, flags = flags | $p3"),
                teamId, bundleId, developerName, flags);

        /// <summary>The history row of an approved kext: its alert is answered, the load allowed.</summary>
        public void MarkAllowed(string path) =>
            Exec(db, transaction, "UPDATE kext_load_history_v3 SET flags = (flags & ~$p1) | $p2 WHERE path = $p0",
                path, KextPolicyFlags.HistoryAlertShown, KextPolicyFlags.HistoryAllowed);

        /// <summary>
        /// Replaces the MDM part of the policy: every kext_policy_mdm row whose payload_uuid is one of
        /// <paramref name="ownedPayloadUuids"/> (the payloads of the installed profiles, before and after the change) goes,
        /// the rows of <paramref name="allowed"/> come (a row of another origin with the same team and bundle takes the new
        /// payload UUID), and <paramref name="settings"/> are written. Rows no installed profile owns (a database adopted
        /// from a real Mac) are kept.
        /// </summary>
        public void ReplaceMdm(IEnumerable<(string TeamId, string? BundleId, string PayloadUuid)> allowed, IEnumerable<(string Name, bool Value)> settings,
            IReadOnlySet<string> ownedPayloadUuids)
        {
            ArgumentNullException.ThrowIfNull(allowed);
            ArgumentNullException.ThrowIfNull(settings);
            ArgumentNullException.ThrowIfNull(ownedPayloadUuids);
            foreach (var uuid in ownedPayloadUuids)
            {
                Exec(db, transaction, "DELETE FROM kext_policy_mdm WHERE payload_uuid = $p0", uuid);
            }
            foreach (var (team, bundle, uuid) in allowed)
            {
                Exec(db, transaction, "INSERT INTO kext_policy_mdm (team_id, bundle_id, allowed, payload_uuid) VALUES ($p0, $p1, 1, $p2) " +
                    "ON CONFLICT (team_id, bundle_id) DO UPDATE SET allowed = 1, payload_uuid = $p2", team, bundle, uuid);
            }
            foreach (var (name, value) in settings)
            {
                Exec(db, transaction, "INSERT INTO settings (name, value) VALUES ($p0, $p1) ON CONFLICT (name) DO UPDATE SET value = $p1", name, value ? "1" : "0");
            }
        }

        /// <summary>
        /// The kernel's load history of one boot, one prepared statement for every row (<c>created_at</c> kept for a path
        /// already recorded).
        /// </summary>
        public void RecordLoads(IEnumerable<(string Path, string TeamId, string BundleId, string BootUuid, string CreatedAt, string LastSeen, long Flags, string CdHash)> rows)
        {
            ArgumentNullException.ThrowIfNull(rows);
            using var cmd = db.CreateCommand();
            cmd.Transaction = transaction;
            cmd.CommandText = "INSERT OR REPLACE INTO kext_load_history_v3 (path, team_id, bundle_id, boot_uuid, created_at, last_seen, flags, cdhash) " +
                "VALUES ($p, $t, $b, $u, COALESCE((SELECT created_at FROM kext_load_history_v3 WHERE path = $p), $c), $l, $f, $h)";
            var parameters = new[] { "$p", "$t", "$b", "$u", "$c", "$l", "$f", "$h" }.Select(name => cmd.Parameters.Add(name, SqliteType.Text)).ToArray();
            parameters[6].SqliteType = SqliteType.Integer;
            cmd.Prepare();
            foreach (var h in rows)
            {
                object[] values = [h.Path, h.TeamId, h.BundleId, h.BootUuid, h.CreatedAt, h.LastSeen, h.Flags, h.CdHash];
                for (var i = 0; i < values.Length; i++)
                {
                    parameters[i].Value = values[i];
                }
                cmd.ExecuteNonQuery();
            }
        }
    }

    /// <summary>Runs one statement with positional parameters <c>$p0…</c>.</summary>
    internal static int Exec(SqliteConnection db, SqliteTransaction? tx, string sql, params object?[] args)
    {
        using var cmd = db.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        for (var i = 0; i < args.Length; i++)
        {
            cmd.Parameters.AddWithValue("$p" + i, args[i] ?? DBNull.Value);
        }
        return cmd.ExecuteNonQuery();
    }
}

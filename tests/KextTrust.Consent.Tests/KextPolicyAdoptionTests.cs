using KextTrust.Consent.Mdm;
using KextTrust.Consent.Policy;
using KextTrust.Kexts.Kpi;
using KextTrust.Machine;
using KextTrust.TestSupport;
using Microsoft.Data.Sqlite;
using KextTrust.Kexts.Trust;

namespace KextTrust.Consent.Tests;

/// <summary>
/// A KextPolicy database copied from a real Mac, adopted by a simulated one: the macOS 10.13 database of macinbox's
/// VMware image (a <c>sqlite3 .dump</c>, MIT; tests/data/MANIFEST.md), as it is and with the <c>cdhash</c> column later
/// macOS added by <c>ALTER TABLE</c>.
/// </summary>
public sealed class KextPolicyAdoptionTests : IDisposable
{
    private readonly MacFixture _f = new();
    private const string VMware = "EG7KH642X6";

    public void Dispose() => _f.Dispose();

    /// <summary>Builds a database file from the real dump, optionally run through <paramref name="then"/> SQL.</summary>
    private string RealDatabase(string name, string? then = null)
    {
        var path = _f.Temp.Combine(name);
        using var db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        db.Open();
        using (var cmd = db.CreateCommand())
        {
            cmd.CommandText = File.ReadAllText(Corpus.TestData("kextpolicy/macinbox-10.13.sql"));
            cmd.ExecuteNonQuery();
        }
        if (then is not null)
        {
            using var cmd = db.CreateCommand();
            cmd.CommandText = then;
            cmd.ExecuteNonQuery();
        }
        return path;
    }

    private static KextPolicyContent Read(string path)
    {
        using var db = KextPolicyDatabase.OpenReadOnly(path);
        return KextPolicyDatabase.ReadAll(db, path);
    }

    [Fact]
    public void A_10_13_database_starts_a_Mac_with_every_row_and_why_answers_from_it()
    {
        var source = RealDatabase("KextPolicy-10.13");
        var original = Read(source);
        Assert.Equal((3, 3, 0, 1), (original.History.Count, original.Policy.Count, original.Mdm.Count, original.Settings.Count));
        using (SystemPolicy.Init(_f.MacDir, new MachineInitOptions(MacPlatform.Intel, "10.13.6", "admin", "admin-pw")
        {
            PasswordIterations = 1000, Clock = MacFixture.T0, KextPolicySource = source,
        }, verifier: _f.Verifier))
        {
        }
        using var mac = _f.Open();
        var adopted = mac.ReadPolicy();
        Assert.Equal(original.Policy, adopted.Policy);
        Assert.Equal(original.Settings, adopted.Settings);
        Assert.Equal(original.History, adopted.History);
        Assert.Equal("migrationPerformed", Assert.Single(adopted.Settings).Name);
        using (var db = mac.Store.OpenDatabaseReadOnly())
        {
            Assert.True(KextPolicyDatabase.HasColumn(db, "kext_load_history_v3", "cdhash"));
        }

        _f.Verifier.Facts["com.vmware.kext.VMwareGfx"] = FixtureVerifier.Signed(VMware, "VMware, Inc.");
        var install = Assert.Single(mac.Install([_f.Kext("com.vmware.kext.VMwareGfx")]));
        Assert.False(install.AlertShown);
        var why = mac.Why("com.vmware.kext.VMwareGfx");
        Assert.True(why.Allowed, why.Reason);
        Assert.Equal(ConsentSource.User, why.ConsentSource);
        var evidence = why.Steps.Single(s => s.Step == TrustStep.Consent).Evidence;
        Assert.Equal(("kext_policy", "VMware, Inc.", "1"), (evidence["table"], evidence["developer_name"], evidence["flags"]));
        // The load request lands on the real Mac's row for the same path: created_at kept from 2018, last_seen now.
        var history = mac.ReadPolicy().History;
        Assert.Equal(3, history.Count);
        var row = history.Single(h => h.Path == "/Library/Extensions/VMwareGfx.kext");
        Assert.Equal(("2018-01-25 08:16:36", KextPolicyDatabase.Timestamp(MacFixture.T0)), (row.CreatedAt, row.LastSeen));
    }

    [Fact]
    public void A_newer_database_with_cdhash_and_an_extra_table_is_imported_and_the_installed_profiles_stay_in_force()
    {
        var source = RealDatabase("KextPolicy-newer",
            "ALTER TABLE kext_load_history_v3 ADD COLUMN cdhash TEXT; UPDATE kext_load_history_v3 SET cdhash = 'a1b2c3' WHERE bundle_id = 'com.vmware.kext.vmhgfs'; " +
            "CREATE TABLE future_table (x INTEGER); INSERT INTO kext_policy_mdm VALUES ('FOREIGN123', NULL, 1, 'REAL-MAC-PAYLOAD');");
        _f.Init("11.7", mdm: MdmEnrollment.Automated);
        using var mac = _f.Open();
        mac.PushProfile(Corpus.TestData("profiles/mdatp-kext-005da0f.mobileconfig"));
        var before = Read(source);
        var adoption = KextPolicyAdopter.Import(mac, source);
        Assert.True(adoption.HadCdHashColumn);
        Assert.Equal(["future_table"], adoption.ExtraTables);
        var after = mac.ReadPolicy();
        Assert.Equal(before.History, after.History);
        Assert.Equal("a1b2c3", after.History.Single(h => h.BundleId == "com.vmware.kext.vmhgfs").CdHash);
        Assert.Equal(before.Policy, after.Policy);
        Assert.Equal([("FOREIGN123", "REAL-MAC-PAYLOAD"), ("UBF8T346G9", "43C579BA-CFF0-44F6-ABF4-DCC879B4100E")],
            after.Mdm.Select(r => (r.TeamId!, r.PayloadUuid!)).Order());
        // Removing the profile later takes only its own row: the real Mac's row stays.
        ConfigurationProfiles.Remove(mac, "com.microsoft.wdav.kext", ProfileChannel.Mdm);
        Assert.Equal(["FOREIGN123"], mac.ReadPolicy().Mdm.Select(r => r.TeamId));
    }

    [Fact]
    public void Hostile_databases_are_refused_naming_the_rule_and_change_nothing()
    {
        _f.Init();
        var notSqlite = _f.Temp.Combine("not-sqlite");
        File.WriteAllText(notSqlite, "this is not a database");
        var badType = RealDatabase("bad-type", "UPDATE kext_policy SET flags = 'one' WHERE bundle_id = 'com.vmware.kext.vmhgfs';");
        var noTable = RealDatabase("no-table", "DROP TABLE settings;");
        using var mac = _f.Open();
        var snapshot = _f.Snapshot();
        Assert.Equal(MachineCode.DatabaseInvalid, Assert.Throws<MachineException>(() => KextPolicyAdopter.Import(mac, notSqlite)).Code);
        var e = Assert.Throws<MachineException>(() => KextPolicyAdopter.Import(mac, badType));
        Assert.Equal(MachineCode.DatabaseInvalid, e.Code);
        Assert.Contains("table kext_policy, row 3, column flags", e.Message);
        Assert.Contains("table settings is missing", Assert.Throws<MachineException>(() => KextPolicyAdopter.Import(mac, noTable)).Message);
        Assert.Equal(MachineCode.DatabaseInvalid, Assert.Throws<MachineException>(() => KextPolicyAdopter.Import(mac, _f.Temp.Combine("absent"))).Code);
        Assert.Equal(snapshot, _f.Snapshot());

        // machine init with a bad database leaves no Mac.
        var dir = _f.Temp.Combine("never");
        Assert.Throws<MachineException>(() => SystemPolicy.Init(dir, new MachineInitOptions(MacPlatform.Intel, "14.5", "admin", "pw") { PasswordIterations = 1000, KextPolicySource = badType }));
        Assert.False(File.Exists(Path.Combine(dir, MachineLayout.Description)));
    }
}

using System.Text;
using KextTrust.Consent;
using KextTrust.Consent.Mdm;
using KextTrust.Consent.Policy;
using KextTrust.Machine;
using KextTrust.TestSupport;
using Microsoft.Data.Sqlite;
using KextTrust.Kexts.Trust;

namespace KextTrust.Consent.Tests;

public sealed class AtomicityAndInputTests : IDisposable
{
    private readonly MacFixture _f = new();
    private const string Team = "ABCDE12345";

    public void Dispose() => _f.Dispose();

    internal static string Profile(string uuid, string body, string type = MdmProfile.KernelExtensionPolicyType) => $"""
        <?xml version="1.0" encoding="UTF-8"?>
        <!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
        <plist version="1.0"><dict>
          <key>PayloadType</key><string>Configuration</string><key>PayloadVersion</key><integer>1</integer>
          <key>PayloadIdentifier</key><string>com.example.profile.{uuid}</string>
          <key>PayloadUUID</key><string>{Guid.NewGuid()}</string><key>PayloadScope</key><string>System</string>
          <key>PayloadContent</key><array><dict>
            <key>PayloadType</key><string>{type}</string><key>PayloadVersion</key><integer>1</integer>
            <key>PayloadIdentifier</key><string>com.example.kext.{uuid}</string>
            <key>PayloadUUID</key><string>{uuid}</string>
            {body}
          </dict></array>
        </dict></plist>
        """;

    private string WriteProfile(string uuid, string body)
    {
        var p = _f.Temp.Combine(uuid + ".mobileconfig");
        File.WriteAllText(p, Profile(uuid, body));
        return p;
    }

    private static readonly string Uuid1 = "11111111-2222-3333-4444-555555555555";

    /// <summary>The real macOS 10.13 KextPolicy database (tests/data/MANIFEST.md), built once per test from its dump.</summary>
    private string RealKextPolicy()
    {
        var path = _f.Temp.Combine("real-KextPolicy");
        if (!File.Exists(path))
        {
            using var db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
            db.Open();
            using var cmd = db.CreateCommand();
            cmd.CommandText = File.ReadAllText(Corpus.TestData("kextpolicy/macinbox-10.13.sql"));
            cmd.ExecuteNonQuery();
        }
        return path;
    }

    [Fact]
    public void Every_write_of_install_approve_and_mdm_push_can_fail_and_the_machine_reads_as_before()
    {
        _f.Init(mdm: MdmEnrollment.Automated);
        _f.Verifier.Facts["com.example.driver"] = FixtureVerifier.Signed(Team);
        var kext = _f.Kext("com.example.driver");
        var profile = WriteProfile(Uuid1, $"<key>AllowedTeamIdentifiers</key><array><string>OTHER12345</string></array><key>AllowUserOverrides</key><true/>");
        var commands = new (string Name, Action<SystemPolicy> Run)[]
        {
            ("install", m => m.Install([kext])),
            ("approve", m => m.Approve(Team, null, "admin", "admin-pw")),
            ("mdm push", m => m.PushProfile(profile)),
            ("mdm remove", m => ConfigurationProfiles.Remove(m, "com.example.profile." + Uuid1, ProfileChannel.Mdm)),
            ("kextpolicy import", m => KextPolicyAdopter.Import(m, RealKextPolicy())),
        };
        foreach (var (name, run) in commands)
        {
            var before = _f.Snapshot();
            var counter = new FaultInjectingFileSystem(PhysicalFileSystem.Instance, 0);
            var work = _f.Temp.Combine("probe-" + name.Replace(' ', '-'));
            MachineFolder.Copy(_f.MacDir, work);
            using (var probe = SystemPolicy.Open(work, counter, _f.Verifier))
            {
                run(probe);
            }
            var after = MacFixture.Snapshot(work);
            Assert.NotEqual(before, after);
            Assert.True(counter.Count > 3, $"{name}: only {counter.Count} writes");
            for (var n = 1; n <= counter.Count; n++)
            {
                var trial = _f.Temp.Combine($"trial-{name.Replace(' ', '-')}-{n}");
                MachineFolder.Copy(_f.MacDir, trial);
                var committed = true;
                using (var mac = SystemPolicy.Open(trial, new FaultInjectingFileSystem(PhysicalFileSystem.Instance, n), _f.Verifier))
                {
                    try
                    {
                        run(mac);
                    }
                    catch (InjectedFaultException)
                    {
                        committed = false;
                    }
                }
                using (SystemPolicy.Open(trial, verifier: _f.Verifier))
                {
                    // Opening recovers.
                }
                Assert.Equal(committed ? after : before, MacFixture.Snapshot(trial));
                Directory.Delete(trial, true);
            }
            using (var real = _f.Open())
            {
                run(real);
            }
            Assert.Equal(after, _f.Snapshot());
        }
    }

    [Fact]
    public void Staged_leftovers_are_marked_and_removed_on_open_and_a_committed_command_leaves_no_marker()
    {
        _f.Init();
        var marker = Path.Combine(_f.MacDir, MachineStore.StagingMarkerFileName);
        Assert.False(File.Exists(marker));
        var kext = _f.Kext("com.example.driver");
        var before = _f.Snapshot();
        // Write 1 is the marker, then the bundle's staged copy starts (delete, folder, sub-folder): it fails half-way, as after a crash.
        using (var mac = _f.Open(new FaultInjectingFileSystem(PhysicalFileSystem.Instance, 5)))
        {
            Assert.Throws<InjectedFaultException>(() => mac.Install([kext]));
        }
        Assert.True(File.Exists(marker));
        Assert.NotEmpty(Directory.EnumerateFileSystemEntries(_f.MacDir, "*.kt-new", SearchOption.AllDirectories));
        using (_f.Open())
        {
            // Opening removes the leftovers and the marker.
        }
        Assert.False(File.Exists(marker));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_f.MacDir, "*.kt-new", SearchOption.AllDirectories));
        Assert.Equal(before, _f.Snapshot());
        using (var mac = _f.Open())
        {
            mac.Install([kext]);
        }
        Assert.False(File.Exists(marker));
        Assert.Single(Directory.EnumerateDirectories(Path.Combine(_f.MacDir, "Library", "Extensions")));
    }

    [Fact]
    public void Concurrent_commands_are_serialised_by_the_lock()
    {
        _f.Init();
        var kexts = Enumerable.Range(0, 12).Select(i => _f.Kext($"com.example.k{i}")).ToArray();
        Parallel.ForEach(kexts, new ParallelOptions { MaxDegreeOfParallelism = 4 }, k =>
        {
            using var mac = _f.Open();
            mac.Install([k]);
        });
        using var m = _f.Open();
        Assert.Equal(12, m.InstalledKexts().Count);
        Assert.Equal(12, m.ReadPolicy().History.Count);
    }

    [Fact]
    public void A_held_lock_times_out_with_a_typed_error()
    {
        _f.Init();
        using var held = _f.Open();
        var e = Assert.Throws<MachineException>(() => SystemPolicy.Open(_f.MacDir, verifier: _f.Verifier, lockTimeout: TimeSpan.FromMilliseconds(100)));
        Assert.Equal(MachineCode.MachineBusy, e.Code);
    }

    [Fact]
    public void Mdm_push_needs_enrollment_and_rows_carry_the_payload_uuid()
    {
        _f.Init();
        var profile = WriteProfile(Uuid1, "<key>AllowedKernelExtensions</key><dict><key></key><array><string>com.example.unsigned</string></array></dict>");
        using (var mac = _f.Open())
        {
            var before = _f.Snapshot();
            Assert.Equal(ConsentCode.NotEnrolled, Assert.Throws<ConsentException>(() => mac.PushProfile(profile)).Code);
            Assert.Equal(before, _f.Snapshot());
        }
        using var enrolled = new MacFixture();
        enrolled.Init(mdm: MdmEnrollment.UserApproved, csr: CsrConfig.AllowUntrustedKexts);
        using var m = enrolled.Open();
        m.PushProfile(profile);
        var row = Assert.Single(m.ReadPolicy().Mdm);
        Assert.Equal(("", "com.example.unsigned", Uuid1), (row.TeamId, row.BundleId, row.PayloadUuid));
        m.Install([enrolled.Kext("com.example.unsigned")]);
        var d = m.Why("com.example.unsigned");
        Assert.True(d.Allowed, d.Reason);
        Assert.Equal(ConsentSource.Mdm, d.ConsentSource);
        Assert.Equal(Uuid1, d.Steps.Single(s => s.Step == TrustStep.Consent).Evidence["payload_uuid"]);
    }

    [Fact]
    public void Several_payloads_combine_and_user_overrides_follow_any_payload()
    {
        _f.Init(mdm: MdmEnrollment.Automated);
        using var mac = _f.Open();
        mac.PushProfile(WriteProfile(Uuid1, "<key>AllowedTeamIdentifiers</key><array><string>TEAMAAAAAA</string></array>"));
        var second = "22222222-2222-3333-4444-555555555555";
        var r = mac.PushProfile(WriteProfile(second, "<key>AllowedTeamIdentifiers</key><array><string>TEAMBBBBBB</string></array><key>AllowNonAdminUserApprovals</key><true/>"));
        Assert.True(r.Combined.AllowNonAdminUserApprovals);
        Assert.False(r.Combined.AllowUserOverrides);
        Assert.Equal(["TEAMAAAAAA", "TEAMBBBBBB"], mac.ReadPolicy().Mdm.Select(x => x.TeamId!).Order());
        _f.Verifier.Facts["com.example.driver"] = FixtureVerifier.Signed(Team);
        mac.Install([_f.Kext("com.example.driver")]);
        Assert.Equal(ConsentCode.UserApprovalDisabled, Assert.Throws<ConsentException>(() => mac.Approve(Team, null, "admin", "admin-pw")).Code);
    }

    [Fact]
    public void Mdm_enrollment_on_10_13_1_disables_user_consent_and_the_payload_needs_10_13_2()
    {
        _f.Init("10.13.1", mdm: MdmEnrollment.Automated);
        using var mac = _f.Open();
        mac.Install([_f.Kext("com.example.any")]);
        Assert.Equal(ConsentSource.MdmEnrollmentDisablesConsent, mac.Why("com.example.any").ConsentSource);
        Assert.Equal(ConsentCode.UnsupportedOSVersion, Assert.Throws<ConsentException>(() => mac.PushProfile(WriteProfile(Uuid1, ""))).Code);
    }

    [Fact]
    public void Profiles_install_refuses_the_kext_policy_payload()
    {
        _f.Init(mdm: MdmEnrollment.Automated);
        using var mac = _f.Open();
        var before = _f.Snapshot();
        Assert.Equal(ConsentCode.ManualInstallNotAllowed, Assert.Throws<ConsentException>(() => mac.InstallProfileManually(WriteProfile(Uuid1, ""))).Code);
        Assert.Equal(before, _f.Snapshot());
    }

    [Theory]
    [InlineData("not xml at all")]
    [InlineData("<?xml version=\"1.0\"?><plist version=\"1.0\"><array/></plist>")]
    [InlineData("BODY:<key>AllowedTeamIdentifiers</key><string>oops</string>")]
    [InlineData("BODY:<key>AllowedTeamIdentifiers</key><array><integer>3</integer></array>")]
    [InlineData("BODY:<key>AllowedKernelExtensions</key><dict><key>T</key><string>x</string></dict>")]
    [InlineData("BODY:<key>AllowUserOverrides</key><string>yes</string>")]
    public void Hostile_profiles_give_a_typed_error_and_change_nothing(string content)
    {
        _f.Init(mdm: MdmEnrollment.Automated);
        var path = _f.Temp.Combine("bad.mobileconfig");
        File.WriteAllText(path, content.StartsWith("BODY:", StringComparison.Ordinal) ? Profile(Uuid1, content[5..]) : content);
        using var mac = _f.Open();
        var before = _f.Snapshot();
        var e = Assert.Throws<ConsentException>(() => mac.PushProfile(path));
        Assert.Equal(ConsentCode.ProfileInvalid, e.Code);
        Assert.Contains("bad.mobileconfig", e.Message);
        Assert.Equal(before, _f.Snapshot());
    }

    [Fact]
    public void Cms_signed_profile_reports_its_signer()
    {
        using var pki = KextTrust.Kexts.Signing.TestPki.Create(new("MDM Vendor", "MDMTEAM123"));
        var content = Encoding.UTF8.GetBytes(Profile(Uuid1, ""));
        var cms = new System.Security.Cryptography.Pkcs.SignedCms(new System.Security.Cryptography.Pkcs.ContentInfo(content));
        cms.ComputeSignature(new System.Security.Cryptography.Pkcs.CmsSigner(pki.Leaf) { IncludeOption = System.Security.Cryptography.X509Certificates.X509IncludeOption.EndCertOnly });
        var p = MdmProfile.Parse(cms.Encode(), "signed.mobileconfig");
        Assert.Contains("MDM Vendor", p.SignerSubject);
        Assert.Equal(Uuid1, Assert.Single(p.KernelExtensionPolicies).PayloadUuid);
        var tampered = cms.Encode();
        tampered[^5] ^= 0xFF;
        Assert.Throws<ConsentException>(() => MdmProfile.Parse(tampered, "tampered.mobileconfig"));
    }

    [Fact]
    public void Kextpolicy_database_with_a_hostile_row_names_table_row_and_column()
    {
        var path = _f.Temp.Combine("KextPolicy");
        using (var db = KextPolicyDatabase.OpenReadWrite(path))
        {
            Sql(db, "INSERT INTO kext_policy VALUES ('T', 'com.x', 1, 'Dev', 1)");
            Sql(db, "INSERT INTO kext_policy VALUES ('T', 'com.y', 'yes', 'Dev', 1)");
        }
        using var ro = KextPolicyDatabase.OpenReadOnly(path);
        var e = Assert.Throws<MachineException>(() => KextPolicyDatabase.ReadAll(ro, path));
        Assert.Equal(MachineCode.DatabaseInvalid, e.Code);
        Assert.Contains("table kext_policy, row 2, column allowed", e.Message);
    }

    [Fact]
    public void Kextpolicy_database_without_a_table_or_not_sqlite_is_rejected()
    {
        var path = _f.Temp.Combine("Partial");
        using (var db = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            db.Open();
            Sql(db, "CREATE TABLE kext_policy (team_id TEXT)");
        }
        Assert.Contains("kext_load_history_v3 is missing", Assert.Throws<MachineException>(() => KextPolicyDatabase.OpenReadOnly(path)).Message);
        var junk = _f.Temp.Combine("Junk");
        File.WriteAllText(junk, "this is not a database, just text long enough to look like a header........");
        Assert.Equal(MachineCode.DatabaseInvalid, Assert.Throws<MachineException>(() => KextPolicyDatabase.ReadAll(KextPolicyDatabase.OpenReadOnly(junk), junk)).Code);
    }

    [Fact]
    public void Exclude_list_is_replaced_only_by_a_newer_version()
    {
        _f.Init();
        using var mac = _f.Open();
        var older = _f.Temp.Combine("old.plist");
        File.WriteAllBytes(older, new ExcludeList("20.0.0", new Dictionary<string, string>()).ToInfoPlist());
        var before = _f.Snapshot();
        Assert.Equal(ConsentCode.ExcludeListNotNewer, Assert.Throws<ConsentException>(() => mac.ReplaceExcludeList(older)).Code);
        Assert.Equal(before, _f.Snapshot());
        var newer = _f.Temp.Combine("new.plist");
        File.WriteAllBytes(newer, new ExcludeList("22.0.0", new Dictionary<string, string> { ["com.example.other"] = "LT 5" }).ToInfoPlist());
        mac.ReplaceExcludeList(newer);
        Assert.Equal("22.0.0", mac.ReadExcludeList().Version);
    }

    [Theory]
    [InlineData("LT 2.0.0", "1.9.9", true)]
    [InlineData("LT 2.0.0", "2.0.0", false)]
    [InlineData("LE 2.0.0", "2.0.0", true)]
    [InlineData("LE 2.0.0", "2.0.1", false)]
    [InlineData("1.0.0, 1.0.1", "1.0.1", true)]
    [InlineData("1.0.0, 1.0.1", "1.0.2", false)]
    [InlineData("1.0.0, LT 5.0", "2.0", false)]
    [InlineData("1.0.0, 1.0.1, 1.0.2, 1.0.3, 1.0.4, 1.0.5", "1.0.0", false)]
    public void Exclude_list_version_spec_grammar(string spec, string version, bool excluded)
    {
        var list = new ExcludeList("1", new Dictionary<string, string> { ["com.x"] = spec });
        Assert.Equal(excluded, list.Match("com.x", KextTrust.Kexts.Bundles.KextVersion.Parse(version)) is not null);
    }

    [Fact]
    public void Uakl_bytes_are_deterministic_and_round_trip()
    {
        var a = UserApprovedKextList.Create([new("T2", "", ConsentSource.Spctl, null), new("T1", "com.b", ConsentSource.User, "00112233445566778899aabbccddeeff00112233"), new("T1", "com.a", ConsentSource.Mdm, null)]);
        var b = UserApprovedKextList.Create(a.Entries.Reverse());
        Assert.Equal(a.ToBytes(), b.ToBytes());
        Assert.Equal(96, a.Sha384.Length);
        Assert.Equal(a.Entries, UserApprovedKextList.Parse(a.ToBytes(), "uakl").Entries);
        Assert.Equal("com.a", a.Entries[0].BundleId);
    }

    /// <summary>A statement run by hand, as sqlite3 would (hostile rows and schemas the Mac never writes).</summary>
    private static void Sql(Microsoft.Data.Sqlite.SqliteConnection db, string text)
    {
        using var cmd = db.CreateCommand();
        cmd.CommandText = text;
        cmd.ExecuteNonQuery();
    }
}

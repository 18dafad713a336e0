using System.Text;
using KextTrust.Consent.Mdm;
using KextTrust.Consent.Policy;
using KextTrust.Machine;
using KextTrust.TestSupport;
using KextTrust.Kexts.Trust;

namespace KextTrust.Consent.Tests;

/// <summary>
/// macOS's profile rules with real vendor profiles (tests/data/MANIFEST.md): Microsoft Defender's kext profile across
/// revisions (MIT), and fixtures reproducing Kandji's quirks (non-UUID and lower-case PayloadUUIDs). Apple's rules
/// (apple/device-management TopLevel / CommonPayloadKeys): the top-level PayloadIdentifier decides between replacing an
/// installed profile and adding a new one; PayloadUUID content "is unimportant"; during a replacement payloads with the
/// same PayloadIdentifier and PayloadUUID are updated.
/// </summary>
public sealed class ProfileRulesTests : IDisposable
{
    private readonly MacFixture _f = new();
    private const string Microsoft = "UBF8T346G9";
    private const string DefenderKextPayload = "43C579BA-CFF0-44F6-ABF4-DCC879B4100E";

    public void Dispose() => _f.Dispose();

    private static string Data(string name) => Corpus.TestData("profiles/" + name);

    private SystemPolicy EnrolledMac()
    {
        _f.Init("11.7", mdm: MdmEnrollment.Automated);
        return _f.Open();
    }

    [Fact]
    public void A_top_level_PayloadUUID_that_is_not_a_UUID_is_accepted_and_kept_as_written()
    {
        using var mac = EnrolledMac();
        var r = mac.PushProfile(Data("kandji-quirk-crowdstrike-non-uuid.mobileconfig"));
        Assert.Equal(ProfileAction.Added, r.Action);
        Assert.Equal("3f5a1c2e-b7gs-4d1e-9a0b-6c2d8e4f1a7b", r.Profile.PayloadUuid);
        Assert.Equal(["com.apple.system-extension-policy", "com.apple.notificationsettings", MdmProfile.KernelExtensionPolicyType], r.Profile.Payloads.Select(p => p.PayloadType));
        var row = Assert.Single(mac.ReadPolicy().Mdm);
        Assert.Equal(("X9E956P446", (string?)null, "8B2D4F6A-3C5E-4A7B-8D9F-1B2C3D4E5F6A"), (row.TeamId, row.BundleId, row.PayloadUuid));
        Assert.Equal("3f5a1c2e-b7gs-4d1e-9a0b-6c2d8e4f1a7b", Assert.Single(mac.ReadProfiles()).PayloadUuid);
    }

    [Fact]
    public void Lower_case_payload_UUIDs_reach_kext_policy_mdm_as_written()
    {
        using var mac = EnrolledMac();
        mac.PushProfile(Data("kandji-quirk-zoom-lowercase.mobileconfig"));
        var row = Assert.Single(mac.ReadPolicy().Mdm);
        Assert.Equal(("BJ4HAAB9B3", "zoom.us.ZoomAudioDevice", "c0ffee00-1234-4abc-8def-0123456789ab"), (row.TeamId, row.BundleId, row.PayloadUuid));
        _f.Verifier.Facts["zoom.us.ZoomAudioDevice"] = FixtureVerifier.Signed("BJ4HAAB9B3", "Zoom Video Communications, Inc.");
        mac.Install([_f.Kext("zoom.us.ZoomAudioDevice")]);
        var why = mac.Why("zoom.us.ZoomAudioDevice");
        Assert.Equal(ConsentSource.Mdm, why.ConsentSource);
        Assert.Equal("c0ffee00-1234-4abc-8def-0123456789ab", why.Steps.Single(s => s.Step == TrustStep.Consent).Evidence["payload_uuid"]);
    }

    [Fact]
    public void An_older_Defender_revision_with_another_identifier_and_the_same_payload_UUID_is_installed_beside_the_current_one()
    {
        using var mac = EnrolledMac();
        _f.Verifier.Facts["com.microsoft.wdav.kext"] = FixtureVerifier.Signed(Microsoft, "Microsoft Corporation");
        var current = mac.PushProfile(Data("mdatp-kext-005da0f.mobileconfig"));
        Assert.Equal(("com.microsoft.wdav.kext", ProfileAction.Added), (current.Profile.PayloadIdentifier, current.Action));
        var older = mac.PushProfile(Data("mdatp-kext-3edcfd3.mobileconfig"));
        Assert.Equal(ProfileAction.Added, older.Action);
        Assert.Equal("12D26F60-96F3-4E52-936F-CA96EEAE2C65", older.Profile.PayloadIdentifier);
        Assert.Equal(["com.microsoft.wdav.kext"], older.SharesPayloadUuidsWith);
        Assert.Equal(2, mac.ReadProfiles().Count);
        var row = Assert.Single(mac.ReadPolicy().Mdm);
        Assert.Equal((Microsoft, (string?)null, DefenderKextPayload), (row.TeamId, row.BundleId, row.PayloadUuid));

        mac.Install([_f.Kext("com.microsoft.wdav.kext")]);
        Assert.Equal(ConsentSource.Mdm, mac.Why("com.microsoft.wdav.kext").ConsentSource);

        // Removing one revision keeps the team allowed: the other still carries the payload.
        var first = ConfigurationProfiles.Remove(mac, "com.microsoft.wdav.kext", ProfileChannel.Mdm);
        Assert.Equal(ProfileAction.Removed, first.Action);
        Assert.Empty(first.MdmRowsRemoved);
        Assert.Empty(first.ConsentChanges);
        Assert.Single(mac.ReadPolicy().Mdm);
        Assert.Equal(ConsentSource.Mdm, mac.Why("com.microsoft.wdav.kext").ConsentSource);

        // Removing the last one takes the row, and the kext needs user approval again.
        var last = ConfigurationProfiles.Remove(mac, "12D26F60-96F3-4E52-936F-CA96EEAE2C65", ProfileChannel.Mdm);
        Assert.Equal([$"{Microsoft}/*"], last.MdmRowsRemoved);
        var change = Assert.Single(last.ConsentChanges);
        Assert.Equal(("com.microsoft.wdav.kext", ConsentSource.Mdm, ConsentSource.None, true), (change.BundleId, change.Before, change.After, change.NeedsUserApproval));
        Assert.Empty(mac.ReadPolicy().Mdm);
        Assert.Empty(mac.ReadProfiles());
        var why = mac.Why("com.microsoft.wdav.kext");
        Assert.False(why.Allowed);
        Assert.Equal(TrustCode.NotApproved, why.Code);
    }

    [Fact]
    public void Every_Defender_revision_and_the_combined_profile_parse_with_the_same_kext_payload()
    {
        foreach (var f in new[] { "mdatp-kext-005da0f.mobileconfig", "mdatp-kext-3edcfd3.mobileconfig", "mdatp-kext-280f859.mobileconfig", "mdatp-combined-9a37170.mobileconfig" })
        {
            var p = MdmProfile.Read(Data(f));
            var k = Assert.Single(p.KernelExtensionPolicies);
            Assert.Equal((DefenderKextPayload, Microsoft), (k.PayloadUuid, Assert.Single(k.AllowedTeamIdentifiers)));
            // Only the July 2020 revision let users approve other kexts (python plistlib reads the same).
            Assert.Equal(f == "mdatp-kext-280f859.mobileconfig", k.AllowUserOverrides);
        }
        Assert.True(MdmProfile.Read(Data("mdatp-combined-9a37170.mobileconfig")).Payloads.Count > 5);
    }

    [Fact]
    public void A_profile_with_the_identifier_of_an_installed_one_replaces_it_and_its_rows_in_one_transaction()
    {
        using var mac = EnrolledMac();
        mac.PushProfile(Data("mdatp-kext-005da0f.mobileconfig"));
        // The same identifier, the kext payload kept (same identifier and UUID) but allowing another team, and a new payload.
        var text = File.ReadAllText(Data("mdatp-kext-005da0f.mobileconfig"))
            .Replace("<string>UBF8T346G9</string>", "<string>ABCDE12345</string>", StringComparison.Ordinal)
            .Replace("<string>12D26F60-96F3-4E52-936F-CA96EEAE2C65</string>", "<string>99999999-96F3-4E52-936F-CA96EEAE2C65</string>", StringComparison.Ordinal);
        var next = _f.Temp.Combine("defender-next.mobileconfig");
        File.WriteAllText(next, text);
        var r = mac.PushProfile(next);
        Assert.Equal(ProfileAction.Replaced, r.Action);
        Assert.Equal("12D26F60-96F3-4E52-936F-CA96EEAE2C65", r.ReplacedProfileUuid);
        var payload = Assert.Single(r.Payloads);
        Assert.Equal((DefenderKextPayload, PayloadChange.Updated), (payload.PayloadUuid, payload.Change));
        Assert.Equal(["ABCDE12345/*"], r.MdmRowsAdded);
        Assert.Equal([$"{Microsoft}/*"], r.MdmRowsRemoved);
        Assert.Equal("99999999-96F3-4E52-936F-CA96EEAE2C65", Assert.Single(mac.ReadProfiles()).PayloadUuid);
        Assert.Single(Directory.EnumerateFiles(mac.Store.PathOf(MachineLayout.ProfileStore), "*.mobileconfig"));
    }

    [Fact]
    public void A_replacement_reports_payloads_added_and_removed()
    {
        using var mac = EnrolledMac();
        var a = _f.Temp.Combine("a.mobileconfig");
        File.WriteAllText(a, AtomicityAndInputTests.Profile("aaaaaaaa-0000-0000-0000-000000000001", "<key>AllowedTeamIdentifiers</key><array><string>TEAMAAAAAA</string></array>")
            .Replace("com.example.profile.aaaaaaaa-0000-0000-0000-000000000001", "com.example.same", StringComparison.Ordinal));
        var b = _f.Temp.Combine("b.mobileconfig");
        File.WriteAllText(b, AtomicityAndInputTests.Profile("bbbbbbbb-0000-0000-0000-000000000002", "<key>AllowedTeamIdentifiers</key><array><string>TEAMBBBBBB</string></array>")
            .Replace("com.example.profile.bbbbbbbb-0000-0000-0000-000000000002", "com.example.same", StringComparison.Ordinal));
        mac.PushProfile(a);
        var r = mac.PushProfile(b);
        Assert.Equal(ProfileAction.Replaced, r.Action);
        Assert.Equal([("bbbbbbbb-0000-0000-0000-000000000002", PayloadChange.Added), ("aaaaaaaa-0000-0000-0000-000000000001", PayloadChange.Removed)],
            r.Payloads.Select(p => (p.PayloadUuid, p.Change)));
        Assert.Equal(["TEAMBBBBBB"], mac.ReadPolicy().Mdm.Select(x => x.TeamId));
    }

    [Theory]
    [InlineData("uuid")]
    [InlineData("identifier")]
    public void A_payload_UUID_or_identifier_used_twice_in_one_profile_is_refused_and_changes_nothing(string twice)
    {
        using var mac = EnrolledMac();
        var payload = (string id, string uuid) => $"<dict><key>PayloadType</key><string>{MdmProfile.KernelExtensionPolicyType}</string><key>PayloadVersion</key><integer>1</integer><key>PayloadIdentifier</key><string>{id}</string><key>PayloadUUID</key><string>{uuid}</string></dict>";
        var second = twice == "uuid" ? payload("p.two", "SAME-UUID") : payload("p.one", "OTHER-UUID");
        var path = _f.Temp.Combine("twice.mobileconfig");
        File.WriteAllText(path, $"""
            <?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict>
            <key>PayloadType</key><string>Configuration</string><key>PayloadIdentifier</key><string>twice</string><key>PayloadUUID</key><string>T</string>
            <key>PayloadContent</key><array>{payload("p.one", "SAME-UUID")}{second}</array></dict></plist>
            """);
        var before = _f.Snapshot();
        var e = Assert.Throws<ConsentException>(() => mac.PushProfile(path));
        Assert.Equal(ConsentCode.ProfileInvalid, e.Code);
        Assert.Contains(twice == "uuid" ? "The PayloadUUID “SAME-UUID” is used more than once in the profile." : "“p.one” is used more than once", e.Message);
        Assert.Equal(before, _f.Snapshot());
    }

    [Fact]
    public void Channels_are_kept_apart_and_refusals_change_nothing()
    {
        using var mac = EnrolledMac();
        mac.PushProfile(Data("mdatp-kext-005da0f.mobileconfig"));
        var sysext = _f.Temp.Combine("sysext.mobileconfig");
        File.WriteAllText(sysext, AtomicityAndInputTests.Profile("5e5e5e5e-0000-0000-0000-000000000000", "<key>AllowedTeamIdentifiers</key><array><string>TEAMSYSEXT</string></array>", MdmProfile.SystemExtensionPolicyType));
        var manual = mac.InstallProfileManually(sysext);
        Assert.Equal(ProfileChannel.Manual, manual.InstalledBy);
        var before = _f.Snapshot();
        Assert.Equal(ConsentCode.ProfileManagedByMdm, Assert.Throws<ConsentException>(() => ConfigurationProfiles.Remove(mac, "com.microsoft.wdav.kext", ProfileChannel.Manual)).Code);
        Assert.Equal(ConsentCode.ProfileManagedByMdm, Assert.Throws<ConsentException>(() => ConfigurationProfiles.Remove(mac, manual.Profile.PayloadIdentifier, ProfileChannel.Mdm)).Code);
        Assert.Equal(ConsentCode.ProfileNotInstalled, Assert.Throws<ConsentException>(() => ConfigurationProfiles.Remove(mac, "com.example.absent", ProfileChannel.Mdm)).Code);
        Assert.Equal(before, _f.Snapshot());
        Assert.Equal([("com.example.profile.5e5e5e5e-0000-0000-0000-000000000000", ProfileChannel.Manual), ("com.microsoft.wdav.kext", ProfileChannel.Mdm)],
            ConfigurationProfiles.Read(mac).Select(p => (p.Profile.PayloadIdentifier, p.InstalledBy)));
        var removed = ConfigurationProfiles.Remove(mac, manual.Profile.PayloadIdentifier, ProfileChannel.Manual);
        Assert.Equal(ProfileAction.Removed, removed.Action);
        Assert.Single(mac.ReadProfiles());
    }

    [Fact]
    public void Identifiers_that_differ_only_in_characters_a_file_name_cannot_hold_are_two_profiles()
    {
        Assert.NotEqual(ConfigurationProfiles.FileNameFor("com.example/a"), ConfigurationProfiles.FileNameFor("com.example_a"));
        using var mac = EnrolledMac();
        foreach (var (id, uuid) in new[] { ("com.example/a", "a1a1a1a1-0000-0000-0000-000000000000"), ("com.example_a", "b2b2b2b2-0000-0000-0000-000000000000") })
        {
            var path = _f.Temp.Combine(uuid + ".mobileconfig");
            File.WriteAllText(path, AtomicityAndInputTests.Profile(uuid, "").Replace("com.example.profile." + uuid, id, StringComparison.Ordinal));
            Assert.Equal(ProfileAction.Added, mac.PushProfile(path).Action);
        }
        Assert.Equal(2, mac.ReadProfiles().Count);
    }

    [Fact]
    public void A_DER_file_that_is_not_CMS_and_a_bad_plist_are_named_once()
    {
        var der = _f.Temp.Combine("not-cms.mobileconfig");
        File.WriteAllBytes(der, [0x30, 0x03, 0x02, 0x01, 0x05]);
        var e = Assert.Throws<ConsentException>(() => MdmProfile.Read(der));
        Assert.Contains("not a CMS SignedData message", e.Message);
        Assert.DoesNotContain("does not verify", e.Message);
        var xml = _f.Temp.Combine("bad.mobileconfig");
        File.WriteAllText(xml, "<plist><dict><key>x</key>");
        var e2 = Assert.Throws<ConsentException>(() => MdmProfile.Read(xml));
        Assert.Equal(1, CountOf(e2.Message, xml));
    }

    [Fact]
    public void A_malformed_exclude_list_and_a_malformed_description_name_their_file_once()
    {
        var plist = _f.Temp.Combine("Info.plist");
        File.WriteAllText(plist, "<plist><dict><key>x</key>");
        var e = Assert.Throws<ConsentException>(() => ExcludeList.Parse(File.ReadAllBytes(plist), plist));
        Assert.Equal(1, CountOf(e.Message, plist));
        Assert.Equal(1, CountOf(new ConsentException(ConsentCode.InvalidArgument, "/x/y", "/x/y: bad").Message, "/x/y"));
        Assert.Equal("/x/y: bad", new ConsentException(ConsentCode.InvalidArgument, "/x/y", "bad").Message);
    }

    private static int CountOf(string text, string part)
    {
        var n = 0;
        for (var i = text.IndexOf(part, StringComparison.Ordinal); i >= 0; i = text.IndexOf(part, i + part.Length, StringComparison.Ordinal))
        {
            n++;
        }
        return n;
    }
}

using KextTrust.Boot.Policy;
using KextTrust.Boot.SecureBoot;
using KextTrust.Consent;
using KextTrust.Machine;
using static KextTrust.Boot.Tests.SecureBootMacTests.SecureBootMacFixture;
using KextTrust.Kexts.Trust;

namespace KextTrust.Boot.Tests.SecureBootMacTests;

/// <summary>
/// kmd's rebuild, a bputil security-mode change and csrutil, each interrupted at every write N: after reopening, the Mac is
/// either exactly as before and boots its last good state, or (when the change got past its commit point) complete in
/// its new state, which boots.
/// </summary>
public sealed class SecureBootFaultTests(SecureBootMacFixture f) : IClassFixture<SecureBootMacFixture>
{
    private sealed record Operation(bool InRecovery, Action<Mac> Run, Action<string, StartupReport> CheckNewState);

    public static TheoryData<string> Operations => ["kmutil create", "bputil -f", "csrutil disable"];

    private static Operation Describe(string name) => name switch
    {
        // The rebuild adds the kext installed since the last one.
        "kmutil create" => new(false, m => m.KmutilCreate(Admin, Password), (dir, boot) =>
        {
            Assert.Null(boot.Refusal);
            Assert.Equal([Driver, Second], LoadedIds(boot).Order());
            Assert.Contains(Second, ApplePayStatus(dir), StringComparison.Ordinal);
        }),
        // Full Security: third-party kexts off, so the new state boots without them and without a refusal.
        "bputil -f" => new(true, m => m.Bputil(new BputilRequest(SecurityMode.Full, EnableKexts: false, EnableMdm: false, Admin, Password)),
            (dir, boot) =>
            {
                Assert.Null(boot.Refusal);
                using (var mac = Mac.Open(dir))
                {
                    var policy = mac.ReadLocalPolicy();
                    Assert.Equal(SecurityMode.Full, policy.SecurityMode);
                    Assert.False(policy.ThirdPartyKextsEnabled);
                }
                Assert.Empty(boot.Loaded);
            }),
        // SIP off: the LocalPolicy's sip0 and the SIP setting change together. With SIP off user approval is not in force,
        // so the user-authorized kext list (every installed kext) is no longer the one auxp names: kexts wait for a
        // rebuild, which then loads both.
        "csrutil disable" => new(true, m => m.Csrutil(enable: false, withoutKext: false, Admin, Password), (dir, boot) =>
        {
            Assert.Equal(TrustCode.UaklModified, boot.Refusal?.Code);
            Assert.Equal(TrustStep.UserApprovedKextList, boot.Refusal?.Step);
            Assert.Contains("user consent is not in force", boot.Refusal?.Detail);
            using (var mac = Mac.Open(dir))
            {
                Assert.Equal(CsrConfig.Disabled, mac.Description.CsrActiveConfig);
                Assert.Equal(CsrConfig.Disabled, mac.ReadLocalPolicy().SipConfig);
                mac.KmutilCreate(Admin, Password);
            }
            var rebuilt = Restart(dir);
            Assert.Null(rebuilt.Refusal);
            Assert.Equal([Driver, Second], LoadedIds(rebuilt).Order());
        }),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, null),
    };

    [Theory]
    [MemberData(nameof(Operations))]
    public void Interrupted_at_every_write_the_Mac_boots_its_last_good_state_or_the_complete_new_one(string name)
    {
        var op = Describe(name);
        var start = f.Copy();
        if (op.InRecovery)
        {
            using var mac = Mac.Open(start);
            mac.Startup(recovery: true);
        }
        var before = State(start);

        var probe = f.Copy(start);
        var counter = new FaultInjectingFileSystem(PhysicalFileSystem.Instance, 0);
        using (var mac = Mac.Open(probe, counter))
        {
            op.Run(mac);
        }
        Assert.True(counter.Count > 8, $"{name}: only {counter.Count} writes");
        CheckNewState(op, probe, before);

        var (rolledBack, committed) = (0, 0);
        for (var n = 1; n <= counter.Count; n++)
        {
            var trial = f.Copy(start);
            var failed = false;
            using (var mac = Mac.Open(trial, new FaultInjectingFileSystem(PhysicalFileSystem.Instance, n)))
            {
                try
                {
                    op.Run(mac);
                }
                catch (InjectedFaultException)
                {
                    failed = true;
                }
            }
            using (Mac.Open(trial))
            {
                // Opening recovers what the interrupted change left behind.
            }
            if (failed)
            {
                rolledBack++;
                Assert.True(before == State(trial), $"{name}, fault at write {n}: the machine changed");
                CheckLastGoodState(trial);
            }
            else
            {
                committed++;
                CheckNewState(op, trial, before);
            }
            Directory.Delete(trial, recursive: true);
        }
        // Faults before the commit point roll back; faults after it (removing the old copies) leave the change done.
        Assert.True(rolledBack > 0 && committed > 0, $"{name}: {rolledBack} rolled back, {committed} committed");
    }

    private void CheckLastGoodState(string dir)
    {
        Assert.True(PolicyVerifies(dir));
        Assert.Equal(f.GoodApplePay, ApplePayStatus(dir));
        var boot = Restart(dir);
        Assert.Null(boot.Refusal);
        Assert.Equal(LoadedIds(f.GoodBoot), LoadedIds(boot));
    }

    private static void CheckNewState(Operation op, string dir, string before)
    {
        Assert.NotEqual(before, State(dir));
        Assert.True(PolicyVerifies(dir));
        op.CheckNewState(dir, Restart(dir));
    }
}

using KextTrust.Boot.Policy;
using KextTrust.Boot.SecureBoot;
using KextTrust.Consent;
using KextTrust.Kexts.Kpi;
using KextTrust.Machine;
using KextTrust.TestSupport;

namespace KextTrust.Boot.Tests.SecureBootMacTests;

/// <summary>
/// <c>machine init</c> of an Apple-silicon Mac (description, databases, Secure Enclave sealed key and first nonce, Full
/// Security LocalPolicy) interrupted at every write N: either no Mac (the folder as it was before) and init runs again,
/// or a complete Mac that boots.
/// </summary>
public sealed class MachineInitFaultTests
{
    private static MachineInitOptions Options => new(MacPlatform.AppleSilicon, "14.5", "admin", "pw") { PasswordIterations = 1000 };

    /// <summary>A complete Mac: it opens, its Secure Enclave unseals, its LocalPolicy is Full Security and iBoot verifies it.</summary>
    private static void AssertComplete(string dir)
    {
        using var mac = Mac.Open(dir);
        Assert.True(File.Exists(mac.Store.PathOf(SecureBootLayout.EnclaveKey)));
        using (var sep = mac.OpenEnclave())
        {
            var policy = mac.ReadLocalPolicy();
            Assert.Equal(SecurityMode.Full, policy.SecurityMode);
            Assert.Equal(sep.CurrentLocalPolicyNonceHash, policy.LocalPolicyNonceHash);
        }
        var boot = mac.Startup(recovery: false);
        Assert.Null(boot.Refusal);
        Assert.Equal("MacOS", boot.RunningOS);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Init_interrupted_at_any_write_leaves_no_mac_or_a_complete_one(bool folderExistsBefore)
    {
        using var root = new TempDir("kextrust-initfault");
        var probe = root.Combine("probe");
        var counter = new FaultInjectingFileSystem(PhysicalFileSystem.Instance, 0);
        Mac.Init(probe, Options, counter).Dispose();
        AssertComplete(probe);
        // Folders, the staging marker, each staged file (SEP key and nonce, LocalPolicy, description, …), the journal, the switches.
        Assert.True(counter.Count > 15, $"only {counter.Count} writes");

        var (none, complete) = (0, 0);
        for (var n = 1; n <= counter.Count; n++)
        {
            var dir = root.Combine($"trial-{n}");
            if (folderExistsBefore)
            {
                Directory.CreateDirectory(dir);
            }
            Mac? made = null;
            try
            {
                made = Mac.Init(dir, Options, new FaultInjectingFileSystem(PhysicalFileSystem.Instance, n));
            }
            catch (InjectedFaultException)
            {
            }
            if (made is null)
            {
                none++;
                // No Mac: the folder is as it was (absent, or empty when it existed), opening finds no Mac, and init runs again.
                Assert.True(folderExistsBefore ? Directory.Exists(dir) && !Directory.EnumerateFileSystemEntries(dir).Any() : !Directory.Exists(dir),
                    $"fault at write {n}: the folder holds {string.Join(", ", Directory.Exists(dir) ? Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories) : [])}");
                Assert.Equal(MachineCode.MachineInvalid, Assert.Throws<MachineException>(() => Mac.Open(dir)).Code);
                Mac.Init(dir, Options).Dispose();
            }
            else
            {
                complete++;
                made.Dispose();
            }
            AssertComplete(dir);
        }
        Assert.True(none > 0 && complete > 0, $"{none} faults left no Mac, {complete} a complete one");
    }
}

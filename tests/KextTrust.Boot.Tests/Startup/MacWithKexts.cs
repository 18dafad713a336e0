using KextTrust.Boot.KernelManagement;
using KextTrust.Boot.Policy;
using KextTrust.Boot.Startup;
using KextTrust.Boot.Tests.Enclave;
using KextTrust.Boot.Tests.KernelManagement;
using KextTrust.Formats.Image4;
using KextTrust.Machine;

namespace KextTrust.Boot.Tests.Startup;

/// <summary>The files one AuxKC rebuild leaves on the Mac.</summary>
internal sealed record BootFiles(byte[] LocalPolicy, byte[] AuxKcImage4, byte[] AuxKc, byte[] Receipt, AuxKcBuildResult Build, LocalPolicy Policy, byte[] Uakl);

/// <summary>An Apple-silicon Mac (real Secure Enclave) in Reduced Security with kexts enabled, and kext fixtures.</summary>
internal sealed class MacWithKexts : IDisposable
{
    public static readonly Guid Vuid = Guid.Parse("6b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0");

    public MacWithKexts(ulong ecid = Enclave.Mac.DefaultEcid)
    {
        Mac = new Enclave.Mac(ecid);
        Kexts = KmdBuildTests.Cast("kextrust-boot");
        var policy = LocalPolicy.CreateFullSecurity(Mac.SecureEnclave, Vuid) with { ReducedSecurity = true, ThirdPartyKextsEnabled = true };
        Policy = policy;
        PolicyBytes = policy.Sign(Mac.SecureEnclave).Encode();
    }

    public Enclave.Mac Mac { get; }
    public KextFixtures Kexts { get; }
    public LocalPolicy Policy { get; private set; }
    public byte[] PolicyBytes { get; private set; }

    /// <summary>kmd: build, have the SEP sign it, update the LocalPolicy (new nonce).</summary>
    public BootFiles Rebuild(CsrConfig sip = CsrConfig.None)
    {
        var request = Kexts.Request(sip: sip);
        var build = Kmd.BuildAuxKc(request);
        var signed = Kmd.SignAuxKc(build, Mac.SecureEnclave);
        var update = Kmd.UpdateLocalPolicy(Policy, Mac.SecureEnclave, signed);
        Mac.Install(update.Nonce);
        Policy = update.Policy;
        PolicyBytes = update.ToBytes();
        return new BootFiles(PolicyBytes, signed.Image4Bytes.ToArray(), build.AuxKc.Bytes.ToArray(), build.ReceiptBytes(), build, update.Policy, request.Uakl.ToBytes());
    }

    public IbootInputs Inputs(BootFiles files) => IbootInputs.For(Mac.SecureEnclave, files.LocalPolicy) with
    {
        AuxKcImage4 = files.AuxKcImage4,
        AuxKc = files.AuxKc,
        Receipt = files.Receipt,
        Uakl = () => new UaklInput(files.Uakl),
    };

    public BootResult Boot(BootFiles files) => Iboot.Boot(Inputs(files));

    public void Dispose()
    {
        Kexts.Dispose();
        Mac.Dispose();
    }
}

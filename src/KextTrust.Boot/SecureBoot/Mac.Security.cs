using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using KextTrust.Boot.Enclave;
using KextTrust.Boot.Kernel;
using KextTrust.Boot.KernelManagement;
using KextTrust.Boot.Policy;
using KextTrust.Boot.Receipt;
using KextTrust.Boot.Startup;
using KextTrust.Consent;
using KextTrust.Consent.Policy;
using KextTrust.Formats;
using KextTrust.Formats.Image4;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;
using KextTrust.Kexts.Signing;
using KextTrust.Machine;
using LocalPolicyRecord = KextTrust.Boot.Policy.LocalPolicy;

namespace KextTrust.Boot.SecureBoot;

// Security settings: the Secure Enclave-signed LocalPolicy, bputil and csrutil (One True Recovery, admin password).
public sealed partial class Mac
{
    /// <summary>Stages the Secure Enclave's sealed files and the first LocalPolicy (Apple silicon; nothing on Intel).</summary>
    private static void StageSecureBoot(MachineStore store, MachineDescription d, MachineTransaction tx)
    {
        if (d.Platform != MacPlatform.AppleSilicon)
        {
            return;
        }
        var dir = store.PathOf(SecureBootLayout.Enclave);
        if (File.Exists(Path.Combine(dir, SecureEnclave.KeyFileName)))
        {
            // A Mac of an earlier version whose Secure Enclave was provisioned without a LocalPolicy: keep its key.
            using var existing = SecureEnclave.Open(dir, Convert.FromHexString(d.HardwareUid), d.Ecid);
            var nonce = existing.PrepareLocalPolicyNonce();
            StageSigned(tx, (LocalPolicyRecord.CreateFullSecurity(existing, VolumeGroup(d)) with { LocalPolicyNonceHash = nonce.Hash }).Sign(existing, nonce).Encode(), nonce);
            return;
        }
        var provisioned = SecureEnclave.Provision(dir, Convert.FromHexString(d.HardwareUid), d.Ecid);
        using var sep = provisioned.Enclave;
        tx.StageFile(SecureBootLayout.EnclaveKey, provisioned.SealedKey.Span);
        StageSigned(tx, LocalPolicyRecord.CreateFullSecurity(sep, VolumeGroup(d)).Sign(sep).Encode(), provisioned.FirstNonce);
    }

    /// <summary>
    /// The LocalPolicy on disk verified as iBoot verifies it at startup: signed by this Mac's Secure Enclave key, for its
    /// ECID, carrying the SEP's current Local Policy Nonce hash, well formed and consistent. The failures say why not.
    /// </summary>
    /// <exception cref="SecureBootException"><see cref="SecureBootCode.NoLocalPolicy"/>, <see cref="SecureBootCode.NotOnIntel"/>.</exception>
    public LocalPolicyVerification VerifyLocalPolicy()
    {
        var (bytes, path) = LocalPolicyFile();
        using var sep = OpenEnclave();
        return LocalPolicyVerifier.Verify(bytes, path, sep);
    }

    /// <summary>The LocalPolicy on disk (decoded, not verified: see <see cref="VerifyLocalPolicy"/>).</summary>
    /// <exception cref="SecureBootException">
    /// <see cref="SecureBootCode.LocalPolicyMalformed"/> (naming the file, and the offset when the DER broke) when the file
    /// cannot be decoded; <see cref="SecureBootCode.NoLocalPolicy"/>, <see cref="SecureBootCode.NotOnIntel"/>.
    /// </exception>
    public LocalPolicyRecord ReadLocalPolicy()
    {
        var (bytes, path) = LocalPolicyFile();
        try
        {
            return LocalPolicyRecord.FromBytes(bytes, path);
        }
        catch (Image4FormatException e)
        {
            throw new SecureBootException(SecureBootCode.LocalPolicyMalformed, e.Message, e);
        }
        catch (LocalPolicyException e)
        {
            throw new SecureBootException(SecureBootCode.LocalPolicyMalformed, $"{path}: invalid LocalPolicy: {string.Join("; ", e.Failures.Select(f => f.Detail))}", e);
        }
    }

    /// <summary>The LocalPolicy file's bytes and path, for <see cref="ReadLocalPolicy"/> and <see cref="VerifyLocalPolicy"/>.</summary>
    private (byte[] Bytes, string Path) LocalPolicyFile()
    {
        if (Description.Platform != MacPlatform.AppleSilicon)
        {
            throw new SecureBootException(SecureBootCode.NotOnIntel, "Intel Macs have no LocalPolicy: their AuxKC lives on the data volume");
        }
        var bytes = ReadOptional(SecureBootLayout.LocalPolicy)
            ?? throw new SecureBootException(SecureBootCode.NoLocalPolicy, "no LocalPolicy on the Preboot volume");
        return (bytes, Store.PathOf(SecureBootLayout.LocalPolicy));
    }

    /// <summary><c>bputil</c>: sets the security mode, third-party kexts (smb2) and MDM kext management (smb3) in a new SEP-signed LocalPolicy.</summary>
    public LocalPolicyRecord Bputil(BputilRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (Description.Platform != MacPlatform.AppleSilicon)
        {
            throw new SecureBootException(SecureBootCode.NotOnIntel, "bputil: not on Intel (Intel Macs have no LocalPolicy)");
        }
        AuthorizeRecovery(request.User, request.Password, "changing the security policy (bputil)");
        var current = ReadLocalPolicy();
        var full = request.Mode == SecurityMode.Full;
        var proposed = current with
        {
            ReducedSecurity = !full,
            PermissiveSecurity = request.Mode == SecurityMode.Permissive,
            ThirdPartyKextsEnabled = !full && request.EnableKexts,
            MdmManagesKexts = !full && request.EnableMdm,
            SipConfig = request.Mode == SecurityMode.Permissive ? current.SipConfig : CsrConfig.None,
        };
        if (!proposed.ThirdPartyKextsEnabled)
        {
            proposed = proposed with { AuxKextPolicyHash = null, AuxKcImage4Hash = null, AuxKcReceiptHash = null };
        }
        return WritePolicy(proposed);
    }

    /// <summary><c>csrutil enable|disable [--without kext]</c>: recovery only, admin password. Apple silicon: also the LocalPolicy's sip0.</summary>
    public CsrConfig Csrutil(bool enable, bool withoutKext, string user, string password)
    {
        AuthorizeRecovery(user, password, "changing System Integrity Protection (csrutil)");
        var csr = enable ? (withoutKext ? CsrConfig.AllowUntrustedKexts | CsrConfig.AllowUnapprovedKexts : CsrConfig.None) : CsrConfig.Disabled;
        if (Description.Platform == MacPlatform.AppleSilicon)
        {
            var current = ReadLocalPolicy();
            var proposed = current with { SipConfig = csr.Sip0() };
            if (csr != CsrConfig.None)
            {
                proposed = proposed with { ReducedSecurity = true, PermissiveSecurity = true };
            }
            // The new LocalPolicy, its nonce and the NVRAM SIP setting switch in together: one commit.
            var tx = Store.Begin();
            StagePolicy(tx, proposed);
            _policy.SetCsr(csr, tx);
        }
        else
        {
            _policy.SetCsr(csr, Store.Begin());
        }
        return csr;
    }

    private LocalPolicyRecord WritePolicy(LocalPolicyRecord proposed)
    {
        var tx = Store.Begin();
        var policy = StagePolicy(tx, proposed);
        tx.Commit();
        return policy;
    }

    /// <summary>
    /// Stages a new SEP-signed LocalPolicy and, in the same transaction, the new Local Policy Nonce it carries: until the
    /// commit point the old policy and nonce stay in force; after it only the new pair verifies.
    /// </summary>
    private LocalPolicyRecord StagePolicy(MachineTransaction tx, LocalPolicyRecord proposed)
    {
        var failures = proposed.CheckConsistency();
        if (failures.Count > 0)
        {
            throw new SecureBootException(SecureBootCode.InconsistentPolicy, string.Join("; ", failures.Select(f => f.Detail)));
        }
        using var sep = OpenEnclave();
        var nonce = sep.PrepareLocalPolicyNonce();
        var policy = proposed with { LocalPolicyNonceHash = nonce.Hash };
        StageSigned(tx, policy.Sign(sep, nonce).Encode(), nonce);
        return policy;
    }

    private static void StageSigned(MachineTransaction tx, ReadOnlySpan<byte> policy, PendingLocalPolicyNonce nonce)
    {
        tx.StageFile(SecureBootLayout.EnclaveNonce, nonce.SealedBytes.Span);
        tx.StageFile(SecureBootLayout.LocalPolicy, policy);
    }
}

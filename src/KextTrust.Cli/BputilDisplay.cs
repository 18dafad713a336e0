using System.Globalization;
using KextTrust.Boot.Policy;
using KextTrust.Machine;
using KextTrust.Formats.Image4;

namespace KextTrust.Cli;

/// <summary>
/// A LocalPolicy in the layout of Apple's <c>bputil -d</c>, so that scripts written for the real tool parse ours (e.g. fleetdm's
/// parser of it: a "Local policy for volume group UUID:" header, then rows "Name (4CC): value" with the name padded to 40
/// columns, and "Name: Mode (4CC): value" for the security flags, "absent" for a property the policy does not hold).
/// </summary>
internal static class BputilDisplay
{
    private const int LabelWidth = 40;

    /// <summary>The lines: the volume-group header, the OS environment, then the policy's properties in bputil's order.</summary>
    /// <param name="p">The policy.</param>
    /// <param name="verified">Whether the policy verifies as iBoot checks it (bputil's "Pairing Integrity").</param>
    /// <param name="currentNonceHash">The Secure Enclave's current Local Policy Nonce hash (the OS environment's lpnh), or null.</param>
    public static IEnumerable<string> Lines(LocalPolicy p, bool verified, Sha384Digest? currentNonceHash)
    {
        ArgumentNullException.ThrowIfNull(p);
        yield return $"Local policy for volume group {Uuid(p.VolumeGroupUuid)}:";
        yield return "OS environment:";
        yield return Row("OS Type", null, "macOS");
        if (currentNonceHash is not null)
        {
            yield return Row("Local Policy Nonce Hash", "lpnh", Hex(currentNonceHash));
        }
        yield return "";
        yield return "Local policy:";
        yield return Row("Pairing Integrity", null, verified ? "Valid" : "Invalid");
        yield return Row("Unique Chip ID", "ECID", "0x" + p.Ecid.ToString("X", CultureInfo.InvariantCulture));
        yield return Row("Volume Group UUID", "vuid", Uuid(p.VolumeGroupUuid));
        yield return Row("KEK Group UUID", "kuid", p.KekGroupUuid is { } k ? Uuid(k) : "absent");
        yield return Row("Local Policy Nonce Hash", "lpnh", Hex(p.LocalPolicyNonceHash));
        yield return Row("Remote Policy Nonce Hash", "rpnh", Hex(p.RemotePolicyNonceHash));
        yield return Row("Next Stage Image4 Hash", "nsih", Hex(p.NextStageImage4Hash));
        yield return Row("User Authorized Kext List Hash", "auxp", Hex(p.AuxKextPolicyHash));
        yield return Row("Auxiliary Kernel Cache Image4 Hash", "auxi", Hex(p.AuxKcImage4Hash));
        yield return Row("Kext Receipt Hash", "auxr", Hex(p.AuxKcReceiptHash));
        yield return Row("CustomKC or fuOS Image4 Hash", "coih", Hex(p.CustomKcImage4Hash));
        yield return p.SecurityMode switch
        {
            SecurityMode.Permissive => Flag("Security Mode", "Permissive", "smb0 && smb1", "1"),
            SecurityMode.Reduced => Flag("Security Mode", "Reduced", "smb0", "1"),
            _ => Flag("Security Mode", "Full", "smb0", "absent"),
        };
        yield return Flag("3rd Party Kexts Status", p.ThirdPartyKextsEnabled ? "Enabled" : "Disabled", "smb2", One(p.ThirdPartyKextsEnabled));
        yield return Flag("User-allowed MDM Control", p.MdmManagesKexts ? "Enabled" : "Disabled", "smb3", One(p.MdmManagesKexts));
        yield return Flag("DEP-allowed MDM Control", p.DepMdmControl ? "Enabled" : "Disabled", "smb4", One(p.DepMdmControl));
        var sip = p.SipConfig;
        yield return Flag("SIP Status", sip == CsrConfig.None ? "Enabled" : sip == CsrConfig.Disabled ? "Disabled" : "Custom", "sip0",
            sip == CsrConfig.None ? "absent" : "0x" + ((uint)sip).ToString("X", CultureInfo.InvariantCulture));
        yield return Flag("Signed System Volume Status", p.SignedSystemVolumeDisabled ? "Disabled" : "Enabled", "sip1", One(p.SignedSystemVolumeDisabled));
        yield return Flag("Kernel CTRR Status", p.KernelCtrrDisabled ? "Disabled" : "Enabled", "sip2", One(p.KernelCtrrDisabled));
        yield return Flag("Boot Args Filtering Status", p.BootArgsFilteringDisabled ? "Disabled" : "Enabled", "sip3", One(p.BootArgsFilteringDisabled));
    }

    private static string Row(string name, string? fourCC, string value) =>
        (name.PadRight(LabelWidth) + (fourCC is null ? "      " : $"({fourCC})")) + ": " + value;

    private static string Flag(string name, string mode, string fourCCs, string value) =>
        $"{(name + ":").PadRight(29)}{mode.PadRight(LabelWidth - 29)}({fourCCs}): {value}";

    private static string One(bool set) => set ? "1" : "absent";

    private static string Hex(Sha384Digest? digest) => digest is null ? "absent" : Convert.ToHexString(digest.Span);

    private static string Uuid(Guid g) => g.ToString("D").ToUpperInvariant();
}

using System.Collections.Immutable;
using KextTrust.Boot.Startup;

namespace KextTrust.Boot.Receipt;

/// <summary>Why Apple Pay is or is not available.</summary>
public enum ApplePayReason
{
    /// <summary>No AuxKC was loaded: no third-party kexts in the kernel.</summary>
    NoAuxKc,
    /// <summary>The loaded AuxKC's receipt lists no kexts.</summary>
    ReceiptListsNoKexts,
    /// <summary>The receipt lists third-party kexts loaded from the AuxKC.</summary>
    ThirdPartyKextsLoaded,
}

/// <summary>Apple Pay's verdict.</summary>
/// <param name="Available">True when Apple Pay can be used.</param>
/// <param name="Reason">Why.</param>
/// <param name="InterferingKexts">The receipt's kexts that could interfere (empty when available).</param>
public sealed record ApplePayStatus(bool Available, ApplePayReason Reason, ImmutableArray<ReceiptIncludedKext> InterferingKexts)
{
    /// <summary>One line for the CLI.</summary>
    public string Describe() => Available
        ? "Apple Pay: available"
        : $"Apple Pay: disabled: third-party kexts could interfere: {string.Join(", ", InterferingKexts.Select(k => k.BundleId))}";
}

/// <summary>
/// Apple Pay as a consumer of the kext receipt. Rule: any kext the receipt lists as included (loaded from the AuxKC into
/// the kernel, whoever signed it and however it was approved) could interfere with the trustworthiness of macOS, so Apple
/// Pay is disabled and those kexts are named; with no AuxKC loaded, or an AuxKC of no kexts, it is available.
/// </summary>
public static class ApplePay
{
    /// <summary>The status for the receipt of the AuxKC in use, or null when none is loaded.</summary>
    public static ApplePayStatus Status(KextReceipt? receipt)
    {
        if (receipt is null)
        {
            return new ApplePayStatus(true, ApplePayReason.NoAuxKc, []);
        }
        return receipt.Included.IsEmpty
            ? new ApplePayStatus(true, ApplePayReason.ReceiptListsNoKexts, [])
            : new ApplePayStatus(false, ApplePayReason.ThirdPartyKextsLoaded, receipt.Included);
    }

    /// <summary>The status after a startup: the receipt counts only when iBoot verified and loaded the AuxKC.</summary>
    public static ApplePayStatus Status(BootResult boot)
    {
        ArgumentNullException.ThrowIfNull(boot);
        return Status(boot.ThirdPartyKextsLoaded ? boot.Receipt : null);
    }
}

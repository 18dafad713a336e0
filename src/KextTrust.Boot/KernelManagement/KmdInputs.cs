using KextTrust.Boot.Policy;
using KextTrust.Consent.Policy;
using KextTrust.Formats.Image4;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;
using KextTrust.Kexts.Signing;
using KextTrust.Machine;

namespace KextTrust.Boot.KernelManagement;

/// <summary>Everything kmd needs to build an AuxKC; no file-system state beyond reading the candidate bundles.</summary>
internal sealed record AuxKcBuildRequest
{
    /// <summary>The kexts found in <c>/Library/Extensions</c> (their plug-ins are candidates too).</summary>
    public required IReadOnlyList<KextBundle> Candidates { get; init; }

    /// <summary>The user-authorized kext list (its hash becomes the LocalPolicy's <c>auxp</c>).</summary>
    public required UserApprovedKextList Uakl { get; init; }

    /// <summary>The Mac's architecture: <see cref="KextArchitecture.Arm64"/> means Apple silicon and needs arm64e slices.</summary>
    public required KextArchitecture Architecture { get; init; }

    /// <summary>The macOS release whose KPI catalog the kexts link against.</summary>
    public required MacOSRelease Release { get; init; }

    /// <summary>The SIP configuration (LocalPolicy <c>sip0</c>); <see cref="CsrConfig.AllowUntrustedKexts"/> turns signature enforcement and the KPI rules off.</summary>
    public CsrConfig Sip { get; init; }

    /// <summary>The exclude list (AppleKextExcludeList): true for a banned bundle id and version.</summary>
    public Func<string, KextVersion, bool> IsBanned { get; init; } = static (_, _) => false;

    /// <summary>The one signature verdict for a bundle (<see cref="KextSignatureVerifier"/>).</summary>
    public required Func<KextBundle, KextSignatureVerification> VerifySignature { get; init; }

    /// <summary>The KPI catalog (load once and share).</summary>
    public required KpiCatalog Catalog { get; init; }

    /// <summary>
    /// The root of the simulated volume: bundle paths under it are recorded as absolute paths on the Mac
    /// (<c>/Library/Extensions/X.kext</c>); null records full host paths.
    /// </summary>
    public string? VolumeRoot { get; init; }
}

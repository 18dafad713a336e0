using System.Diagnostics.CodeAnalysis;
using System.Text;
using KextTrust.Boot.Policy;
using KextTrust.Formats.Image4;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;
using KextTrust.Kexts.Signing;

namespace KextTrust.Boot.KernelManagement;

/// <summary>How a UAKL entry was approved (the User-Approved Kernel Extension Loading paths of Apple's guide).</summary>
public enum KextConsentSource
{
    /// <summary>An administrator approved it in System Settings.</summary>
    User,
    /// <summary>An MDM profile (kext policy payload) allows it; exempts it from the KPI deprecation rules.</summary>
    Mdm,
    /// <summary>Allowed with <c>spctl kext-consent add</c> from recoveryOS.</summary>
    Spctl,
    /// <summary>Installed on macOS 10.12 or earlier (grandfathered).</summary>
    Legacy,
    /// <summary>Replaces a previously approved kext.</summary>
    Replacement,
}

/// <summary>One entry of the user-authorized kext list: a team's bundle id and how it was approved.</summary>
/// <param name="TeamId">Team identifier; empty for unsigned kexts (approved only with SIP's kext bit off).</param>
/// <param name="BundleId">CFBundleIdentifier.</param>
/// <param name="Source">How it was approved.</param>
public sealed record UaklEntry(string TeamId, string BundleId, KextConsentSource Source);

/// <summary>The user-authorized kext list (UAKL) kmd builds from; its hash is the LocalPolicy's <c>auxp</c>.</summary>
public interface IUserApprovedKextList
{
    /// <summary>The entry for exactly this team and bundle id.</summary>
    bool TryFind(string teamId, string bundleId, [NotNullWhen(true)] out UaklEntry? entry);

    /// <summary>The teams for which <paramref name="bundleId"/> is listed (to explain a team mismatch).</summary>
    IReadOnlyList<string> TeamsFor(string bundleId);

    /// <summary>SHA-384 of the list (the value for <c>auxp</c>).</summary>
    Sha384Digest Hash { get; }
}

/// <summary>
/// An in-memory UAKL. <see cref="Hash"/> is SHA-384 over the UTF-8 text made of one line
/// <c>teamId TAB bundleId TAB source LF</c> per entry, entries sorted ordinally by team id then bundle id
/// (source as its enum name), so the hash does not depend on insertion order. Duplicate (team, bundle) pairs are refused.
/// </summary>
public sealed class UserApprovedKextList : IUserApprovedKextList
{
    private readonly Dictionary<(string, string), UaklEntry> _entries = [];

    /// <summary>Builds the list from its entries.</summary>
    /// <exception cref="ArgumentException">An entry repeats a (team, bundle id) pair or has an empty bundle id.</exception>
    public UserApprovedKextList(IEnumerable<UaklEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        foreach (var e in entries)
        {
            ArgumentNullException.ThrowIfNull(e);
            ArgumentException.ThrowIfNullOrEmpty(e.BundleId, nameof(entries));
            ArgumentNullException.ThrowIfNull(e.TeamId, nameof(entries));
            if (!_entries.TryAdd((e.TeamId, e.BundleId), e))
            {
                throw new ArgumentException($"UAKL lists {e.TeamId}/{e.BundleId} twice", nameof(entries));
            }
        }
        Entries = _entries.Values.OrderBy(e => e.TeamId, StringComparer.Ordinal).ThenBy(e => e.BundleId, StringComparer.Ordinal).ToArray();
        var text = new StringBuilder();
        foreach (var e in Entries)
        {
            text.Append(e.TeamId).Append('\t').Append(e.BundleId).Append('\t').Append(e.Source).Append('\n');
        }
        Hash = Sha384Digest.Compute(Encoding.UTF8.GetBytes(text.ToString()));
    }

    /// <summary>The entries in canonical order.</summary>
    public IReadOnlyList<UaklEntry> Entries { get; }

    /// <inheritdoc/>
    public Sha384Digest Hash { get; }

    /// <inheritdoc/>
    public bool TryFind(string teamId, string bundleId, [NotNullWhen(true)] out UaklEntry? entry) =>
        _entries.TryGetValue((teamId, bundleId), out entry);

    /// <inheritdoc/>
    public IReadOnlyList<string> TeamsFor(string bundleId) =>
        Entries.Where(e => e.BundleId == bundleId).Select(e => e.TeamId).ToArray();
}

/// <summary>Everything kmd needs to build an AuxKC; no file-system state beyond reading the candidate bundles.</summary>
public sealed record AuxKcBuildRequest
{
    /// <summary>The kexts found in <c>/Library/Extensions</c> (their plug-ins are candidates too).</summary>
    public required IReadOnlyList<KextBundle> Candidates { get; init; }

    /// <summary>The user-authorized kext list.</summary>
    public required IUserApprovedKextList Uakl { get; init; }

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

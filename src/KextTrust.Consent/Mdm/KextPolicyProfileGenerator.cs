using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using KextTrust.Consent.Policy;
using KextTrust.Kexts.Signing;
using KextTrust.Formats.PropertyLists;
using KextTrust.Kexts.Bundles;

namespace KextTrust.Consent.Mdm;

/// <summary>Options of <see cref="KextPolicyProfileGenerator.Generate"/>.</summary>
public sealed record KextPolicyProfileOptions
{
    /// <summary>The profile's top-level PayloadIdentifier: keep it when regenerating, so the new profile replaces the old one.</summary>
    public string Identifier { get; init; } = "kextrust.kernel-extension-policy";
    /// <summary>PayloadDisplayName.</summary>
    public string DisplayName { get; init; } = "Approved Kernel Extensions";
    /// <summary>PayloadOrganization, when given.</summary>
    public string? Organization { get; init; }
    /// <summary>Allow whole teams (AllowedTeamIdentifiers) instead of listing bundle ids (AllowedKernelExtensions).</summary>
    public bool TeamOnly { get; init; }
    /// <summary>AllowUserOverrides: users may still approve kexts the profile does not list.</summary>
    public bool AllowUserOverrides { get; init; }
    /// <summary>AllowNonAdminUserApprovals (macOS 11+).</summary>
    public bool AllowNonAdminUserApprovals { get; init; }
}

/// <summary>One kext a generated profile allows, and why it is listed where it is.</summary>
/// <param name="TeamId">The team key it is listed under ('' for unsigned and ad-hoc signed kexts).</param>
/// <param name="Signature"><c>developer-id</c>, <c>unsigned</c> or <c>ad-hoc</c> (<see cref="ConsentSignature.Kind"/>).</param>
public sealed record ProfileKext(string BundleId, string Path, string TeamId, string Signature, string? DeveloperName);

/// <summary>A generated <c>.mobileconfig</c>.</summary>
/// <param name="Bytes">The file: the XML property list, or CMS SignedData (DER) wrapping it when signed.</param>
/// <param name="Xml">The XML property list.</param>
public sealed record GeneratedKextPolicyProfile(
    byte[] Bytes,
    byte[] Xml,
    string Identifier,
    string ProfileUuid,
    string PayloadIdentifier,
    string PayloadUuid,
    IReadOnlyList<string> AllowedTeamIdentifiers,
    IReadOnlyDictionary<string, IReadOnlyList<string>> AllowedKernelExtensions,
    IReadOnlyList<ProfileKext> Kexts,
    string? SignerSubject);

/// <summary>
/// Writes a <c>com.apple.syspolicy.kernel-extension-policy</c> profile from kexts' verified signatures: the team id of
/// each Developer ID–signed kext (its bundle ids under <c>AllowedKernelExtensions</c>, or the team in
/// <c>AllowedTeamIdentifiers</c> with <see cref="KextPolicyProfileOptions.TeamOnly"/>), unsigned and ad-hoc signed kexts
/// under the empty team key as Apple documents, plug-in kexts with their own bundle ids. A kext whose signature does
/// not verify is refused: no profile makes it load. UUIDs are stable: the payload's is derived from the identifier
/// alone (a regenerated profile updates the installed payload in place), the profile's from the identifier and the
/// content (the same kexts give the same bytes).
/// </summary>
public static class KextPolicyProfileGenerator
{
    /// <summary>Generates the profile for the kexts at <paramref name="paths"/> (kext bundles, or folders searched for them).</summary>
    public static GeneratedKextPolicyProfile Generate(IEnumerable<string> paths, IKextSignatureVerifier verifier, KextPolicyProfileOptions options, X509Certificate2Collection? signer = null)
    {
        ArgumentNullException.ThrowIfNull(paths);
        ArgumentNullException.ThrowIfNull(verifier);
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(options.Identifier) || options.Identifier.Any(char.IsControl))
        {
            throw new ConsentException(ConsentCode.InvalidArgument, null, $"'{options.Identifier}' is not a profile identifier");
        }
        var kexts = new List<ProfileKext>();
        foreach (var bundle in FindKexts(paths))
        {
            KextSignatureVerification sig;
            try
            {
                sig = verifier.Verify(bundle.Path);
            }
            catch (KextSignatureInputException e)
            {
                throw new ConsentException(ConsentCode.UnreadableKext, bundle.Path, e.Message, e);
            }
            var kind = ConsentSignature.Kind(sig);
            if (kind == "invalid")
            {
                throw new KextSignatureRefusedException(sig, bundle.Path, $"the signature of {bundle.BundleId} does not verify, a profile cannot make it load");
            }
            var team = sig.VerifiedTeamId ?? "";
            if (kexts.FirstOrDefault(k => k.BundleId == bundle.BundleId) is { } seen && seen.TeamId != team)
            {
                throw new ConsentException(ConsentCode.InvalidArgument, bundle.Path, $"{bundle.BundleId} is also at {seen.Path} with another team ({Team(seen.TeamId)} and {Team(team)})");
            }
            kexts.Add(new ProfileKext(bundle.BundleId!, bundle.Path, team, kind, sig.Signer));
        }
        if (kexts.Count == 0)
        {
            throw new ConsentException(ConsentCode.InvalidArgument, null, "no kext found in the given paths");
        }
        var teams = options.TeamOnly ? kexts.Select(k => k.TeamId).Where(t => t.Length > 0).Distinct().Order(StringComparer.Ordinal).ToArray() : [];
        var map = kexts.Where(k => !options.TeamOnly || k.TeamId.Length == 0)
            .GroupBy(k => k.TeamId).OrderBy(g => g.Key, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => (IReadOnlyList<string>)g.Select(k => k.BundleId).Distinct().Order(StringComparer.Ordinal).ToArray(), StringComparer.Ordinal);

        var payloadIdentifier = options.Identifier + ".kernel-extension-policy";
        var payloadUuid = StableUuid(options.Identifier, "payload");
        var payload = new List<(string, PlistNode)>
        {
            ("PayloadType", new PlistString(MdmProfile.KernelExtensionPolicyType)),
            ("PayloadVersion", new PlistInteger(1)),
            ("PayloadIdentifier", new PlistString(payloadIdentifier)),
            ("PayloadUUID", new PlistString(payloadUuid)),
            ("PayloadDisplayName", new PlistString(options.DisplayName)),
            ("AllowUserOverrides", options.AllowUserOverrides ? PlistBoolean.True : PlistBoolean.False),
            ("AllowNonAdminUserApprovals", options.AllowNonAdminUserApprovals ? PlistBoolean.True : PlistBoolean.False),
        };
        if (teams.Length > 0)
        {
            payload.Add(("AllowedTeamIdentifiers", new PlistArray(teams.Select(t => (PlistNode)new PlistString(t)))));
        }
        if (map.Count > 0)
        {
            payload.Add(("AllowedKernelExtensions", new PlistDictionary(map.Select(kv =>
                new KeyValuePair<string, PlistNode>(kv.Key, new PlistArray(kv.Value.Select(b => (PlistNode)new PlistString(b))))))));
        }
        if (options.Organization is { } organization)
        {
            payload.Add(("PayloadOrganization", new PlistString(organization)));
        }
        var contentXml = PropertyList.ToXml(new PlistDictionary(payload.ToArray()));
        var profileUuid = StableUuid(options.Identifier, Convert.ToHexString(SHA256.HashData(contentXml)));
        var top = new List<(string, PlistNode)>
        {
            ("PayloadType", new PlistString("Configuration")),
            ("PayloadVersion", new PlistInteger(1)),
            ("PayloadIdentifier", new PlistString(options.Identifier)),
            ("PayloadUUID", new PlistString(profileUuid)),
            ("PayloadDisplayName", new PlistString(options.DisplayName)),
            ("PayloadScope", new PlistString("System")),
        };
        if (options.Organization is { } org)
        {
            top.Add(("PayloadOrganization", new PlistString(org)));
        }
        top.Add(("PayloadContent", new PlistArray([new PlistDictionary(payload.ToArray())])));
        var xml = PropertyList.ToXml(new PlistDictionary(top.ToArray()));
        var (bytes, subject) = signer is null ? (xml, (string?)null) : Sign(xml, signer);
        return new GeneratedKextPolicyProfile(bytes, xml, options.Identifier, profileUuid, payloadIdentifier, payloadUuid, teams, map, kexts, subject);
    }

    private static string Team(string t) => t.Length == 0 ? "'' (unsigned)" : t;

    /// <summary>
    /// A UUID derived from <paramref name="identifier"/> and <paramref name="role"/> (SHA-256, first 16 bytes, RFC 9562
    /// version 8 and variant bits set), upper case as <c>uuidgen</c> writes them.
    /// </summary>
    internal static string StableUuid(string identifier, string role)
    {
        ArgumentNullException.ThrowIfNull(identifier);
        ArgumentNullException.ThrowIfNull(role);
        var h = SHA256.HashData(Encoding.UTF8.GetBytes("kextrust profile\0" + identifier + "\0" + role)).AsSpan(0, 16).ToArray();
        h[6] = (byte)((h[6] & 0x0F) | 0x80);
        h[8] = (byte)((h[8] & 0x3F) | 0x80);
        var hex = Convert.ToHexString(h);
        return $"{hex[..8]}-{hex[8..12]}-{hex[12..16]}-{hex[16..20]}-{hex[20..]}";
    }

    private static (byte[], string) Sign(byte[] xml, X509Certificate2Collection chain)
    {
        var leaf = chain.FirstOrDefault(c => c.HasPrivateKey)
            ?? throw new ConsentException(ConsentCode.InvalidArgument, null, "the signing identity has no certificate with a private key");
        var cms = new SignedCms(new ContentInfo(xml), detached: false);
        var cmsSigner = new CmsSigner(SubjectIdentifierType.IssuerAndSerialNumber, leaf) { IncludeOption = X509IncludeOption.EndCertOnly, DigestAlgorithm = new Oid("2.16.840.1.101.3.4.2.1") };
        foreach (var c in chain.Where(c => !c.Equals(leaf) && c.SubjectName.RawData.AsSpan().SequenceEqual(c.IssuerName.RawData) == false))
        {
            cmsSigner.Certificates.Add(c);
        }
        try
        {
            cms.ComputeSignature(cmsSigner);
        }
        catch (CryptographicException e)
        {
            throw new ConsentException(ConsentCode.InvalidArgument, null, "cannot sign the profile with this identity: " + e.Message);
        }
        return (cms.Encode(), leaf.Subject);
    }

    private static IEnumerable<KextBundle> FindKexts(IEnumerable<string> paths)
    {
        foreach (var path in paths)
        {
            var full = Path.GetFullPath(path);
            if (!Directory.Exists(full))
            {
                throw new ConsentException(ConsentCode.UnreadableKext, path, "no such kext or folder");
            }
            var roots = IsKext(full) ? [full] : Directory.EnumerateDirectories(full, "*.kext", SearchOption.AllDirectories)
                .Where(d => !Path.GetRelativePath(full, d).Split(Path.DirectorySeparatorChar).SkipLast(1).Any(p => p.EndsWith(".kext", StringComparison.OrdinalIgnoreCase)))
                .Order(StringComparer.Ordinal).ToArray();
            foreach (var root in roots)
            {
                KextBundle bundle;
                try
                {
                    bundle = KextBundle.Open(root);
                }
                catch (KextBundleException e)
                {
                    throw new ConsentException(ConsentCode.UnreadableKext, root, e.Message, e);
                }
                foreach (var b in bundle.SelfAndPlugIns())
                {
                    if (b.BundleId is null)
                    {
                        throw new ConsentException(ConsentCode.UnreadableKext, b.Path, "the kext has no CFBundleIdentifier");
                    }
                    yield return b;
                }
            }
        }
    }

    private static bool IsKext(string dir) => dir.EndsWith(".kext", StringComparison.OrdinalIgnoreCase) || File.Exists(Path.Combine(dir, "Contents", "Info.plist"));
}

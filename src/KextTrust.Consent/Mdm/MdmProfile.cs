using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using KextTrust.Formats;
using KextTrust.Formats.PropertyLists;

namespace KextTrust.Consent.Mdm;

/// <summary>A <c>com.apple.syspolicy.kernel-extension-policy</c> payload.</summary>
public sealed record KernelExtensionPolicyPayload(
    string PayloadUuid,
    string PayloadIdentifier,
    bool AllowUserOverrides,
    bool AllowNonAdminUserApprovals,
    IReadOnlyList<string> AllowedTeamIdentifiers,
    IReadOnlyDictionary<string, IReadOnlyList<string>> AllowedKernelExtensions);

/// <summary>A <c>com.apple.system-extension-policy</c> payload (parsed and reported; system extensions are not modelled further).</summary>
public sealed record SystemExtensionPolicyPayload(
    string PayloadUuid,
    string PayloadIdentifier,
    bool AllowUserOverrides,
    IReadOnlyList<string> AllowedTeamIdentifiers,
    IReadOnlyDictionary<string, IReadOnlyList<string>> AllowedSystemExtensions,
    IReadOnlyDictionary<string, IReadOnlyList<string>> AllowedSystemExtensionTypes);

/// <summary>Type, identifier and UUID of one payload of a profile (every payload, modelled or not), as written.</summary>
public sealed record PayloadSummary(string PayloadType, string PayloadIdentifier, string PayloadUuid);

/// <summary>A parsed <c>.mobileconfig</c>. PayloadUUIDs are opaque strings kept exactly as written (macOS does not parse them).</summary>
/// <param name="SignerSubject">Subject of the CMS signer when the profile is signed (the signature is checked, not the trust chain).</param>
public sealed record MdmProfile(
    string PayloadIdentifier,
    string PayloadUuid,
    string? DisplayName,
    string? SignerSubject,
    IReadOnlyList<KernelExtensionPolicyPayload> KernelExtensionPolicies,
    IReadOnlyList<SystemExtensionPolicyPayload> SystemExtensionPolicies,
    IReadOnlyList<string> OtherPayloadTypes,
    IReadOnlyList<PayloadSummary> Payloads)
{
    /// <summary>Payload type of the kext policy.</summary>
    public const string KernelExtensionPolicyType = "com.apple.syspolicy.kernel-extension-policy";
    /// <summary>Payload type of the system extension policy.</summary>
    public const string SystemExtensionPolicyType = "com.apple.system-extension-policy";

    private static readonly HashSet<string> SystemExtensionTypes = new(StringComparer.Ordinal) { "DriverExtension", "NetworkExtension", "EndpointSecurityExtension" };

    /// <summary>Reads a profile file (XML plist, or CMS SignedData wrapping one).</summary>
    public static MdmProfile Read(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (IOException e)
        {
            throw new ConsentException(ConsentCode.ProfileInvalid, path, e.Message, e);
        }
        return Parse(bytes, path);
    }

    /// <summary>Parses profile bytes; every problem is a <see cref="ConsentException"/> (<see cref="ConsentCode.ProfileInvalid"/>) naming the file and key.</summary>
    public static MdmProfile Parse(ReadOnlySpan<byte> bytes, string path)
    {
        string? signer = null;
        var content = bytes.ToArray();
        var trimmed = bytes.TrimStart(" \t\r\n"u8);
        if (trimmed.Length > 0 && trimmed[0] == 0x30)
        {
            var cms = new SignedCms();
            try
            {
                cms.Decode(bytes);
            }
            catch (CryptographicException e)
            {
                throw Bad(path, "not a property list, and not a CMS SignedData message either (it starts like DER): " + e.Message);
            }
            if (cms.SignerInfos.Count != 1 || cms.SignerInfos[0].Certificate is null)
            {
                throw new ConsentException(ConsentCode.ProfileInvalid, path, "a signed profile must have exactly one signer with its certificate");
            }
            try
            {
                cms.CheckSignature(verifySignatureOnly: true);
            }
            catch (CryptographicException e)
            {
                throw new ConsentException(ConsentCode.ProfileInvalid, path, "the CMS signature of the profile does not verify: " + e.Message, e);
            }
            signer = cms.SignerInfos[0].Certificate!.Subject;
            content = cms.ContentInfo.Content;
        }
        PlistNode root;
        try
        {
            root = PropertyList.Parse(content, path);
        }
        catch (KextTrustFormatException e)
        {
            // The format exception already names the file: keep its message without a second "path: ".
            throw new ConsentException(ConsentCode.ProfileInvalid, path, WithoutPath(e.Message, path), e);
        }
        var top = root as PlistDictionary ?? throw Bad(path, "the root is not a dictionary");
        if (Str(top, "PayloadType", path, "profile") != "Configuration")
        {
            throw Bad(path, "PayloadType of the profile must be Configuration");
        }
        var id = Str(top, "PayloadIdentifier", path, "profile");
        var uuid = Str(top, "PayloadUUID", path, "profile");
        var items = top.GetArray("PayloadContent") ?? throw Bad(path, "PayloadContent array is missing");
        var kext = new List<KernelExtensionPolicyPayload>();
        var sysext = new List<SystemExtensionPolicyPayload>();
        var other = new List<string>();
        var summaries = new List<PayloadSummary>();
        for (var i = 0; i < items.Count; i++)
        {
            var where = $"PayloadContent[{i}]";
            var p = items[i] as PlistDictionary ?? throw Bad(path, $"{where} is not a dictionary");
            var type = Str(p, "PayloadType", path, where);
            var pid = Str(p, "PayloadIdentifier", path, where);
            var puuid = Str(p, "PayloadUUID", path, where);
            summaries.Add(new PayloadSummary(type, pid, puuid));
            switch (type)
            {
                case KernelExtensionPolicyType:
                    kext.Add(new KernelExtensionPolicyPayload(puuid, pid,
                        Bool(p, "AllowUserOverrides", false, path, where),
                        Bool(p, "AllowNonAdminUserApprovals", false, path, where),
                        Strings(p, "AllowedTeamIdentifiers", path, where, allowEmpty: false),
                        StringMap(p, "AllowedKernelExtensions", path, where, allowEmptyKey: true, null)));
                    break;
                case SystemExtensionPolicyType:
                    var teams = Strings(p, "AllowedTeamIdentifiers", path, where, allowEmpty: false);
                    var allowed = StringMap(p, "AllowedSystemExtensions", path, where, allowEmptyKey: false, null);
                    var both = teams.Intersect(allowed.Keys, StringComparer.Ordinal).ToArray();
                    if (both.Length > 0)
                    {
                        throw Bad(path, $"{where}: team {both[0]} is both in AllowedTeamIdentifiers and a key of AllowedSystemExtensions");
                    }
                    sysext.Add(new SystemExtensionPolicyPayload(puuid, pid, Bool(p, "AllowUserOverrides", true, path, where), teams, allowed,
                        StringMap(p, "AllowedSystemExtensionTypes", path, where, allowEmptyKey: false, SystemExtensionTypes)));
                    break;
                default:
                    other.Add(type);
                    break;
            }
        }
        // Apple: a payload's PayloadIdentifier "must be unique within the profile"; its PayloadUUID is opaque ("the actual
        // content is unimportant") but a profile using one twice is refused by macOS ("The PayloadUUID “…” is used more
        // than once in the profile."). Compared exactly as written: macOS keeps the string, it does not parse it.
        if (summaries.GroupBy(u => u.PayloadUuid, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } twice)
        {
            throw Bad(path, $"The PayloadUUID “{twice.Key}” is used more than once in the profile.");
        }
        if (summaries.GroupBy(u => u.PayloadIdentifier, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } twiceId)
        {
            throw Bad(path, $"the payload PayloadIdentifier “{twiceId.Key}” is used more than once in the profile (it must be unique within the profile)");
        }
        return new MdmProfile(id, uuid, top.GetString("PayloadDisplayName"), signer, kext, sysext, other, summaries);
    }

    private static ConsentException Bad(string path, string message) => new(ConsentCode.ProfileInvalid, path, message);

    private static string Str(PlistDictionary d, string key, string path, string where) =>
        d[key] switch
        {
            PlistString { Value.Length: > 0 } s => s.Value,
            null => throw Bad(path, $"{where}: {key} is missing"),
            var n => throw Bad(path, $"{where}: {key} must be a non-empty string, found {PlistNode.KindName(n.Kind)}"),
        };

    /// <summary><paramref name="message"/> without a leading "<paramref name="path"/>: " (format exceptions name their file).</summary>
    internal static string WithoutPath(string message, string path) =>
        message.StartsWith(path + ": ", StringComparison.Ordinal) ? message[(path.Length + 2)..] : message;

    private static bool Bool(PlistDictionary d, string key, bool fallback, string path, string where) =>
        d[key] switch
        {
            null => fallback,
            PlistBoolean b => b.Value,
            var n => throw Bad(path, $"{where}: {key} must be a boolean, found {PlistNode.KindName(n.Kind)}"),
        };

    private static IReadOnlyList<string> Strings(PlistDictionary d, string key, string path, string where, bool allowEmpty)
    {
        if (d[key] is null)
        {
            return [];
        }
        var a = d[key] as PlistArray ?? throw Bad(path, $"{where}: {key} must be an array of strings");
        var list = new List<string>();
        for (var i = 0; i < a.Count; i++)
        {
            var s = a[i] as PlistString ?? throw Bad(path, $"{where}: {key}[{i}] must be a string, found {PlistNode.KindName(a[i].Kind)}");
            if (!allowEmpty && s.Value.Length == 0)
            {
                throw Bad(path, $"{where}: {key}[{i}] is empty");
            }
            if (s.Value.Any(char.IsControl))
            {
                throw Bad(path, $"{where}: {key}[{i}] contains control characters");
            }
            list.Add(s.Value);
        }
        return list.Distinct(StringComparer.Ordinal).ToArray();
    }

    private static IReadOnlyDictionary<string, IReadOnlyList<string>> StringMap(PlistDictionary d, string key, string path, string where, bool allowEmptyKey, HashSet<string>? allowedValues)
    {
        if (d[key] is null)
        {
            return new Dictionary<string, IReadOnlyList<string>>();
        }
        var m = d[key] as PlistDictionary ?? throw Bad(path, $"{where}: {key} must be a dictionary team → [string]");
        var result = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var (team, _) in m)
        {
            if (team.Length == 0 && !allowEmptyKey)
            {
                throw Bad(path, $"{where}: {key} has an empty team id");
            }
            var values = Strings(m, team, path, $"{where}: {key}", allowEmpty: false);
            if (allowedValues is not null && values.FirstOrDefault(v => !allowedValues.Contains(v)) is { } badValue)
            {
                throw Bad(path, $"{where}: {key}[{team}] has unknown value '{badValue}'");
            }
            result[team] = values;
        }
        return result;
    }
}

/// <summary>
/// Every kext policy payload installed on the Mac, combined as <c>pipeline-facts.md</c> §7 says: lists are
/// unioned; <c>AllowUserOverrides</c> and <c>AllowNonAdminUserApprovals</c> (default false) hold when any payload
/// sets them (KextTrust's reading: Apple documents no combination rule for these two booleans).
/// </summary>
public sealed record CombinedKextPolicy(
    bool Present,
    bool AllowUserOverrides,
    bool AllowNonAdminUserApprovals,
    IReadOnlyList<(string TeamId, string? BundleId, string PayloadUuid)> Allowed)
{
    /// <summary>No MDM kext policy.</summary>
    public static CombinedKextPolicy None { get; } = new(false, false, false, []);

    /// <summary>Combines the payloads of <paramref name="profiles"/> (ordered by identifier for determinism).</summary>
    public static CombinedKextPolicy Combine(IEnumerable<MdmProfile> profiles)
    {
        var payloads = profiles.OrderBy(p => p.PayloadIdentifier, StringComparer.Ordinal).SelectMany(p => p.KernelExtensionPolicies).ToArray();
        if (payloads.Length == 0)
        {
            return None;
        }
        var rows = new Dictionary<(string, string?), string>();
        foreach (var p in payloads)
        {
            foreach (var t in p.AllowedTeamIdentifiers)
            {
                rows.TryAdd((t, null), p.PayloadUuid);
            }
            foreach (var (team, ids) in p.AllowedKernelExtensions)
            {
                foreach (var b in ids)
                {
                    rows.TryAdd((team, b), p.PayloadUuid);
                }
            }
        }
        return new CombinedKextPolicy(true, payloads.Any(p => p.AllowUserOverrides), payloads.Any(p => p.AllowNonAdminUserApprovals),
            rows.Select(kv => (kv.Key.Item1, kv.Key.Item2, kv.Value)).OrderBy(r => r.Item1, StringComparer.Ordinal).ThenBy(r => r.Item2 ?? "", StringComparer.Ordinal).ToArray());
    }
}

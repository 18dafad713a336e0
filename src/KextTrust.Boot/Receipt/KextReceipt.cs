using System.Collections.Immutable;
using System.Globalization;
using KextTrust.Boot.KernelManagement;
using KextTrust.Boot.Policy;
using KextTrust.Formats;
using KextTrust.Formats.Image4;
using KextTrust.Formats.PropertyLists;
using KextTrust.Kexts.Kpi;

namespace KextTrust.Boot.Receipt;

/// <summary>A kext the AuxKC includes, as the receipt lists it.</summary>
/// <param name="BundleId">CFBundleIdentifier (also the LC_FILESET_ENTRY id).</param>
/// <param name="Version">CFBundleVersion.</param>
/// <param name="TeamId">Signing team; empty when unsigned or ad hoc.</param>
/// <param name="CdHash">cdhash as lowercase hex; empty when unsigned.</param>
/// <param name="Consent">How the UAKL entry was approved.</param>
/// <param name="BundlePath">Where the bundle was on the Mac.</param>
/// <param name="HasExecutable">False for a codeless kext (no fileset entry).</param>
public sealed record ReceiptIncludedKext(string BundleId, string Version, string TeamId, string CdHash, KextConsentSource Consent, string BundlePath, bool HasExecutable);

/// <summary>A candidate kext the AuxKC left out, and why.</summary>
/// <param name="BundleId">CFBundleIdentifier; empty when unreadable.</param>
/// <param name="Version">CFBundleVersion; empty when unreadable.</param>
/// <param name="BundlePath">Where the bundle was on the Mac.</param>
/// <param name="Reason">The stable exclusion code.</param>
/// <param name="Detail">The explanation from kmd's trace.</param>
public sealed record ReceiptExcludedKext(string BundleId, string Version, string BundlePath, KextExclusionCode Reason, string Detail);

/// <summary>Thrown when receipt bytes are not a canonical receipt.</summary>
public sealed class KextReceiptFormatException(string message, Exception? inner = null) : Exception("kext receipt: " + message, inner);

/// <summary>
/// The kext receipt kmd writes next to the AuxKC: exactly which kexts the AuxKC includes (in load order) and why
/// other candidates were left out. Its SHA-384 is the LocalPolicy's <c>auxr</c>; Apple Pay reads it.
/// </summary>
/// <remarks>
/// Format (version 1): an XML property list (our writer's canonical bytes) whose root dictionary has, in this order,
/// <c>KextReceiptVersion</c> (integer 1), <c>AuxKCSHA384</c> (hex string: SHA-384 of the AuxKC file),
/// <c>UAKLSHA384</c> (hex string: the <c>auxp</c> it was built from), <c>MacOSRelease</c> (catalog key, e.g. "15.4"),
/// <c>Architecture</c> ("arm64e" or "x86_64"), <c>SIPConfiguration</c> (integer <c>sip0</c>),
/// <c>IncludedKexts</c> (array, load order, of dictionaries <c>BundleIdentifier</c>, <c>BundleVersion</c>,
/// <c>TeamIdentifier</c>, <c>CDHash</c>, <c>ConsentSource</c>, <c>BundlePath</c>, <c>HasExecutable</c>) and
/// <c>ExcludedKexts</c> (array, in kmd's candidate order, of dictionaries <c>BundleIdentifier</c>, <c>BundleVersion</c>,
/// <c>BundlePath</c>, <c>Reason</c>, <c>Detail</c>). No timestamps: the same build gives the same bytes.
/// <see cref="FromBytes"/> accepts only bytes that re-encode identically, so the hash has one meaning.
/// </remarks>
public sealed record KextReceipt
{
    /// <summary>The format version written and accepted.</summary>
    public const int FormatVersion = 1;

    /// <summary>SHA-384 of the AuxKC file the receipt describes.</summary>
    public required Sha384Digest AuxKcMeasurement { get; init; }

    /// <summary>SHA-384 of the UAKL the AuxKC was built from (<c>auxp</c>).</summary>
    public required Sha384Digest UaklHash { get; init; }

    /// <summary>The macOS release the kexts were linked for.</summary>
    public required MacOSRelease Release { get; init; }

    /// <summary>The Mac's architecture.</summary>
    public required KextArchitecture Architecture { get; init; }

    /// <summary>The SIP configuration at build time.</summary>
    public CsrConfig Sip { get; init; }

    /// <summary>The included kexts in load order.</summary>
    public ImmutableArray<ReceiptIncludedKext> Included { get; init; } = [];

    /// <summary>The kexts left out.</summary>
    public ImmutableArray<ReceiptExcludedKext> Excluded { get; init; } = [];

    /// <summary>"arm64e" (Apple silicon) or "x86_64".</summary>
    public static string ArchitectureName(KextArchitecture architecture) => architecture == KextArchitecture.Arm64 ? "arm64e" : "x86_64";

    /// <summary>The canonical bytes (the file kmd writes).</summary>
    public byte[] ToBytes() => PropertyList.ToXml(ToPlist());

    /// <summary>SHA-384 of <see cref="ToBytes"/>: the value for <c>auxr</c>.</summary>
    public Sha384Digest ComputeHash() => Sha384Digest.Compute(ToBytes());

    /// <summary>Parses receipt bytes strictly.</summary>
    /// <exception cref="KextReceiptFormatException">Not a property list, wrong keys or types, unknown values, or not canonical.</exception>
    public static KextReceipt FromBytes(ReadOnlySpan<byte> bytes)
    {
        PlistNode root;
        try
        {
            root = PropertyList.ParseXml(bytes, "kext receipt");
        }
        catch (KextTrustFormatException e)
        {
            throw new KextReceiptFormatException($"not an XML property list: {e.Message}", e);
        }
        if (root is not PlistDictionary d)
        {
            throw new KextReceiptFormatException("the root is not a dictionary");
        }
        ExpectKeys(d, "receipt", ["KextReceiptVersion", "AuxKCSHA384", "UAKLSHA384", "MacOSRelease", "Architecture", "SIPConfiguration", "IncludedKexts", "ExcludedKexts"]);
        if (Int(d, "KextReceiptVersion") != FormatVersion)
        {
            throw new KextReceiptFormatException($"KextReceiptVersion is not {FormatVersion}");
        }
        var releaseKey = Str(d, "MacOSRelease");
        var release = MacOSRelease.All.FirstOrDefault(r => r.Key == releaseKey) ?? throw new KextReceiptFormatException($"unknown MacOSRelease '{releaseKey}'");
        var arch = Str(d, "Architecture") switch
        {
            "arm64e" => KextArchitecture.Arm64,
            "x86_64" => KextArchitecture.X86_64,
            var other => throw new KextReceiptFormatException($"unknown Architecture '{other}'"),
        };
        var sip = Int(d, "SIPConfiguration");
        if (sip is < 0 or > ushort.MaxValue)
        {
            throw new KextReceiptFormatException("SIPConfiguration is not a 16-bit mask");
        }
        var receipt = new KextReceipt
        {
            AuxKcMeasurement = Digest(d, "AuxKCSHA384"),
            UaklHash = Digest(d, "UAKLSHA384"),
            Release = release,
            Architecture = arch,
            Sip = (CsrConfig)(ushort)sip,
            Included = [.. Array(d, "IncludedKexts").Select(n =>
            {
                var k = Dict(n, "IncludedKexts item");
                ExpectKeys(k, "included kext", ["BundleIdentifier", "BundleVersion", "TeamIdentifier", "CDHash", "ConsentSource", "BundlePath", "HasExecutable"]);
                return new ReceiptIncludedKext(Str(k, "BundleIdentifier"), Str(k, "BundleVersion"), Str(k, "TeamIdentifier"), Str(k, "CDHash"),
                    EnumValue<KextConsentSource>(k, "ConsentSource"), Str(k, "BundlePath"),
                    k.Get<PlistBoolean>("HasExecutable")?.Value ?? throw new KextReceiptFormatException("HasExecutable is not a boolean"));
            })],
            Excluded = [.. Array(d, "ExcludedKexts").Select(n =>
            {
                var k = Dict(n, "ExcludedKexts item");
                ExpectKeys(k, "excluded kext", ["BundleIdentifier", "BundleVersion", "BundlePath", "Reason", "Detail"]);
                return new ReceiptExcludedKext(Str(k, "BundleIdentifier"), Str(k, "BundleVersion"), Str(k, "BundlePath"),
                    EnumValue<KextExclusionCode>(k, "Reason"), Str(k, "Detail"));
            })],
        };
        if (!receipt.ToBytes().AsSpan().SequenceEqual(bytes))
        {
            throw new KextReceiptFormatException("the bytes are not the canonical encoding of the receipt they hold");
        }
        return receipt;
    }

    /// <summary>Equal when the canonical bytes are equal.</summary>
    public bool Equals(KextReceipt? other) => other is not null && ToBytes().AsSpan().SequenceEqual(other.ToBytes());

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(AuxKcMeasurement, Included.Length, Excluded.Length);

    private PlistDictionary ToPlist() => new(
        ("KextReceiptVersion", new PlistInteger(FormatVersion)),
        ("AuxKCSHA384", new PlistString(AuxKcMeasurement.ToString())),
        ("UAKLSHA384", new PlistString(UaklHash.ToString())),
        ("MacOSRelease", new PlistString(Release.Key)),
        ("Architecture", new PlistString(ArchitectureName(Architecture))),
        ("SIPConfiguration", new PlistInteger((ushort)Sip)),
        ("IncludedKexts", new PlistArray(Included.Select(k => (PlistNode)new PlistDictionary(
            ("BundleIdentifier", new PlistString(k.BundleId)),
            ("BundleVersion", new PlistString(k.Version)),
            ("TeamIdentifier", new PlistString(k.TeamId)),
            ("CDHash", new PlistString(k.CdHash)),
            ("ConsentSource", new PlistString(k.Consent.ToString())),
            ("BundlePath", new PlistString(k.BundlePath)),
            ("HasExecutable", PlistBoolean.Of(k.HasExecutable)))))),
        ("ExcludedKexts", new PlistArray(Excluded.Select(k => (PlistNode)new PlistDictionary(
            ("BundleIdentifier", new PlistString(k.BundleId)),
            ("BundleVersion", new PlistString(k.Version)),
            ("BundlePath", new PlistString(k.BundlePath)),
            ("Reason", new PlistString(k.Reason.ToString())),
            ("Detail", new PlistString(k.Detail)))))));

    private static void ExpectKeys(PlistDictionary d, string what, string[] keys)
    {
        if (!d.Keys.SequenceEqual(keys, StringComparer.Ordinal))
        {
            throw new KextReceiptFormatException($"the {what} keys are [{string.Join(", ", d.Keys)}], expected [{string.Join(", ", keys)}]");
        }
    }

    private static string Str(PlistDictionary d, string key) =>
        d.Get<PlistString>(key)?.Value ?? throw new KextReceiptFormatException($"{key} is not a string");

    private static long Int(PlistDictionary d, string key) =>
        d.Get<PlistInteger>(key)?.AsInt64 ?? throw new KextReceiptFormatException($"{key} is not an integer");

    private static IEnumerable<PlistNode> Array(PlistDictionary d, string key) =>
        d.Get<PlistArray>(key) ?? throw new KextReceiptFormatException($"{key} is not an array");

    private static PlistDictionary Dict(PlistNode n, string what) =>
        n as PlistDictionary ?? throw new KextReceiptFormatException($"an {what} is not a dictionary");

    private static T EnumValue<T>(PlistDictionary d, string key) where T : struct, Enum
    {
        var text = Str(d, key);
        return System.Array.IndexOf(Enum.GetNames<T>(), text) >= 0 ? Enum.Parse<T>(text) : throw new KextReceiptFormatException($"{key} '{text}' is not a known value");
    }

    private static Sha384Digest Digest(PlistDictionary d, string key)
    {
        var text = Str(d, key);
        if (text.Length != 2 * Sha384Digest.Length || !text.All(c => c is (>= '0' and <= '9') or (>= 'a' and <= 'f')))
        {
            throw new KextReceiptFormatException($"{key} is not 96 lowercase hex digits");
        }
        return Sha384Digest.FromBytes(Convert.FromHexString(text));
    }
}

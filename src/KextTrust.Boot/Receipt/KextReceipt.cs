using KextTrust.Machine;
using System.Collections.Frozen;
using System.Collections.Immutable;
using System.Globalization;
using KextTrust.Boot.KernelManagement;
using KextTrust.Boot.Policy;
using KextTrust.Consent.Policy;
using KextTrust.Formats;
using KextTrust.Formats.Image4;
using KextTrust.Formats.PropertyLists;
using KextTrust.Kexts.Kpi;
using KextTrust.Kexts.Trust;

namespace KextTrust.Boot.Receipt;

/// <summary>A kext the AuxKC includes, as the receipt lists it.</summary>
/// <param name="BundleId">CFBundleIdentifier (also the LC_FILESET_ENTRY id).</param>
/// <param name="Version">CFBundleVersion.</param>
/// <param name="TeamId">Signing team; empty when unsigned or ad hoc.</param>
/// <param name="CdHash">cdhash as lowercase hex; empty when unsigned.</param>
/// <param name="Consent">How the UAKL entry was approved.</param>
/// <param name="BundlePath">Where the bundle was on the Mac.</param>
/// <param name="HasExecutable">False for a codeless kext (no fileset entry).</param>
public sealed record ReceiptIncludedKext(string BundleId, string Version, string TeamId, string CdHash, ConsentSource Consent, string BundlePath, bool HasExecutable);

/// <summary>A candidate kext the AuxKC left out, and why.</summary>
/// <param name="BundleId">CFBundleIdentifier; empty when unreadable.</param>
/// <param name="Version">CFBundleVersion; empty when unreadable.</param>
/// <param name="BundlePath">Where the bundle was on the Mac.</param>
/// <param name="Reason">The stable code of kmd's failed check (the one vocabulary <c>why</c>, iBoot and the audit share).</param>
/// <param name="Detail">The explanation from kmd's trace.</param>
public sealed record ReceiptExcludedKext(string BundleId, string Version, string BundlePath, TrustCode Reason, string Detail)
{
    /// <summary>The <c>KMErrorDomain</c> code of <see cref="Reason"/> where kmutil has one (71: missing architecture), else null.</summary>
    public int? KMErrorCode => Reason.KMErrorCode();
}

/// <summary>Receipt bytes are not a canonical receipt: names the file, the byte offset where the rule was broken and the rule.</summary>
public sealed class KextReceiptFormatException : KextTrustFormatException
{
    /// <inheritdoc/>
    public override string ErrorCode => "ReceiptMalformed";

    /// <summary>Creates the exception for <paramref name="source"/> at byte <paramref name="offset"/> (−1 when not applicable).</summary>
    public KextReceiptFormatException(string? source, long offset, string rule, Exception? inner = null)
        : base("kext receipt", source, offset, rule, inner)
    {
    }
}

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
/// <c>TeamIdentifier</c>, <c>CDHash</c>, <c>ConsentSource</c> (the <see cref="ConsentSource"/> name of the UAKL entry that
/// authorized it, e.g. "User", "Mdm", "Grandfathered"), <c>BundlePath</c>, <c>HasExecutable</c>) and
/// <c>ExcludedKexts</c> (array, in kmd's candidate order, of dictionaries <c>BundleIdentifier</c>, <c>BundleVersion</c>,
/// <c>BundlePath</c>, <c>Reason</c> (the <see cref="TrustCode"/> name, e.g. "MissingArchitecture"), <c>Detail</c>). No
/// timestamps: the same build gives the same bytes. Receipts written before the codes were shared name five reasons
/// differently ("Banned", "NotInUakl", "KpiUnsupported", "MissingDependency", "DependencyVersion"); they are read as the
/// same codes (<see cref="TrustCode.ExcludeListed"/>, <see cref="TrustCode.NotApproved"/>, <see cref="TrustCode.UnsupportedKpi"/>,
/// <see cref="TrustCode.MissingLibrary"/>, <see cref="TrustCode.LibraryVersion"/>) and re-encode with their old names, so
/// their bytes and hash keep one meaning.
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

    /// <summary>The canonical bytes (the file kmd writes).</summary>
    public byte[] ToBytes() => PropertyList.ToXml(ToPlist());

    /// <summary>Read from a receipt that names reasons as before the shared vocabulary: re-encoded the same way.</summary>
    private bool LegacyReasonNames { get; init; }

    /// <summary>The reason names older receipts wrote for today's codes (the same fact, renamed when the codes were shared).</summary>
    private static readonly FrozenDictionary<TrustCode, string> LegacyNames = new Dictionary<TrustCode, string>
    {
        [TrustCode.ExcludeListed] = "Banned",
        [TrustCode.NotApproved] = "NotInUakl",
        [TrustCode.UnsupportedKpi] = "KpiUnsupported",
        [TrustCode.MissingLibrary] = "MissingDependency",
        [TrustCode.LibraryVersion] = "DependencyVersion",
    }.ToFrozenDictionary();

    private string ReasonName(TrustCode reason) => LegacyReasonNames && LegacyNames.TryGetValue(reason, out var old) ? old : reason.ToString();

    /// <summary>SHA-384 of <see cref="ToBytes"/>: the value for <c>auxr</c>.</summary>
    public Sha384Digest ComputeHash() => Sha384Digest.Compute(ToBytes());

    /// <summary>Parses receipt bytes strictly; <paramref name="source"/> (the file's path, or a label) is named by every error.</summary>
    /// <exception cref="KextReceiptFormatException">
    /// Not a property list, wrong keys or types, unknown values, or not canonical; with the byte offset of the value
    /// (or of the first byte that differs from the canonical encoding).
    /// </exception>
    public static KextReceipt FromBytes(ReadOnlySpan<byte> bytes, string source)
    {
        ArgumentNullException.ThrowIfNull(source);
        PlistNode root;
        PlistOffsets at;
        try
        {
            root = PropertyList.ParseXml(bytes, source, out at);
        }
        catch (KextTrustFormatException e)
        {
            throw new KextReceiptFormatException(source, e.Offset, $"not an XML property list: {e.Rule}", e);
        }
        var r = new Fields(source, at);
        if (root is not PlistDictionary d)
        {
            throw new KextReceiptFormatException(source, at.Root, "the root is not a dictionary");
        }
        r.ExpectKeys(d, "receipt", ["KextReceiptVersion", "AuxKCSHA384", "UAKLSHA384", "MacOSRelease", "Architecture", "SIPConfiguration", "IncludedKexts", "ExcludedKexts"]);
        if (r.Int(d, "KextReceiptVersion") != FormatVersion)
        {
            throw r.Fail(d, "KextReceiptVersion", $"KextReceiptVersion is not {FormatVersion}");
        }
        var releaseKey = r.Str(d, "MacOSRelease");
        var release = MacOSRelease.All.FirstOrDefault(x => x.Key == releaseKey) ?? throw r.Fail(d, "MacOSRelease", $"unknown MacOSRelease '{releaseKey}'");
        var archName = r.Str(d, "Architecture");
        if (!KextArchitectures.TryParseSliceName(archName, out var arch))
        {
            throw r.Fail(d, "Architecture", $"unknown Architecture '{archName}'");
        }
        var sip = r.Int(d, "SIPConfiguration");
        if (sip is < 0 or > ushort.MaxValue)
        {
            throw r.Fail(d, "SIPConfiguration", "SIPConfiguration is not a 16-bit mask");
        }
        var receipt = new KextReceipt
        {
            AuxKcMeasurement = r.Digest(d, "AuxKCSHA384"),
            UaklHash = r.Digest(d, "UAKLSHA384"),
            Release = release,
            Architecture = arch,
            Sip = (CsrConfig)(ushort)sip,
            Included = [.. r.Items(d, "IncludedKexts", "included kext", ["BundleIdentifier", "BundleVersion", "TeamIdentifier", "CDHash", "ConsentSource", "BundlePath", "HasExecutable"], k =>
                new ReceiptIncludedKext(r.Str(k, "BundleIdentifier"), r.Str(k, "BundleVersion"), r.Str(k, "TeamIdentifier"), r.Str(k, "CDHash"),
                    r.EnumValue<ConsentSource>(k, "ConsentSource"), r.Str(k, "BundlePath"),
                    k.Get<PlistBoolean>("HasExecutable")?.Value ?? throw r.Fail(k, "HasExecutable", "HasExecutable is not a boolean")))],
            Excluded = [.. r.Items(d, "ExcludedKexts", "excluded kext", ["BundleIdentifier", "BundleVersion", "BundlePath", "Reason", "Detail"], k =>
                new ReceiptExcludedKext(r.Str(k, "BundleIdentifier"), r.Str(k, "BundleVersion"), r.Str(k, "BundlePath"),
                    r.Reason(k), r.Str(k, "Detail")))],
        };
        receipt = receipt with { LegacyReasonNames = r.LegacyReasonNames };
        var canonical = receipt.ToBytes().AsSpan();
        var differs = canonical.CommonPrefixLength(bytes);
        if (differs != canonical.Length || differs != bytes.Length)
        {
            throw new KextReceiptFormatException(source, differs, "the bytes are not the canonical encoding of the receipt they hold");
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
        ("Architecture", new PlistString(Architecture.SliceName())),
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
            ("Reason", new PlistString(ReasonName(k.Reason))),
            ("Detail", new PlistString(k.Detail)))))));

    /// <summary>Reads typed values out of the parsed receipt; every failure names the source and the value's offset.</summary>
    private sealed class Fields(string source, PlistOffsets at)
    {
        public KextReceiptFormatException Fail(PlistDictionary d, string key, string rule) => new(source, at.Of(d, key), rule);

        public void ExpectKeys(PlistDictionary d, string what, string[] keys)
        {
            var differs = d.Keys.Zip(keys).TakeWhile(p => p.First == p.Second).Count();
            if (differs != d.Count || differs != keys.Length)
            {
                // The first key out of place (or, when only a key is missing at the end, the dictionary itself).
                var offset = differs < d.Count ? at.Of(d, d[differs].Key) : at.Of(d);
                throw new KextReceiptFormatException(source, offset,
                    $"the {what} keys are [{string.Join(", ", d.Keys)}], expected [{string.Join(", ", keys)}]");
            }
        }

        public string Str(PlistDictionary d, string key) => d.Get<PlistString>(key)?.Value ?? throw Fail(d, key, $"{key} is not a string");

        public long Int(PlistDictionary d, string key) => d.Get<PlistInteger>(key)?.AsInt64 ?? throw Fail(d, key, $"{key} is not an integer");

        /// <summary>The dictionaries of array <paramref name="key"/>, each with exactly <paramref name="keys"/>, read by <paramref name="read"/>.</summary>
        public IEnumerable<T> Items<T>(PlistDictionary d, string key, string what, string[] keys, Func<PlistDictionary, T> read)
        {
            var array = d.Get<PlistArray>(key) ?? throw Fail(d, key, $"{key} is not an array");
            for (var i = 0; i < array.Count; i++)
            {
                var k = array[i] as PlistDictionary ?? throw new KextReceiptFormatException(source, at.Of(array, i), $"an {key} item is not a dictionary");
                ExpectKeys(k, what, keys);
                yield return read(k);
            }
        }

        /// <summary>True once a reason was read by its name in an older receipt.</summary>
        public bool LegacyReasonNames { get; private set; }

        public TrustCode Reason(PlistDictionary d)
        {
            var text = Str(d, "Reason");
            if (LegacyNames.FirstOrDefault(n => n.Value == text) is { Value: not null } legacy)
            {
                LegacyReasonNames = true;
                return legacy.Key;
            }
            return EnumValue<TrustCode>(d, "Reason");
        }

        public T EnumValue<T>(PlistDictionary d, string key) where T : struct, Enum
        {
            var text = Str(d, key);
            return System.Array.IndexOf(Enum.GetNames<T>(), text) >= 0 ? Enum.Parse<T>(text) : throw Fail(d, key, $"{key} '{text}' is not a known value");
        }

        public Sha384Digest Digest(PlistDictionary d, string key)
        {
            var text = Str(d, key);
            if (text.Length != 2 * Sha384Digest.Length || !text.All(c => c is (>= '0' and <= '9') or (>= 'a' and <= 'f')))
            {
                throw Fail(d, key, $"{key} is not 96 lowercase hex digits");
            }
            return Sha384Digest.FromBytes(Convert.FromHexString(text));
        }
    }
}

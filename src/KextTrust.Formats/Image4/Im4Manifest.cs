using System.Formats.Asn1;

namespace KextTrust.Formats.Image4;

/// <summary>The properties of one object in a manifest body (e.g. <c>auxk</c> → { <c>DGST</c>, … }).</summary>
public sealed record Im4ObjectProperties
{
    /// <summary>Creates the entry; <see cref="ArgumentException"/> for an invalid 4CC or the reserved "MANP".</summary>
    public Im4ObjectProperties(string fourCC, Im4PropertySet properties)
    {
        FourCC.Validate(fourCC, nameof(fourCC));
        if (fourCC == Im4ManifestBody.ManifestPropertiesTag)
        {
            throw new ArgumentException("'MANP' is the manifest's own property set, not an object", nameof(fourCC));
        }
        ObjectFourCC = fourCC;
        Properties = properties ?? throw new ArgumentNullException(nameof(properties));
    }

    /// <summary>The object's 4CC (an IM4P type such as <c>auxk</c> or <c>krnl</c>).</summary>
    public string ObjectFourCC { get; }

    /// <summary>The object's properties.</summary>
    public Im4PropertySet Properties { get; }
}

/// <summary>
/// The signed part of an IM4M: <c>SET { [PRIVATE 'MANB'] { SEQUENCE { "MANB", SET { [PRIVATE 'MANP']
/// { SEQUENCE { "MANP", SET { props } } }, [PRIVATE obj] { SEQUENCE { obj, SET { props } } } … } } } }</c>;
/// every private 4CC tag is explicit (it wraps the SEQUENCE), as in Apple's files.
/// Objects are unique by 4CC and kept in DER order. Value equality.
/// </summary>
public sealed class Im4ManifestBody : IEquatable<Im4ManifestBody>
{
    internal const string ManifestBodyTag = "MANB";
    internal const string ManifestPropertiesTag = "MANP";

    private readonly Im4ObjectProperties[] _objects;

    /// <summary>Creates the body; <see cref="ArgumentException"/> if two objects share a 4CC.</summary>
    public Im4ManifestBody(Im4PropertySet manifestProperties, IEnumerable<Im4ObjectProperties>? objects = null)
    {
        ManifestProperties = manifestProperties ?? throw new ArgumentNullException(nameof(manifestProperties));
        var list = (objects ?? []).ToArray();
        Array.Sort(list, static (a, b) => FourCC.ToUInt32(a.ObjectFourCC).CompareTo(FourCC.ToUInt32(b.ObjectFourCC)));
        for (var i = 1; i < list.Length; i++)
        {
            if (list[i].ObjectFourCC == list[i - 1].ObjectFourCC)
            {
                throw new ArgumentException($"duplicate object '{list[i].ObjectFourCC}'", nameof(objects));
            }
        }
        _objects = list;
    }

    /// <summary>The manifest's own properties (MANP: ECID, lpnh, …).</summary>
    public Im4PropertySet ManifestProperties { get; }

    /// <summary>The objects' property sets, in DER order.</summary>
    public IReadOnlyList<Im4ObjectProperties> Objects => _objects;

    /// <summary>The properties of the object with this 4CC, or null.</summary>
    public Im4PropertySet? FindObject(string fourCC) =>
        _objects.FirstOrDefault(o => o.ObjectFourCC == fourCC)?.Properties;

    /// <summary>The DER of the body SET — the exact bytes a signature covers.</summary>
    public byte[] Encode()
    {
        var writer = new AsnWriter(AsnEncodingRules.DER);
        Write(writer);
        return writer.Encode();
    }

    internal void Write(AsnWriter writer)
    {
        writer.PushSetOf();
        Im4Codec.PushTagged(writer, ManifestBodyTag);
        writer.PushSetOf();
        Im4Codec.WriteTaggedSet(writer, ManifestPropertiesTag, ManifestProperties);
        foreach (var o in _objects)
        {
            Im4Codec.WriteTaggedSet(writer, o.ObjectFourCC, o.Properties);
        }
        writer.PopSetOf();
        Im4Codec.PopTagged(writer, ManifestBodyTag);
        writer.PopSetOf();
    }

    /// <summary>Decodes a body SET on its own (as signed), strictly.</summary>
    public static Im4ManifestBody FromBytes(ReadOnlyMemory<byte> der, string? sourceName = null) =>
        Im4Codec.DecodeTop(der, sourceName, Read);

    internal static Im4ManifestBody Read(DerCursor cursor)
    {
        var outer = cursor.ReadSet("manifest body SET");
        var outerCursor = cursor.Enter(outer);
        var (_, manbElement, manb) = ReadExpectedEntry(outerCursor, ManifestBodyTag, "manifest body");
        outerCursor.ExpectEnd("the manifest body SET (exactly one MANB)");

        var setElement = manb.ReadSet("MANB SET");
        manb.ExpectEnd("MANB");
        var entries = manb.Enter(setElement);
        Im4PropertySet? manp = null;
        var objects = new List<Im4ObjectProperties>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        DerElement? previous = null;
        while (entries.HasMore)
        {
            var (fourcc, element, inner) = Im4Codec.ReadTaggedEntry(entries, "MANB entry");
            if (!seen.Add(fourcc))
            {
                throw cursor.Error(element.Offset, $"MANB: duplicate entry '{fourcc}'");
            }
            if (previous is { } p)
            {
                entries.CheckSetOrder(p, element, "MANB");
            }
            previous = element;
            var properties = Im4Codec.ReadPropertySet(inner, $"'{fourcc}' properties");
            inner.ExpectEnd($"MANB entry '{fourcc}'");
            if (fourcc == ManifestPropertiesTag)
            {
                manp = properties;
            }
            else
            {
                objects.Add(new Im4ObjectProperties(fourcc, properties));
            }
        }
        if (manp is null)
        {
            throw cursor.Error(manbElement.Offset, "MANB holds no MANP (manifest properties)");
        }
        return new Im4ManifestBody(manp, objects);
    }

    private static (string, DerElement, DerCursor) ReadExpectedEntry(DerCursor cursor, string expected, string what)
    {
        var start = cursor.Position;
        var entry = Im4Codec.ReadTaggedEntry(cursor, what);
        if (entry.FourCC != expected)
        {
            throw cursor.Error(start, $"{what}: expected '{expected}', found '{entry.FourCC}'");
        }
        return entry;
    }

    /// <inheritdoc/>
    public bool Equals(Im4ManifestBody? other) => other is not null && Encode().AsSpan().SequenceEqual(other.Encode());

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as Im4ManifestBody);

    /// <inheritdoc/>
    public override int GetHashCode() => ManifestProperties.GetHashCode();
}

/// <summary>
/// An Image4 manifest: <c>SEQUENCE { "IM4M", INTEGER 0, body SET, OCTET STRING signature,
/// SEQUENCE { Certificate … } }</c>. Keeps the exact DER bytes of the body SET
/// (<see cref="BodyBytes"/>) so that a signature is checked over what was signed.
/// Equality is equality of the DER encodings.
/// </summary>
public sealed record Im4Manifest
{
    /// <summary>The magic string.</summary>
    public const string Magic = "IM4M";

    private readonly byte[] _bodyBytes;
    private readonly byte[] _signature;
    private readonly ReadOnlyMemory<byte>[] _certificates;
    private readonly byte[] _encoded;

    private Im4Manifest(Im4ManifestBody body, byte[] bodyBytes, byte[] signature, ReadOnlyMemory<byte>[] certificates)
    {
        Body = body;
        _bodyBytes = bodyBytes;
        _signature = signature;
        _certificates = certificates;
        var writer = new AsnWriter(AsnEncodingRules.DER);
        writer.PushSequence();
        writer.WriteCharacterString(UniversalTagNumber.IA5String, Magic);
        writer.WriteInteger(0);
        writer.WriteEncodedValue(_bodyBytes);
        writer.WriteOctetString(_signature);
        writer.PushSequence();
        foreach (var c in _certificates)
        {
            writer.WriteEncodedValue(c.Span);
        }
        writer.PopSequence();
        writer.PopSequence();
        _encoded = writer.Encode();
    }

    /// <summary>
    /// Assembles a manifest from a body, the signature over <c>body.Encode()</c> and the certificate
    /// chain (each a DER X.509 certificate, i.e. one SEQUENCE element).
    /// </summary>
    public static Im4Manifest Create(Im4ManifestBody body, ReadOnlySpan<byte> signature, IEnumerable<ReadOnlyMemory<byte>> certificateChain)
    {
        ArgumentNullException.ThrowIfNull(body);
        ArgumentNullException.ThrowIfNull(certificateChain);
        var certificates = certificateChain.Select(c => (ReadOnlyMemory<byte>)c.ToArray()).ToArray();
        foreach (var c in certificates)
        {
            Im4Codec.ValidateSingleElement(c.Span, Asn1Tag.Sequence, nameof(certificateChain));
        }
        return new Im4Manifest(body, body.Encode(), signature.ToArray(), certificates);
    }

    /// <summary>Decodes a DER IM4M strictly; <see cref="Image4FormatException"/> on any defect.</summary>
    public static Im4Manifest FromBytes(ReadOnlyMemory<byte> der, string? sourceName = null) =>
        Im4Codec.DecodeTop(der, sourceName, Read);

    internal static Im4Manifest Read(DerCursor cursor)
    {
        var sequence = cursor.ReadSequence("IM4M");
        var c = cursor.Enter(sequence);
        c.ExpectMagic(Magic);
        var versionOffset = c.Position;
        var version = c.ReadUInt64("IM4M version");
        if (version != 0)
        {
            throw c.Error(versionOffset, $"IM4M version must be 0, found {version}");
        }
        var body = Im4ManifestBody.Read(c.Fork());
        var bodyElement = c.Read(Asn1Tag.SetOf, "manifest body SET");
        var bodyBytes = c.Encoded(bodyElement).ToArray();
        var signature = c.ReadOctetString("IM4M signature").ToArray();
        var chainElement = c.ReadSequence("IM4M certificate chain");
        var chain = c.Enter(chainElement);
        var certificates = new List<ReadOnlyMemory<byte>>();
        while (chain.HasMore)
        {
            var cert = chain.ReadSequence("certificate");
            certificates.Add(chain.Encoded(cert).ToArray());
        }
        c.ExpectEnd("IM4M");
        return new Im4Manifest(body, bodyBytes, signature, [.. certificates]);
    }

    /// <summary>Always 0.</summary>
    public int Version => 0;

    /// <summary>The decoded body.</summary>
    public Im4ManifestBody Body { get; }

    /// <summary>Shortcut for <c>Body.ManifestProperties</c> (MANP).</summary>
    public Im4PropertySet ManifestProperties => Body.ManifestProperties;

    /// <summary>The exact DER of the body SET (tag, length and content) that the signature covers.</summary>
    public ReadOnlyMemory<byte> BodyBytes => _bodyBytes;

    /// <summary>The signature bytes.</summary>
    public ReadOnlyMemory<byte> Signature => _signature;

    /// <summary>The DER X.509 certificates, in order.</summary>
    public IReadOnlyList<ReadOnlyMemory<byte>> CertificateChain => _certificates;

    /// <summary>The DER encoding of the whole IM4M.</summary>
    public byte[] Encode() => (byte[])_encoded.Clone();

    internal ReadOnlySpan<byte> EncodedSpan => _encoded;

    /// <inheritdoc/>
    public bool Equals(Im4Manifest? other) => other is not null && _encoded.AsSpan().SequenceEqual(other._encoded);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(_encoded.Length, Body.GetHashCode());
}

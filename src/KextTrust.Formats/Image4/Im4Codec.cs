using System.Formats.Asn1;

namespace KextTrust.Formats.Image4;

/// <summary>Shared strict decoding of the Image4 building blocks (4CC-tagged entries, property sets).</summary>
internal static class Im4Codec
{
    /// <summary>
    /// Reads <c>[PRIVATE fourcc] EXPLICIT SEQUENCE { IA5String fourcc, … }</c> (Apple's layout: the private,
    /// constructed tag wraps a universal SEQUENCE, as <c>openssl asn1parse</c> shows on every real IM4M) and
    /// returns the 4CC, the tagged element and a cursor over the SEQUENCE positioned after the inner IA5String.
    /// </summary>
    public static (string FourCC, DerElement Element, DerCursor Inner) ReadTaggedEntry(DerCursor cursor, string what)
    {
        var start = cursor.Position;
        var element = cursor.Read(what);
        var tag = element.Tag;
        if (tag.TagClass != TagClass.Private || !tag.IsConstructed)
        {
            throw cursor.Error(start, $"{what}: expected a constructed PRIVATE 4CC tag, found {DerCursor.Describe(tag)}");
        }
        var fourcc = FourCC.FromUInt32((uint)tag.TagValue)
            ?? throw cursor.Error(start, $"{what}: tag number 0x{tag.TagValue:x} is not a four-character code");
        var wrapper = cursor.Enter(element);
        var sequence = wrapper.ReadSequence($"{what} '{fourcc}' (the SEQUENCE inside its explicit tag)");
        wrapper.ExpectEnd($"{what} '{fourcc}' (exactly one SEQUENCE inside its explicit tag)");
        var inner = wrapper.Enter(sequence);
        var nameOffset = inner.Position;
        var name = inner.ReadIA5String($"{what} '{fourcc}' name");
        if (name != fourcc)
        {
            throw cursor.Error(nameOffset, $"{what}: inner 4CC \"{DerCursor.Printable(name)}\" differs from its tag '{fourcc}'");
        }
        return (fourcc, element, inner);
    }

    /// <summary>Reads a property value: INTEGER (u64), BOOLEAN, OCTET STRING or IA5String.</summary>
    public static Im4Value ReadValue(DerCursor cursor, string what)
    {
        var element = cursor.Read(what);
        var tag = element.Tag;
        if (tag.TagClass == TagClass.Universal && !tag.IsConstructed)
        {
            switch ((UniversalTagNumber)tag.TagValue)
            {
                case UniversalTagNumber.Integer:
                    return new Im4Integer(cursor.DecodeUInt64(element, what));
                case UniversalTagNumber.Boolean:
                    return new Im4Boolean(cursor.DecodeBoolean(element, what));
                case UniversalTagNumber.OctetString:
                    return new Im4OctetString(cursor.DecodeOctetString(element, what).Span);
                case UniversalTagNumber.IA5String:
                    return new Im4String(cursor.DecodeIA5String(element, what));
            }
        }
        throw cursor.Error(element.Offset,
            $"{what}: unsupported value type {DerCursor.Describe(tag)} (INTEGER, BOOLEAN, OCTET STRING or IA5String)");
    }

    /// <summary>Reads <c>SET { Property … }</c>: unique 4CCs, DER order, each property well formed.</summary>
    public static Im4PropertySet ReadPropertySet(DerCursor cursor, string what)
    {
        var set = cursor.ReadSet(what);
        var inner = cursor.Enter(set);
        var properties = new List<Im4Property>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        DerElement? previous = null;
        while (inner.HasMore)
        {
            var (fourcc, element, body) = ReadTaggedEntry(inner, $"{what} property");
            if (!seen.Add(fourcc))
            {
                throw cursor.Error(element.Offset, $"{what}: duplicate property '{fourcc}'");
            }
            if (previous is { } p)
            {
                inner.CheckSetOrder(p, element, what);
            }
            previous = element;
            var value = ReadValue(body, $"{what} property '{fourcc}' value");
            body.ExpectEnd($"{what} property '{fourcc}'");
            properties.Add(new Im4Property(fourcc, value));
        }
        return new Im4PropertySet(properties);
    }

    /// <summary>Writes <c>[PRIVATE fourcc] EXPLICIT SEQUENCE { IA5String fourcc, SET { properties } }</c>.</summary>
    public static void WriteTaggedSet(AsnWriter writer, string fourcc, Im4PropertySet properties)
    {
        PushTagged(writer, fourcc);
        properties.WriteSet(writer);
        PopTagged(writer, fourcc);
    }

    /// <summary>
    /// Opens <c>[PRIVATE fourcc] EXPLICIT SEQUENCE { IA5String fourcc, …</c>: the private tag is explicit, so it
    /// wraps the universal SEQUENCE instead of replacing it (Apple's encoding, read so by PyIMG4, img4tool and
    /// libDERImg4). Close with <see cref="PopTagged"/>.
    /// </summary>
    public static void PushTagged(AsnWriter writer, string fourcc)
    {
        writer.PushSequence(FourCC.ToTag(fourcc));
        writer.PushSequence();
        writer.WriteCharacterString(UniversalTagNumber.IA5String, fourcc);
    }

    /// <summary>Closes what <see cref="PushTagged"/> opened.</summary>
    public static void PopTagged(AsnWriter writer, string fourcc)
    {
        writer.PopSequence();
        writer.PopSequence(FourCC.ToTag(fourcc));
    }

    /// <summary>Runs a decoder over a whole input, requiring that nothing follows the top element.</summary>
    public static T DecodeTop<T>(ReadOnlyMemory<byte> der, string? sourceName, Func<DerCursor, T> decode)
    {
        var cursor = new DerCursor(der, sourceName);
        var result = decode(cursor);
        if (cursor.HasMore)
        {
            throw cursor.Error(cursor.Position, $"{der.Length - cursor.Position} trailing byte(s) after the top-level element");
        }
        return result;
    }

    public static void ValidateIA5(string text, string paramName)
    {
        ArgumentNullException.ThrowIfNull(text, paramName);
        foreach (var c in text)
        {
            if (c > 0x7F)
            {
                throw new ArgumentException("an IA5String holds 7-bit ASCII only", paramName);
            }
        }
    }

    /// <summary>Fails unless <paramref name="der"/> is exactly one DER element with the given tag.</summary>
    public static void ValidateSingleElement(ReadOnlySpan<byte> der, Asn1Tag expected, string paramName)
    {
        try
        {
            var tag = AsnDecoder.ReadEncodedValue(der, AsnEncodingRules.DER, out _, out _, out var consumed);
            if (tag == expected && consumed == der.Length)
            {
                return;
            }
        }
        catch (AsnContentException)
        {
        }
        throw new ArgumentException($"expected exactly one DER element tagged {DerCursor.Describe(expected)}", paramName);
    }
}

using System.Formats.Asn1;

namespace KextTrust.Formats.Image4;

/// <summary>
/// Four-character codes as used by Image4: four printable ASCII characters (0x20–0x7E), read as a
/// big-endian u32, which is also the tag number of the PRIVATE, constructed tag of a property
/// (<c>[PRIVATE 'ECID']</c> is encoded <c>ff 84 aa 8d 92 44</c>).
/// </summary>
public static class FourCC
{
    /// <summary>True if <paramref name="fourcc"/> is exactly four printable ASCII characters.</summary>
    public static bool IsValid(string? fourcc)
    {
        if (fourcc is null || fourcc.Length != 4)
        {
            return false;
        }
        foreach (var c in fourcc)
        {
            if (c < 0x20 || c > 0x7E)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>Throws <see cref="ArgumentException"/> unless the code is valid.</summary>
    internal static string Validate(string fourcc, string paramName)
    {
        if (!IsValid(fourcc))
        {
            throw new ArgumentException($"'{fourcc}' is not a four-character code of printable ASCII", paramName);
        }
        return fourcc;
    }

    /// <summary>The code as a big-endian u32 ("MANB" → 0x4D414E42).</summary>
    internal static uint ToUInt32(string fourcc)
    {
        Validate(fourcc, nameof(fourcc));
        return ((uint)fourcc[0] << 24) | ((uint)fourcc[1] << 16) | ((uint)fourcc[2] << 8) | fourcc[3];
    }

    /// <summary>The code for a big-endian u32, or null if any byte is not printable ASCII.</summary>
    internal static string? FromUInt32(uint value)
    {
        Span<char> chars = stackalloc char[4];
        for (var i = 0; i < 4; i++)
        {
            var b = (byte)(value >> (24 - (8 * i)));
            if (b < 0x20 || b > 0x7E)
            {
                return null;
            }
            chars[i] = (char)b;
        }
        return new string(chars);
    }

    /// <summary>The PRIVATE, constructed ASN.1 tag whose number is the code as a big-endian u32.</summary>
    internal static Asn1Tag ToTag(string fourcc) =>
        // Printable ASCII keeps the top bit clear, so the u32 always fits Asn1Tag's int tag number.
        new(TagClass.Private, checked((int)ToUInt32(fourcc)), isConstructed: true);

    /// <summary>The DER identifier octets of <see cref="ToTag"/> (0xFF then base-128 of the u32).</summary>
    internal static byte[] IdentifierOctets(string fourcc)
    {
        var tag = ToTag(fourcc);
        var buffer = new byte[tag.CalculateEncodedSize()];
        tag.Encode(buffer);
        return buffer;
    }
}

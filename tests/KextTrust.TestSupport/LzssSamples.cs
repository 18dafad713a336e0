using System.Buffers.Binary;

namespace KextTrust.TestSupport;

/// <summary>Apple <c>complzss</c> containers built by hand for tests (the stream bytes are given or all literals).</summary>
public static class LzssSamples
{
    /// <summary>A container whose stream stores <paramref name="plain"/> as literals only (flag byte 0xFF before each 8).</summary>
    public static byte[] Container(byte[] plain)
    {
        var stream = new List<byte>();
        for (var i = 0; i < plain.Length; i += 8)
        {
            var n = Math.Min(8, plain.Length - i);
            stream.Add((byte)((1 << n) - 1));
            stream.AddRange(plain.AsSpan(i, n).ToArray());
        }
        return Container([.. stream], plain);
    }

    /// <summary>A container around <paramref name="stream"/>, declaring <paramref name="plain"/>'s size and Adler-32.</summary>
    public static byte[] Container(byte[] stream, byte[] plain, uint? adler = null, uint? declaredSize = null, uint? compressedSize = null)
    {
        var c = new byte[0x180 + stream.Length];
        "complzss"u8.CopyTo(c);
        BinaryPrimitives.WriteUInt32BigEndian(c.AsSpan(8), adler ?? Adler32(plain));
        BinaryPrimitives.WriteUInt32BigEndian(c.AsSpan(12), declaredSize ?? (uint)plain.Length);
        BinaryPrimitives.WriteUInt32BigEndian(c.AsSpan(16), compressedSize ?? (uint)stream.Length);
        BinaryPrimitives.WriteUInt32BigEndian(c.AsSpan(20), 1);
        stream.CopyTo(c, 0x180);
        return c;
    }

    /// <summary>Adler-32 as RFC 1950 defines it, written out plainly (independently of the product's loop).</summary>
    public static uint Adler32(byte[] data)
    {
        ulong a = 1, b = 0;
        foreach (var x in data)
        {
            a = (a + x) % 65521;
            b = (b + a) % 65521;
        }
        return (uint)((b << 16) | a);
    }
}

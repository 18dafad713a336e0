using System.Buffers.Binary;

namespace KextTrust.Formats.Image4;

/// <summary>How an IM4P's payload bytes are stored.</summary>
public enum Im4PayloadEncoding
{
    /// <summary>Plain bytes.</summary>
    Raw,
    /// <summary>Apple's <c>complzss</c> container (LZSS, Okumura's parameters, Adler-32 of the output).</summary>
    Lzss,
    /// <summary>LZFSE (<c>bvx2</c>, <c>bvx1</c>, <c>bvxn</c> or <c>bvx-</c> blocks), or an IM4P whose compression info says LZFSE.</summary>
    Lzfse,
    /// <summary>Encrypted: the IM4P carries keybags (KBAG), so the bytes are AES-encrypted with a key only the device can unwrap.</summary>
    Encrypted,
}

/// <summary>Reads what an IM4P's payload is and decompresses the forms a maintained algorithm exists for here (LZSS).</summary>
public static class Im4PayloadData
{
    /// <summary>How the payload is stored: keybags mean encrypted (whatever follows); then the magic and the compression info.</summary>
    public static Im4PayloadEncoding EncodingOf(Im4Payload payload)
    {
        ArgumentNullException.ThrowIfNull(payload);
        if (payload.Keybags is not null)
        {
            return Im4PayloadEncoding.Encrypted;
        }
        var data = payload.Data.Span;
        if (data.StartsWith(ComplzssHeader.Magic))
        {
            return Im4PayloadEncoding.Lzss;
        }
        if (payload.Compression?.Algorithm == Im4Compression.Lzfse
            || data.StartsWith("bvx2"u8) || data.StartsWith("bvx1"u8) || data.StartsWith("bvxn"u8) || data.StartsWith("bvx-"u8))
        {
            return Im4PayloadEncoding.Lzfse;
        }
        return Im4PayloadEncoding.Raw;
    }
}

/// <summary>
/// Apple's <c>complzss</c> container as the kernelcache and iBoot images use it: <c>"comp" "lzss"</c>, then big-endian
/// u32 Adler-32 of the decompressed bytes, decompressed size, compressed size, a reserved u32, zero padding up to
/// offset 0x180, then the LZSS stream (4 KiB window pre-filled with spaces, matches of 3–18 bytes, flag bits least
/// significant first: 1 = literal byte, 0 = two bytes giving a 12-bit window position and a 4-bit length).
/// </summary>
public static class ComplzssHeader
{
    /// <summary>The container magic.</summary>
    public static ReadOnlySpan<byte> Magic => "complzss"u8;

    /// <summary>The header size: the stream starts here.</summary>
    internal const int HeaderSize = 0x180;

    /// <summary>The largest decompressed size accepted (1 GiB): a kernelcache is tens of MiB.</summary>
    internal const int MaxDecompressedSize = 1 << 30;

    private const int WindowSize = 4096, MaxMatch = 18, Threshold = 2;

    /// <summary>
    /// Decompresses a <c>complzss</c> container; <see cref="Image4FormatException"/> (offsets relative to the container)
    /// for a short header, sizes out of range, a stream that ends early or overruns the declared size, or an Adler-32
    /// that does not match. Never allocates more than the declared size, itself bounded.
    /// </summary>
    public static byte[] Decompress(ReadOnlySpan<byte> container, string? sourceName = null)
    {
        if (container.Length < HeaderSize || !container.StartsWith(Magic))
        {
            throw new Image4FormatException(sourceName, 0, $"complzss: a header of {HeaderSize} bytes starting \"complzss\" is required ({container.Length} bytes)");
        }
        var adler = BinaryPrimitives.ReadUInt32BigEndian(container[8..]);
        var decompressedSize = BinaryPrimitives.ReadUInt32BigEndian(container[12..]);
        var compressedSize = BinaryPrimitives.ReadUInt32BigEndian(container[16..]);
        if (decompressedSize > MaxDecompressedSize)
        {
            throw new Image4FormatException(sourceName, 12, $"complzss: decompressed size {decompressedSize} exceeds {MaxDecompressedSize}");
        }
        if (compressedSize > (uint)(container.Length - HeaderSize))
        {
            throw new Image4FormatException(sourceName, 16, $"complzss: compressed size {compressedSize} reaches past the end ({container.Length - HeaderSize} bytes after the header)");
        }
        var input = container.Slice(HeaderSize, (int)compressedSize);
        var output = new byte[decompressedSize];
        var written = Inflate(input, output, sourceName);
        if (written != output.Length)
        {
            throw new Image4FormatException(sourceName, HeaderSize + input.Length, $"complzss: the stream ends after {written} of {decompressedSize} declared bytes");
        }
        var actual = Adler32(output);
        if (actual != adler)
        {
            throw new Image4FormatException(sourceName, 8, $"complzss: Adler-32 of the output is 0x{actual:x8}, the header says 0x{adler:x8}");
        }
        return output;
    }

    private static int Inflate(ReadOnlySpan<byte> input, Span<byte> output, string? sourceName)
    {
        Span<byte> window = stackalloc byte[WindowSize];
        window[..(WindowSize - MaxMatch)].Fill((byte)' ');
        window[(WindowSize - MaxMatch)..].Clear();
        var r = WindowSize - MaxMatch;
        var inPos = 0;
        var outPos = 0;
        uint flags = 0;
        while (inPos < input.Length)
        {
            flags >>= 1;
            if ((flags & 0x100) == 0)
            {
                flags = input[inPos++] | 0xFF00u;
                if (inPos >= input.Length)
                {
                    break;
                }
            }
            int start, count;
            if ((flags & 1) != 0)
            {
                // A literal: written through the window like a one-byte match of itself.
                window[r] = input[inPos++];
                start = r;
                count = 1;
            }
            else
            {
                if (inPos + 1 >= input.Length)
                {
                    throw new Image4FormatException(sourceName, HeaderSize + inPos, "complzss: a match reference is cut short by the end of the stream");
                }
                int i = input[inPos++];
                int j = input[inPos++];
                start = i | ((j & 0xF0) << 4);
                count = (j & 0x0F) + Threshold + 1;
            }
            if (count > output.Length - outPos)
            {
                throw new Image4FormatException(sourceName, HeaderSize + inPos, $"complzss: the stream produces more than the declared {output.Length} bytes");
            }
            for (var k = 0; k < count; k++)
            {
                var c = window[(start + k) & (WindowSize - 1)];
                output[outPos++] = c;
                window[r] = c;
                r = (r + 1) & (WindowSize - 1);
            }
        }
        return outPos;
    }

    /// <summary>Adler-32 (RFC 1950 §8), the checksum Apple's header holds; a checksum, not a cryptographic primitive.</summary>
    internal static uint Adler32(ReadOnlySpan<byte> data)
    {
        const uint Mod = 65521;
        uint a = 1, b = 0;
        while (data.Length > 0)
        {
            var n = Math.Min(data.Length, 5552);
            foreach (var x in data[..n])
            {
                a += x;
                b += a;
            }
            a %= Mod;
            b %= Mod;
            data = data[n..];
        }
        return (b << 16) | a;
    }
}

using KextTrust.Formats.Image4;
using KextTrust.TestSupport;

namespace KextTrust.Formats.Tests.Image4;

/// <summary>
/// Apple's complzss container, with streams written by hand from the algorithm's definition (Okumura's LZSS as in
/// BootX's lzss.c: 4 KiB window pre-filled with spaces, writing from 4078, flag bits least significant first).
/// No real LZSS-compressed Image4 was available to commit; these are known answers, not round trips.
/// </summary>
public sealed class ComplzssTests
{
    [Fact]
    public void Literals_and_an_overlapping_back_reference_decode()
    {
        // flags 0b0111: three literals, then a match at window position 0xFEE (where 'a' was written), 3 + 3 = 6 bytes.
        byte[] stream = [0x07, (byte)'a', (byte)'b', (byte)'c', 0xEE, 0xF3];
        var plain = "abcabcabc"u8.ToArray();
        Assert.Equal(plain, ComplzssHeader.Decompress(LzssSamples.Container(stream, plain)));
    }

    [Fact]
    public void A_reference_into_the_initial_window_yields_spaces()
    {
        byte[] stream = [0x00, 0x00, 0x00];
        Assert.Equal("   "u8.ToArray(), ComplzssHeader.Decompress(LzssSamples.Container(stream, "   "u8.ToArray())));
    }

    [Fact]
    public void A_longer_literal_stream_round_trips_through_the_sample_builder()
    {
        var plain = Enumerable.Range(0, 10_000).Select(i => (byte)(i * 31 + (i >> 7))).ToArray();
        Assert.Equal(plain, ComplzssHeader.Decompress(LzssSamples.Container(plain)));
    }

    [Fact]
    public void Every_broken_container_is_an_Image4FormatException_naming_the_rule()
    {
        byte[] stream = [0x07, (byte)'a', (byte)'b', (byte)'c', 0xEE, 0xF3];
        var plain = "abcabcabc"u8.ToArray();
        Assert.Contains("Adler-32", Rejects(LzssSamples.Container(stream, plain, adler: 1)).Rule);
        Assert.Contains("more than the declared", Rejects(LzssSamples.Container(stream, plain, declaredSize: 5)).Rule);
        Assert.Contains("ends after", Rejects(LzssSamples.Container(stream, plain, declaredSize: 20)).Rule);
        Assert.Contains("past the end", Rejects(LzssSamples.Container(stream, plain, compressedSize: 7)).Rule);
        Assert.Contains("cut short", Rejects(LzssSamples.Container([0x07, (byte)'a', (byte)'b', (byte)'c', 0xEE], plain)).Rule);
        Assert.Contains("exceeds", Rejects(LzssSamples.Container(stream, plain, declaredSize: uint.MaxValue)).Rule);
        Assert.Equal(0, Rejects([.. "complzss"u8]).Offset);
    }

    [Fact]
    public void Adler32_matches_the_RFC_1950_value_of_a_known_string()
    {
        // zlib's adler32("Wikipedia") = 0x11E60398 (the worked example of the checksum's definition).
        Assert.Equal(0x11E60398u, ComplzssHeader.Adler32("Wikipedia"u8));
        var big = Enumerable.Range(0, 100_000).Select(i => (byte)i).ToArray();
        Assert.Equal(LzssSamples.Adler32(big), ComplzssHeader.Adler32(big));
    }

    private static Image4FormatException Rejects(byte[] container) =>
        Assert.Throws<Image4FormatException>(() => ComplzssHeader.Decompress(container, "sample"));
}

using CsCheck;
using System.Security.Cryptography.X509Certificates;
using KextTrust.Formats.Image4;
using KextTrust.TestSupport;

namespace KextTrust.Formats.Tests.Image4;

/// <summary>
/// Property tests on mutated real files (tests/data/image4): every decoder either decodes (and then re-encodes the very
/// bytes) or throws <see cref="Image4FormatException"/>; never another exception.
/// </summary>
public sealed class RealImage4FuzzTests
{
    [Theory]
    [InlineData("pyimg4-IM4M")]
    [InlineData("img4helper-apticket.im4m")]
    [InlineData("pyimg4-IM4R")]
    [InlineData("pyimg4-IMG4")]
    [InlineData("pyimg4-IM4P")]
    public void Mutated_real_files_decode_exactly_or_throw_Image4FormatException(string name)
    {
        var der = File.ReadAllBytes(Corpus.Image4File(name));
        Image4Samples.Mutations(der).Sample(input =>
        {
            try
            {
                var doc = Im4Document.Decode(input, "fuzz");
                byte[] again = doc.Kind switch
                {
                    Im4Kind.Img4 => doc.Image!.Encode(),
                    Im4Kind.Payload => doc.Payload!.Encode(),
                    Im4Kind.Manifest => doc.Manifest!.Encode(),
                    _ => doc.RestoreInfo!.Encode(),
                };
                Assert.Equal(input, again);
            }
            catch (Image4FormatException e)
            {
                Assert.InRange(e.Offset, 0, input.Length);
            }
        }, iter: name.EndsWith("IM4P", StringComparison.Ordinal) || name.EndsWith("IMG4", StringComparison.Ordinal) ? 400 : 5_000);
    }

    [Fact]
    public void Every_truncation_of_a_real_manifest_throws_Image4FormatException()
    {
        var der = File.ReadAllBytes(Corpus.Image4File("pyimg4-IM4M"));
        for (var length = 0; length < der.Length; length++)
        {
            Assert.Throws<Image4FormatException>(() => Im4Document.Decode(der.AsMemory(0, length)));
        }
    }

    [Fact]
    public void Mutated_certificate_constraints_decode_or_throw_Image4FormatException()
    {
        var manifest = Im4Manifest.FromBytes(File.ReadAllBytes(Corpus.Image4File("pyimg4-IM4M")));
        using var leaf = X509CertificateLoader.LoadCertificate(manifest.CertificateChain[0].Span);
        var extension = leaf.Extensions[Im4CertificateConstraints.Oid]!.RawData;
        Assert.Equal(12, Im4CertificateConstraints.FromBytes(extension).Count);
        Image4Samples.Mutations(extension).Sample(input =>
        {
            try
            {
                Im4CertificateConstraints.FromBytes(input, "fuzz");
            }
            catch (Image4FormatException)
            {
            }
        }, iter: 5_000);
    }

    [Fact]
    public void Mutated_complzss_containers_decode_or_throw_Image4FormatException()
    {
        var plain = Enumerable.Range(0, 3000).Select(i => (byte)(i % 251)).ToArray();
        byte[] stream = [0x07, (byte)'a', (byte)'b', (byte)'c', 0xEE, 0xF3, 0x00, 0x10, 0x2F, 0xFF, 0xFF, 0x00, 0x0F];
        foreach (var container in new[] { LzssSamples.Container(plain), LzssSamples.Container(stream, new byte[40], declaredSize: 40) })
        {
            Image4Samples.Mutations(container).Sample(input =>
            {
                try
                {
                    var output = ComplzssHeader.Decompress(input, "fuzz");
                    Assert.True(output.Length <= ComplzssHeader.MaxDecompressedSize);
                }
                catch (Image4FormatException)
                {
                }
            }, iter: 3_000);
        }
    }
}

using System.Runtime.InteropServices;
using KextTrust.Kexts.Signing;
using KextTrust.TestSupport;

namespace KextTrust.Cli.Tests;

/// <summary>
/// The CLI keeps the machine's OpenSSL trust store out of the process (see <see cref="OpenSslTrustStore"/>): the
/// variables .NET's chain engine reads natively are empty, and chains to the pinned Apple root still build.
/// </summary>
public class OpenSslTrustStoreTests
{
    [Fact]
    public void Native_environment_names_no_store_and_Apple_chains_still_build()
    {
        var applied = OpenSslTrustStore.KeepOut();

        if (!OperatingSystem.IsLinux())
        {
            Assert.False(applied); // macOS and Windows build chains with their own engines
            return;
        }
        Assert.True(applied);
        Assert.Equal("", NativeGetenv("SSL_CERT_FILE"));
        Assert.Equal("", NativeGetenv("SSL_CERT_DIR"));
        // Microsoft's Developer ID chain is completed from the CMS's own certificates and the pinned root alone.
        var coreclr = Path.Combine(Corpus.RuntimePack("osx-arm64"), "native", "libcoreclr.dylib");
        var r = KextSignatureVerifier.Verify(coreclr);
        Assert.Equal(KextSignatureStatus.Valid, r.Status);
        Assert.Equal(TrustAnchorKind.AppleRoot, r.Anchor);
        Assert.Equal(3, r.Chain.Count);
    }

    private static unsafe string? NativeGetenv(string name)
    {
        Assert.True(NativeLibrary.TryGetExport(NativeLibrary.GetMainProgramHandle(), "getenv", out var export));
        var getenv = (delegate* unmanaged<byte*, byte*>)export;
        var bytes = System.Text.Encoding.ASCII.GetBytes(name + "\0");
        fixed (byte* p = bytes)
        {
            return Marshal.PtrToStringUTF8((nint)getenv(p));
        }
    }
}

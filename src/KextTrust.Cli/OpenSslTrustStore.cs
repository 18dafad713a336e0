using System.Runtime.InteropServices;

namespace KextTrust.Cli;

/// <summary>
/// Keeps the machine's OpenSSL trust store out of the process. <c>kextrust</c> trusts only the pinned Apple Root CA
/// and roots named with <c>--trust-root</c>, never the system's trust store. On Linux, .NET's <c>X509Chain</c>
/// nevertheless reads the machine's whole store (<c>SSL_CERT_FILE</c>, then every file of <c>SSL_CERT_DIR</c>:
/// about 150 certificates and 50–90 ms on a Debian machine) on the first chain build of a process, even with
/// <see cref="System.Security.Cryptography.X509Certificates.X509ChainTrustMode.CustomRootTrust"/>, and offers the
/// store's intermediates to every chain build as candidates. Pointing both variables at nothing before any
/// cryptography runs skips the load and makes a verdict independent of what the machine happens to trust.
/// .NET reads the variables in native code (<c>getenv</c>), so they are set with the C library's <c>setenv</c>,
/// not <see cref="Environment.SetEnvironmentVariable(string, string)"/> (which on Unix changes only .NET's own
/// copy). macOS and Windows build chains with the platform's own engines and need nothing.
/// </summary>
internal static class OpenSslTrustStore
{
    /// <summary>
    /// Sets <c>SSL_CERT_FILE</c> and <c>SSL_CERT_DIR</c> to empty in the native environment. Call first thing in
    /// <c>Main</c>, before any thread or certificate exists. Returns whether it did (Linux, C library found).
    /// </summary>
    public static unsafe bool KeepOut()
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsFreeBSD())
        {
            return false;
        }
        if (!NativeLibrary.TryGetExport(NativeLibrary.GetMainProgramHandle(), "setenv", out var export))
        {
            return false;
        }
        var setenv = (delegate* unmanaged<byte*, byte*, int, int>)export;
        fixed (byte* file = "SSL_CERT_FILE\0"u8, dir = "SSL_CERT_DIR\0"u8, empty = "\0"u8)
        {
            return setenv(file, empty, 1) == 0 && setenv(dir, empty, 1) == 0;
        }
    }
}

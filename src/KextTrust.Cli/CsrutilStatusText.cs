using KextTrust.Machine;
using KextTrust.Kexts.Kpi;

namespace KextTrust.Cli;

/// <summary>
/// <c>csrutil status</c> worded as Apple's tool prints it, so scripts written against the real tool parse ours. From
/// public captures (cited in <c>tests/KextTrust.Cli.Tests/AppleOutputFormatTests.cs</c>): "System Integrity Protection
/// status: enabled." / "disabled."; any other configuration is "enabled (Custom Configuration)." up to macOS 10.15 and
/// "unknown (Custom Configuration)." from macOS 11, followed by a blank line, "Configuration:", one tab-indented
/// "Name: enabled|disabled" line per protection, a blank line and "This is an unsupported configuration, likely to break
/// in the future and leave your machine in an unknown state."
/// </summary>
internal static class CsrutilStatusText
{
    /// <summary>One line of the configuration listing: the protection is "disabled" when <see cref="Bit"/> is set (for Apple Internal, "enabled").</summary>
    private sealed record Protection(string Name, CsrConfig Bit, MacOSVersion Since, bool Inverted = false);

    // csr.h bit names: CSR_ALLOW_UNTRUSTED_KEXTS 0x1, UNRESTRICTED_FS 0x2, TASK_FOR_PID 0x4, KERNEL_DEBUGGER 0x8,
    // APPLE_INTERNAL 0x10, UNRESTRICTED_DTRACE 0x20, UNRESTRICTED_NVRAM 0x40, ANY_RECOVERY_OS 0x100, UNAUTHENTICATED_ROOT 0x800.
    // The three lines newer macOS lists appear in captures from macOS 14 on; "csrutil enable --without nvram" turns off both
    // NVRAM Protections and Boot-arg Restrictions. Kernel Integrity Protections following CSR_ALLOW_KERNEL_DEBUGGER is our
    // reading (no capture separates it).
    private static readonly Protection[] Protections =
    [
        new("Apple Internal", CsrConfig.AllowAppleInternal, new(10, 11), Inverted: true),
        new("Kext Signing", CsrConfig.AllowUntrustedKexts, new(10, 11)),
        new("Filesystem Protections", CsrConfig.AllowUnrestrictedFs, new(10, 11)),
        new("Debugging Restrictions", CsrConfig.AllowTaskForPid, new(10, 11)),
        new("DTrace Restrictions", CsrConfig.AllowUnrestrictedDtrace, new(10, 11)),
        new("NVRAM Protections", CsrConfig.AllowUnrestrictedNvram, new(10, 11)),
        new("BaseSystem Verification", CsrConfig.AllowAnyRecoveryOs, new(10, 12)),
        new("Boot-arg Restrictions", CsrConfig.AllowUnrestrictedNvram, new(14, 0)),
        new("Kernel Integrity Protections", CsrConfig.AllowKernelDebugger, new(14, 0)),
        new("Authenticated Root Requirement", CsrConfig.AllowUnauthenticatedRoot, new(14, 0)),
    ];

    /// <summary>The full text (lines end with "\n").</summary>
    public static string Format(CsrConfig csr, MacOSVersion version)
    {
        if (csr == CsrConfig.None)
        {
            return "System Integrity Protection status: enabled.\n";
        }
        if (csr == CsrConfig.Disabled)
        {
            return "System Integrity Protection status: disabled.\n";
        }
        var sb = new System.Text.StringBuilder();
        sb.Append("System Integrity Protection status: ").Append(version >= new MacOSVersion(11, 0) ? "unknown" : "enabled").Append(" (Custom Configuration).\n\nConfiguration:\n");
        foreach (var p in Protections.Where(p => version >= p.Since))
        {
            var set = (csr & p.Bit) != 0;
            sb.Append('\t').Append(p.Name).Append(": ").Append(set != p.Inverted ? "disabled" : "enabled").Append('\n');
        }
        sb.Append("\nThis is an unsupported configuration, likely to break in the future and leave your machine in an unknown state.\n");
        return sb.ToString();
    }
}

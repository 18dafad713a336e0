namespace KextTrust.Machine;

/// <summary>SIP (CSR) configuration bits, as in xnu <c>bsd/sys/csr.h</c>; the Mac's <c>csr-active-config</c> and the LocalPolicy's <c>sip0</c>. A set bit relaxes SIP for that area.</summary>
[Flags]
public enum CsrConfig : uint
{
    /// <summary>SIP fully enabled.</summary>
    None = 0,
    /// <summary>CSR_ALLOW_UNTRUSTED_KEXTS: load kexts whose signature does not validate.</summary>
    AllowUntrustedKexts = 1 << 0,
    /// <summary>CSR_ALLOW_UNRESTRICTED_FS.</summary>
    AllowUnrestrictedFs = 1 << 1,
    /// <summary>CSR_ALLOW_TASK_FOR_PID.</summary>
    AllowTaskForPid = 1 << 2,
    /// <summary>CSR_ALLOW_KERNEL_DEBUGGER.</summary>
    AllowKernelDebugger = 1 << 3,
    /// <summary>CSR_ALLOW_APPLE_INTERNAL.</summary>
    AllowAppleInternal = 1 << 4,
    /// <summary>CSR_ALLOW_UNRESTRICTED_DTRACE.</summary>
    AllowUnrestrictedDtrace = 1 << 5,
    /// <summary>CSR_ALLOW_UNRESTRICTED_NVRAM.</summary>
    AllowUnrestrictedNvram = 1 << 6,
    /// <summary>CSR_ALLOW_DEVICE_CONFIGURATION (always enforced).</summary>
    AllowDeviceConfiguration = 1 << 7,
    /// <summary>CSR_ALLOW_ANY_RECOVERY_OS (always enforced).</summary>
    AllowAnyRecoveryOs = 1 << 8,
    /// <summary>CSR_ALLOW_UNAPPROVED_KEXTS: skip user approval of kexts.</summary>
    AllowUnapprovedKexts = 1 << 9,
    /// <summary>CSR_ALLOW_EXECUTABLE_POLICY_OVERRIDE.</summary>
    AllowExecutablePolicyOverride = 1 << 10,
    /// <summary>CSR_ALLOW_UNAUTHENTICATED_ROOT.</summary>
    AllowUnauthenticatedRoot = 1 << 11,
    /// <summary>CSR_ALLOW_RESEARCH_GUESTS.</summary>
    AllowResearchGuests = 1 << 12,
    /// <summary>What <c>csrutil disable</c> sets (bits 0–6, 9, 10 and 11).</summary>
    Disabled = AllowUntrustedKexts | AllowUnrestrictedFs | AllowTaskForPid | AllowKernelDebugger | AllowAppleInternal
        | AllowUnrestrictedDtrace | AllowUnrestrictedNvram | AllowUnapprovedKexts | AllowExecutablePolicyOverride | AllowUnauthenticatedRoot,
}

/// <summary>The two ways a <see cref="CsrConfig"/> is written down outside <c>machine.json</c>.</summary>
public static class CsrConfigs
{
    /// <summary>The bits a LocalPolicy's <c>sip0</c> (a 16-bit integer) and the kext receipt hold: the low 16.</summary>
    public static CsrConfig Sip0(this CsrConfig config) => (CsrConfig)(ushort)config;

    /// <summary><c>0x…</c>, lower-case, no padding (as <c>csrutil</c> and <c>machine show</c> print csr-active-config).</summary>
    public static string ToHex(this CsrConfig config) => "0x" + ((uint)config).ToString("x", System.Globalization.CultureInfo.InvariantCulture);
}

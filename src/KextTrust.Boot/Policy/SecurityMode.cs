namespace KextTrust.Boot.Policy;

/// <summary>The boot security mode a LocalPolicy selects.</summary>
public enum SecurityMode
{
    /// <summary>Only personalized, current Apple-signed macOS; no AuxKC.</summary>
    Full,
    /// <summary><c>smb0</c>: globally signed macOS; optionally third-party kexts (<c>smb2</c>) and MDM (<c>smb3</c>).</summary>
    Reduced,
    /// <summary><c>smb1</c>: Reduced plus SIP relaxation and custom kernel collections.</summary>
    Permissive,
}

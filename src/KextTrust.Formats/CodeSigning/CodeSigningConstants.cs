namespace KextTrust.Formats.CodeSigning;

/// <summary>Blob magics of Apple code signatures (xnu <c>cs_blobs.h</c>).</summary>
internal static class BlobMagic
{
    /// <summary>A single requirement (0xfade0c00).</summary>
    public const uint Requirement = 0xfade0c00;
    /// <summary>A requirement set (0xfade0c01).</summary>
    public const uint RequirementSet = 0xfade0c01;
    /// <summary>A CodeDirectory (0xfade0c02).</summary>
    public const uint CodeDirectory = 0xfade0c02;
    /// <summary>The embedded-signature SuperBlob (0xfade0cc0).</summary>
    public const uint EmbeddedSignature = 0xfade0cc0;
    /// <summary>The old embedded-signature SuperBlob (0xfade0b02).</summary>
    public const uint EmbeddedSignatureOld = 0xfade0b02;
    /// <summary>A detached signature SuperBlob (0xfade0cc1).</summary>
    public const uint DetachedSignature = 0xfade0cc1;
    /// <summary>XML entitlements (0xfade7171).</summary>
    public const uint Entitlements = 0xfade7171;
    /// <summary>DER entitlements (0xfade7172).</summary>
    public const uint DerEntitlements = 0xfade7172;
    /// <summary>A launch constraint (0xfade8181).</summary>
    public const uint LaunchConstraint = 0xfade8181;
    /// <summary>A blob wrapper, holding the CMS signature (0xfade0b01).</summary>
    public const uint BlobWrapper = 0xfade0b01;
}

/// <summary>SuperBlob slot (index type) numbers.</summary>
internal static class CodeSignatureSlot
{
    /// <summary>The primary CodeDirectory.</summary>
    public const uint CodeDirectory = 0;
    /// <summary>Info.plist hash slot.</summary>
    public const uint InfoPlist = 1;
    /// <summary>The requirement set.</summary>
    public const uint Requirements = 2;
    /// <summary>The CodeResources hash slot.</summary>
    public const uint ResourceDirectory = 3;
    /// <summary>Application-specific slot.</summary>
    public const uint Application = 4;
    /// <summary>XML entitlements.</summary>
    public const uint Entitlements = 5;
    /// <summary>Representation-specific slot.</summary>
    public const uint RepSpecific = 6;
    /// <summary>DER entitlements.</summary>
    public const uint DerEntitlements = 7;
    /// <summary>First alternate CodeDirectory slot (0x1000); alternates run to 0x1004.</summary>
    public const uint AlternateCodeDirectoryFirst = 0x1000;
    /// <summary>Last alternate CodeDirectory slot.</summary>
    public const uint AlternateCodeDirectoryLast = 0x1004;
    /// <summary>The CMS signature (BlobWrapper).</summary>
    public const uint Signature = 0x10000;
    /// <summary>Identification slot.</summary>
    public const uint Identification = 0x10001;
    /// <summary>Notarization ticket slot.</summary>
    public const uint Ticket = 0x10002;

    /// <summary>True for slot 0 and the alternate CodeDirectory slots.</summary>
    public static bool IsCodeDirectory(uint slot) =>
        slot == CodeDirectory || (slot >= AlternateCodeDirectoryFirst && slot <= AlternateCodeDirectoryLast);
}

/// <summary>CodeDirectory hash types.</summary>
public enum CodeSigningHashType : byte
{
    /// <summary>No hash.</summary>
    None = 0,
    /// <summary>SHA-1 (20 bytes).</summary>
    Sha1 = 1,
    /// <summary>SHA-256 (32 bytes).</summary>
    Sha256 = 2,
    /// <summary>SHA-256 truncated to 20 bytes.</summary>
    Sha256Truncated = 3,
    /// <summary>SHA-384 (48 bytes).</summary>
    Sha384 = 4,
}

/// <summary>CodeDirectory flag bits.</summary>
[Flags]
public enum CodeDirectoryFlags : uint
{
    /// <summary>No flags.</summary>
    None = 0,
    /// <summary>CS_ADHOC: ad-hoc signed.</summary>
    Adhoc = 0x2,
    /// <summary>CS_HARD.</summary>
    Hard = 0x100,
    /// <summary>CS_KILL.</summary>
    Kill = 0x200,
    /// <summary>CS_RESTRICT.</summary>
    Restrict = 0x800,
    /// <summary>CS_RUNTIME: hardened runtime.</summary>
    Runtime = 0x10000,
    /// <summary>CS_LINKER_SIGNED.</summary>
    LinkerSigned = 0x20000,
}

/// <summary>Hashing helpers for <see cref="CodeSigningHashType"/> (BCL primitives only).</summary>
public static class CodeSigningHash
{
    /// <summary>Length of a cdhash (<c>CS_CDHASH_LEN</c>).</summary>
    internal const int CdHashLength = 20;

    /// <summary>Digest size stored in a CodeDirectory for <paramref name="type"/>.</summary>
    internal static int SizeOf(CodeSigningHashType type) => type switch
    {
        CodeSigningHashType.Sha1 => 20,
        CodeSigningHashType.Sha256 => 32,
        CodeSigningHashType.Sha256Truncated => 20,
        CodeSigningHashType.Sha384 => 48,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unknown code-signing hash type"),
    };

    /// <summary>True when the hash type is one this library can compute.</summary>
    public static bool IsKnown(CodeSigningHashType type) =>
        type is CodeSigningHashType.Sha1 or CodeSigningHashType.Sha256 or CodeSigningHashType.Sha256Truncated or CodeSigningHashType.Sha384;

    /// <summary>The .NET name of the digest algorithm behind <paramref name="type"/> (SHA-256 for the truncated kind), for incremental hashing.</summary>
    public static System.Security.Cryptography.HashAlgorithmName AlgorithmOf(CodeSigningHashType type) => type switch
    {
        CodeSigningHashType.Sha1 => System.Security.Cryptography.HashAlgorithmName.SHA1,
        CodeSigningHashType.Sha256 or CodeSigningHashType.Sha256Truncated => System.Security.Cryptography.HashAlgorithmName.SHA256,
        CodeSigningHashType.Sha384 => System.Security.Cryptography.HashAlgorithmName.SHA384,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unknown code-signing hash type"),
    };

    /// <summary>The full (untruncated) digest of <paramref name="data"/> with the algorithm of <paramref name="type"/>.</summary>
    internal static byte[] ComputeFull(CodeSigningHashType type, ReadOnlySpan<byte> data) => type switch
    {
        CodeSigningHashType.Sha1 => System.Security.Cryptography.SHA1.HashData(data),
        CodeSigningHashType.Sha256 or CodeSigningHashType.Sha256Truncated => System.Security.Cryptography.SHA256.HashData(data),
        CodeSigningHashType.Sha384 => System.Security.Cryptography.SHA384.HashData(data),
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unknown code-signing hash type"),
    };

    /// <summary>The digest as stored in a CodeDirectory slot (truncated for <see cref="CodeSigningHashType.Sha256Truncated"/>).</summary>
    public static byte[] ComputeSlot(CodeSigningHashType type, ReadOnlySpan<byte> data)
    {
        var full = ComputeFull(type, data);
        var size = SizeOf(type);
        return full.Length == size ? full : full.AsSpan(0, size).ToArray();
    }

    /// <summary>The dotted OID of the digest algorithm behind <paramref name="type"/>.</summary>
    public static string DigestOid(CodeSigningHashType type) => type switch
    {
        CodeSigningHashType.Sha1 => "1.3.14.3.2.26",
        CodeSigningHashType.Sha256 or CodeSigningHashType.Sha256Truncated => "2.16.840.1.101.3.4.2.1",
        CodeSigningHashType.Sha384 => "2.16.840.1.101.3.4.2.2",
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unknown code-signing hash type"),
    };
}

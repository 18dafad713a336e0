using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using KextTrust.Kexts.Kpi;

namespace KextTrust.Machine;

/// <summary>MDM enrollment of the Mac.</summary>
public enum MdmEnrollment
{
    /// <summary>Not enrolled.</summary>
    None,
    /// <summary>User-approved MDM enrollment.</summary>
    UserApproved,
    /// <summary>Automated Device Enrollment (Apple School/Business Manager, DEP).</summary>
    Automated,
}

/// <summary>Which OS the Mac is running.</summary>
public enum RunningOS
{
    /// <summary>macOS.</summary>
    MacOS,
    /// <summary>recoveryOS (Intel: Command-R).</summary>
    RecoveryOS,
    /// <summary>One True Recovery (Apple silicon: power button held at startup).</summary>
    OneTrueRecovery,
}

/// <summary>A PBKDF2-SHA256 password verifier. The password itself is never stored.</summary>
public sealed record PasswordHash(string Algorithm, int Iterations, string Salt, string Hash)
{
    /// <summary>Default iteration count (at least 100,000).</summary>
    public const int DefaultIterations = 210_000;

    /// <summary>Hashes <paramref name="password"/> with a fresh 16-byte salt.</summary>
    public static PasswordHash Create(string password, int iterations = DefaultIterations)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(iterations, 1);
        var salt = RandomNumberGenerator.GetBytes(16);
        var hash = Rfc2898DeriveBytes.Pbkdf2(password, salt, iterations, HashAlgorithmName.SHA256, 32);
        return new PasswordHash("PBKDF2-SHA256", iterations, Convert.ToBase64String(salt), Convert.ToBase64String(hash));
    }

    /// <summary>True when <paramref name="password"/> matches (constant-time comparison).</summary>
    public bool Verify(string password)
    {
        if (Algorithm != "PBKDF2-SHA256" || Iterations < 1)
        {
            return false;
        }
        var expected = Convert.FromBase64String(Hash);
        var actual = Rfc2898DeriveBytes.Pbkdf2(password, Convert.FromBase64String(Salt), Iterations, HashAlgorithmName.SHA256, expected.Length);
        return CryptographicOperations.FixedTimeEquals(expected, actual);
    }
}

/// <summary>A local account.</summary>
public sealed record MachineUser(string Name, bool IsAdmin, PasswordHash Password);

/// <summary>
/// The machine description (<c>machine.json</c>): hardware, installed OS, users, MDM, SIP, running OS, clock.
/// JSON with camelCase names and kebab-case enum values, except <see cref="CsrActiveConfig"/>: the
/// <c>csr-active-config</c> bits as an integer (as NVRAM holds them; bits this version does not name are kept).
/// <see cref="OSHistory"/> lists every macOS version the Mac has run, oldest first (upgrades append).
/// </summary>
public sealed record MachineDescription(
    int FormatVersion,
    MacPlatform Platform,
    string MacOSVersion,
    IReadOnlyList<string> OSHistory,
    IReadOnlyList<MachineUser> Users,
    MdmEnrollment Mdm,
    [property: JsonConverter(typeof(JsonNumberEnumConverter<CsrConfig>))] CsrConfig CsrActiveConfig,
    RunningOS RunningOS,
    DateTimeOffset Clock,
    ulong Ecid,
    string HardwareUid,
    string BootSessionUuid)
{
    /// <summary>The current format version.</summary>
    public const int CurrentFormat = 1;

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters =
        {
            new JsonStringEnumConverter<MacPlatform>(JsonNamingPolicy.KebabCaseLower, allowIntegerValues: false),
            new JsonStringEnumConverter<MdmEnrollment>(JsonNamingPolicy.KebabCaseLower, allowIntegerValues: false),
            new JsonStringEnumConverter<RunningOS>(JsonNamingPolicy.KebabCaseLower, allowIntegerValues: false),
        },
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        TypeInfoResolver = MachineJsonContext.Default,
    };

    private static JsonTypeInfo<MachineDescription> TypeInfo => (JsonTypeInfo<MachineDescription>)Json.GetTypeInfo(typeof(MachineDescription));

    /// <summary>The running macOS version, parsed.</summary>
    [JsonIgnore]
    public MacOSVersion Version => Kexts.Kpi.MacOSVersion.Parse(MacOSVersion);

    /// <summary>True when SIP enforces kext signatures (CSR_ALLOW_UNTRUSTED_KEXTS clear).</summary>
    [JsonIgnore]
    public bool SipEnforcesKexts => (CsrActiveConfig & CsrConfig.AllowUntrustedKexts) == 0;

    /// <summary>True when the Mac runs recoveryOS or One True Recovery.</summary>
    [JsonIgnore]
    public bool InRecovery => RunningOS != RunningOS.MacOS;

    /// <summary>The kext architecture this Mac loads.</summary>
    [JsonIgnore]
    public KextArchitecture KextArchitecture => Platform.Architecture();

    /// <summary>Looks up a user by name.</summary>
    public MachineUser? FindUser(string name) => Users.FirstOrDefault(u => u.Name == name);

    /// <summary>Serialises as <c>machine.json</c>.</summary>
    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this, TypeInfo);

    /// <summary>Parses <c>machine.json</c>; a malformed file is a <see cref="MachineException"/> naming it.</summary>
    public static MachineDescription Parse(ReadOnlySpan<byte> json, string path)
    {
        MachineDescription? d;
        try
        {
            d = JsonSerializer.Deserialize(json, TypeInfo);
        }
        catch (JsonException e)
        {
            throw new MachineException(MachineCode.MachineInvalid, path, "malformed machine description: " + e.Message, e);
        }
        if (d is null || d.FormatVersion != CurrentFormat || d.Users is null || d.OSHistory is null || d.HardwareUid is null
            || !Kexts.Kpi.MacOSVersion.TryParse(d.MacOSVersion, out _) || d.HardwareUid.Length != 64 || !d.HardwareUid.All(Uri.IsHexDigit))
        {
            throw new MachineException(MachineCode.MachineInvalid, path, "malformed machine description (format version, macOS version, users or hardware UID)");
        }
        return d;
    }
}

/// <summary>
/// Compile-time JSON metadata of the machine files (<c>machine.json</c>, the change journal): no reflection and no
/// emitted accessors when a command opens the Mac. Naming policy, enum converter and member handling still come
/// from the options that use it, so the bytes are those of the reflection-based serializer.
/// </summary>
[JsonSerializable(typeof(MachineDescription))]
[JsonSerializable(typeof(MachineStore.JournalEntry[]))]
internal sealed partial class MachineJsonContext : JsonSerializerContext;

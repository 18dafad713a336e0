using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using KextTrust.Boot.SecureBoot;
using KextTrust.Consent.Mdm;
using KextTrust.Kexts.Signing;

namespace KextTrust.Cli;

/// <summary>
/// Compile-time JSON metadata of the documents the consent, signing and demo commands write from records (the
/// verify and secure-boot commands have their own contexts; inspect and audit stream with a writer).
/// </summary>
[JsonSerializable(typeof(IReadOnlyList<MdmProfile>))]
[JsonSerializable(typeof(List<KextSigningResult>))]
[JsonSerializable(typeof(InstallItemJson[]))]
[JsonSerializable(typeof(ApprovalJson))]
[JsonSerializable(typeof(DemoReport))]
[JsonSerializable(typeof(MachineShowJson))]
[JsonSerializable(typeof(KextPolicyJson))]
[JsonSerializable(typeof(WhyJson))]
[JsonSerializable(typeof(ProfileChangeJson))]
[JsonSerializable(typeof(KextPolicyImportJson))]
[JsonSerializable(typeof(SpctlJson))]
[JsonSerializable(typeof(KextPolicyProfileJson))]
internal sealed partial class CliJsonContext : JsonSerializerContext
{
    /// <summary>The contexts whose metadata the command-line JSON options resolve, in order.</summary>
    internal static IJsonTypeInfoResolver[] Resolvers => [VerifyJsonContext.Default, BootJsonContext.Default, Img4JsonContext.Default, Default];

    /// <summary>
    /// Options for every command's record JSON: indented, camelCase properties, relaxed escaping, and each enum that
    /// any of <see cref="Resolvers"/> reaches written by name in kebab-case. The enum converters are listed one by one
    /// (the generic converter needs no runtime code generation); a test walks the types and fails on one left out.
    /// </summary>
    internal static JsonSerializerOptions CreateOptions()
    {
        var options = new JsonSerializerOptions
        {
            WriteIndented = true,
            PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
            DefaultIgnoreCondition = JsonIgnoreCondition.Never,
            Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
            TypeInfoResolver = JsonTypeInfoResolver.Combine(Resolvers),
        };
        foreach (var converter in EnumConverters)
        {
            options.Converters.Add(converter);
        }
        options.MakeReadOnly();
        return options;
    }

    /// <summary>The kebab-case converter of every enum the command-line JSON documents hold.</summary>
    internal static JsonConverter[] EnumConverters =>
    [
        Kebab<KextSignatureProblemCode>(),
    ];

    private static JsonStringEnumConverter<T> Kebab<T>() where T : struct, Enum => new(JsonNamingPolicy.KebabCaseLower);
}

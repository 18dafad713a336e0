using System.Text.Json;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Inspection;

namespace KextTrust.Cli;

/// <summary>
/// Writes <see cref="InspectReport"/>s as <c>inspect --json</c> prints them, straight to a <see cref="Utf8JsonWriter"/>:
/// camelCase names in declaration order, nulls written. Streaming needs no reflection metadata (slow to build in a
/// short process) and no object graph per report; the output is what the reflection serializer writes for the same
/// records with <see cref="CliOutput"/>'s options (a test holds the two equal).
/// </summary>
internal static class InspectJson
{
    /// <summary>Writes one report (plug-ins nested) as a JSON object.</summary>
    public static void Write(Utf8JsonWriter w, InspectReport r)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(r);
        w.WriteStartObject();
        w.WriteString(Names.Path, r.Path);
        w.WriteString(Names.Kind, r.Kind);
        w.WriteString(Names.BundleId, r.BundleId);
        w.WriteString(Names.Version, r.Version);
        w.WriteString(Names.CompatibleVersion, r.CompatibleVersion);
        w.WriteString(Names.Executable, r.Executable);
        w.WriteString(Names.OSBundleRequired, r.OSBundleRequired);
        w.WriteStartObject(Names.Libraries);
        foreach (var (id, version) in r.Libraries)
        {
            w.WriteString(id, version);
        }
        w.WriteEndObject();
        WriteStrings(w, Names.Personalities, r.Personalities);
        w.WriteStartArray(Names.Plugins);
        foreach (var p in r.Plugins)
        {
            Write(w, p);
        }
        w.WriteEndArray();
        w.WriteStartArray(Names.Slices);
        foreach (var s in r.Slices)
        {
            WriteSlice(w, s);
        }
        w.WriteEndArray();
        WriteStrings(w, Names.Problems, r.Problems);
        w.WriteString(Names.Error, r.Error);
        w.WriteEndObject();
    }

    private static void WriteSlice(Utf8JsonWriter w, SliceReport s)
    {
        w.WriteStartObject();
        w.WriteString(Names.Arch, s.Arch);
        w.WriteString(Names.FileType, MachineOption.Kebab(s.FileType));
        w.WriteString(Names.Uuid, s.Uuid);
        w.WriteString(Names.Platform, s.Platform is null ? null : MachineOption.Kebab(s.Platform));
        w.WriteString(Names.MinOS, s.MinOS);
        w.WriteString(Names.Sdk, s.Sdk);
        WriteStrings(w, Names.UndefinedSymbols, s.UndefinedSymbols);
        w.WriteNumber(Names.DefinedExternalSymbols, s.DefinedExternalSymbols);
        var c = s.CodeSignature;
        w.WriteStartObject(Names.CodeSignature);
        w.WriteBoolean(Names.Present, c.Present);
        w.WriteString(Names.CodeDirectoryVersion, c.CodeDirectoryVersion);
        w.WriteString(Names.HashType, c.HashType);
        w.WriteString(Names.Identifier, c.Identifier);
        w.WriteString(Names.TeamId, c.TeamId);
        w.WriteString(Names.CdHash, c.CdHash);
        w.WriteNumber(Names.AlternateCodeDirectories, c.AlternateCodeDirectories);
        w.WriteBoolean(Names.HasCms, c.HasCms);
        w.WriteString(Names.Error, c.Error);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteStrings(Utf8JsonWriter w, JsonEncodedText name, IReadOnlyList<string> values)
    {
        w.WriteStartArray(name);
        if (values is Utf8StringList { IsValidUtf8: true } utf8)
        {
            // Well-formed UTF-8 is written as its string would be, without the string. (Ill-formed bytes are written
            // as "\uFFFD" by the writer but raw by the string: those lists take the decoded strings below.)
            for (var i = 0; i < utf8.Count; i++)
            {
                w.WriteStringValue(utf8.Utf8(i));
            }
        }
        else
        {
            foreach (var v in values)
            {
                w.WriteStringValue(v);
            }
        }
        w.WriteEndArray();
    }

    /// <summary>Property names, encoded once.</summary>
    private static class Names
    {
        public static readonly JsonEncodedText Path = JsonEncodedText.Encode("path");
        public static readonly JsonEncodedText Kind = JsonEncodedText.Encode("kind");
        public static readonly JsonEncodedText BundleId = JsonEncodedText.Encode("bundleId");
        public static readonly JsonEncodedText Version = JsonEncodedText.Encode("version");
        public static readonly JsonEncodedText CompatibleVersion = JsonEncodedText.Encode("compatibleVersion");
        public static readonly JsonEncodedText Executable = JsonEncodedText.Encode("executable");
        public static readonly JsonEncodedText OSBundleRequired = JsonEncodedText.Encode("osBundleRequired");
        public static readonly JsonEncodedText Libraries = JsonEncodedText.Encode("libraries");
        public static readonly JsonEncodedText Personalities = JsonEncodedText.Encode("personalities");
        public static readonly JsonEncodedText Plugins = JsonEncodedText.Encode("plugins");
        public static readonly JsonEncodedText Slices = JsonEncodedText.Encode("slices");
        public static readonly JsonEncodedText Problems = JsonEncodedText.Encode("problems");
        public static readonly JsonEncodedText Error = JsonEncodedText.Encode("error");
        public static readonly JsonEncodedText Arch = JsonEncodedText.Encode("arch");
        public static readonly JsonEncodedText FileType = JsonEncodedText.Encode("fileType");
        public static readonly JsonEncodedText Uuid = JsonEncodedText.Encode("uuid");
        public static readonly JsonEncodedText Platform = JsonEncodedText.Encode("platform");
        public static readonly JsonEncodedText MinOS = JsonEncodedText.Encode("minOS");
        public static readonly JsonEncodedText Sdk = JsonEncodedText.Encode("sdk");
        public static readonly JsonEncodedText UndefinedSymbols = JsonEncodedText.Encode("undefinedSymbols");
        public static readonly JsonEncodedText DefinedExternalSymbols = JsonEncodedText.Encode("definedExternalSymbols");
        public static readonly JsonEncodedText CodeSignature = JsonEncodedText.Encode("codeSignature");
        public static readonly JsonEncodedText Present = JsonEncodedText.Encode("present");
        public static readonly JsonEncodedText CodeDirectoryVersion = JsonEncodedText.Encode("codeDirectoryVersion");
        public static readonly JsonEncodedText HashType = JsonEncodedText.Encode("hashType");
        public static readonly JsonEncodedText Identifier = JsonEncodedText.Encode("identifier");
        public static readonly JsonEncodedText TeamId = JsonEncodedText.Encode("teamId");
        public static readonly JsonEncodedText CdHash = JsonEncodedText.Encode("cdHash");
        public static readonly JsonEncodedText AlternateCodeDirectories = JsonEncodedText.Encode("alternateCodeDirectories");
        public static readonly JsonEncodedText HasCms = JsonEncodedText.Encode("hasCms");
    }
}

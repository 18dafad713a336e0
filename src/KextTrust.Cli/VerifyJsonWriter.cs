using System.Text.Json;
using KextTrust.Kexts.Signing;

namespace KextTrust.Cli;

/// <summary>
/// Writes the <c>kextrust verify --json</c> report with a <see cref="Utf8JsonWriter"/>, field by field in the order and
/// spelling of <see cref="VerifyItemJson"/> under the command-line JSON settings (camelCase, nulls written, problem codes
/// in kebab-case). The serializer's metadata, source-generated or not, reads each type's custom attributes on first
/// use, which under Native AOT costs ~5 ms of a verify run; the report is the same bytes either way
/// (<c>CliJsonReflectionOracleTests</c> reads it back and writes it again with the reflection serializer).
/// </summary>
internal static class VerifyJsonWriter
{
    public static void Write(Utf8JsonWriter w, IReadOnlyList<VerifyItemJson> report)
    {
        w.WriteStartArray();
        foreach (var item in report)
        {
            WriteItem(w, item);
        }
        w.WriteEndArray();
    }

    private static void WriteItem(Utf8JsonWriter w, VerifyItemJson i)
    {
        w.WriteStartObject();
        w.WriteString("path", i.Path);
        w.WriteString("status", i.Status);
        w.WriteString("kind", i.Kind);
        w.WriteString("identifier", i.Identifier);
        w.WriteString("teamId", i.TeamId);
        w.WriteString("signer", i.Signer);
        w.WriteBoolean("kextSigningAuthorized", i.KextSigningAuthorized);
        w.WriteStartArray("cdhashes");
        foreach (var c in i.Cdhashes)
        {
            w.WriteStringValue(c);
        }
        w.WriteEndArray();
        w.WriteBoolean("requirementSatisfied", i.RequirementSatisfied);
        w.WriteString("kextRequirement", i.KextRequirement);
        w.WriteString("designatedRequirement", i.DesignatedRequirement);
        w.WriteString("designatedRequirementOutcome", i.DesignatedRequirementOutcome);
        w.WriteString("trustedRoot", i.TrustedRoot);
        w.WriteBoolean("trustedByRequest", i.TrustedByRequest);
        w.WriteString("note", i.Note);
        w.WriteBoolean("isKextBinary", i.IsKextBinary);
        w.WriteNumber("pagesVerified", i.PagesVerified);
        w.WriteStartArray("slices");
        foreach (var s in i.Slices)
        {
            WriteSlice(w, s);
        }
        w.WriteEndArray();
        w.WriteStartArray("problems");
        foreach (var p in i.Problems)
        {
            WriteProblem(w, p);
        }
        w.WriteEndArray();
        w.WriteStartArray("nested");
        foreach (var n in i.Nested)
        {
            WriteItem(w, n);
        }
        w.WriteEndArray();
        w.WriteString("error", i.Error);
        w.WriteEndObject();
        CliOutput.FlushIfFull(w);
    }

    private static void WriteSlice(Utf8JsonWriter w, SliceVerification s)
    {
        w.WriteStartObject();
        w.WriteString("arch", s.Arch);
        w.WriteString("fileType", MachineOption.Kebab(s.FileType));
        w.WriteBoolean("signed", s.Signed);
        w.WriteStartArray("cdHashes");
        foreach (var c in s.CdHashes)
        {
            w.WriteStartObject();
            w.WriteString("arch", c.Arch);
            w.WriteNumber("slot", c.Slot);
            w.WriteString("hashType", c.HashType);
            w.WriteString("cdHash", c.CdHash);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteNumber("pagesVerified", s.PagesVerified);
        w.WriteNumber("bytesHashed", s.BytesHashed);
        w.WriteEndObject();
    }

    private static void WriteProblem(Utf8JsonWriter w, VerifyProblemJson p)
    {
        w.WriteStartObject();
        w.WriteString("code", MachineOption.Kebab(p.Code));
        w.WriteString("message", p.Message);
        w.WriteString("arch", p.Arch);
        if (p.Offset is { } offset)
        {
            w.WriteNumber("offset", offset);
        }
        else
        {
            w.WriteNull("offset");
        }
        w.WriteString("path", p.Path);
        w.WriteEndObject();
    }
}

using System.Formats.Asn1;

namespace KextTrust.Formats.Image4;

/// <summary>
/// One constraint an Apple Image4 signing certificate puts on the manifests it may sign: in group <c>MANP</c> (the
/// manifest's own properties) or <c>OBJP</c> (every object's properties), property <see cref="FourCC"/> either
/// with a required value or, when <see cref="RequiredValue"/> is null, with any value (encoded <c>[0] { NULL }</c>).
/// </summary>
public sealed record Im4Constraint(string Group, string FourCC, Im4Value? RequiredValue);

/// <summary>
/// The manifest constraints in an Image4 signing certificate's extension <c>1.2.840.113635.100.6.1.15</c> (critical in
/// Apple's TSS leaf certificates): <c>SET { [PRIVATE 'MANP'] { SEQUENCE { "MANP", SET { constraint … } } },
/// [PRIVATE 'OBJP'] { SEQUENCE { "OBJP", SET { … } } } }</c>, each constraint laid out as a property whose value is
/// either a property value or <c>[0] { NULL }</c>, as <c>openssl asn1parse -strparse</c> shows in Apple's certificates.
/// </summary>
public static class Im4CertificateConstraints
{
    /// <summary>The extension OID.</summary>
    public const string Oid = "1.2.840.113635.100.6.1.15";

    private static readonly Asn1Tag AnyValueTag = new(TagClass.ContextSpecific, 0, isConstructed: true);

    /// <summary>Decodes the extension value strictly; <see cref="Image4FormatException"/> on any defect.</summary>
    public static IReadOnlyList<Im4Constraint> FromBytes(ReadOnlyMemory<byte> extensionValue, string? sourceName = null) =>
        Im4Codec.DecodeTop(extensionValue, sourceName, Read);

    private static IReadOnlyList<Im4Constraint> Read(DerCursor cursor)
    {
        var groups = cursor.Enter(cursor.ReadSet("constraint groups SET"));
        var constraints = new List<Im4Constraint>();
        while (groups.HasMore)
        {
            var (group, _, inner) = Im4Codec.ReadTaggedEntry(groups, "constraint group");
            var set = inner.Enter(inner.ReadSet($"'{group}' constraints SET"));
            inner.ExpectEnd($"constraint group '{group}'");
            while (set.HasMore)
            {
                var (fourcc, _, body) = Im4Codec.ReadTaggedEntry(set, $"'{group}' constraint");
                Im4Value? value = null;
                if (body.PeekTag($"'{group}' constraint '{fourcc}' value") == AnyValueTag)
                {
                    var any = body.Enter(body.Read(AnyValueTag, $"'{group}' constraint '{fourcc}' [0]"));
                    var nullElement = any.Read(Asn1Tag.Null, $"'{group}' constraint '{fourcc}' [0] NULL");
                    if (nullElement.ContentLength != 0)
                    {
                        throw any.Error(nullElement.Offset, $"'{group}' constraint '{fourcc}': NULL must have no content");
                    }
                    any.ExpectEnd($"'{group}' constraint '{fourcc}' [0]");
                }
                else
                {
                    value = Im4Codec.ReadValue(body, $"'{group}' constraint '{fourcc}' value");
                }
                body.ExpectEnd($"'{group}' constraint '{fourcc}'");
                constraints.Add(new Im4Constraint(group, fourcc, value));
            }
        }
        return constraints;
    }
}

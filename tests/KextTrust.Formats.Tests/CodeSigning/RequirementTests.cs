using System.Buffers.Binary;
using KextTrust.Formats.CodeSigning;

namespace KextTrust.Formats.Tests.CodeSigning;

public class RequirementTests
{
    private static string RoundTrip(string text)
    {
        var blob = RequirementCompiler.Compile(text);
        var req = Requirement.Parse(blob, "test");
        Assert.Equal(blob, RequirementCompiler.Compile(req.Text));
        return req.Text;
    }

    [Theory]
    [InlineData("always", "always")]
    [InlineData("never", "never")]
    [InlineData("identifier com.example.kext", "identifier \"com.example.kext\"")]
    [InlineData("identifier libfoo", "identifier libfoo")]
    [InlineData("anchor apple", "anchor apple")]
    [InlineData("anchor apple generic", "anchor apple generic")]
    [InlineData("anchor trusted", "anchor trusted")]
    [InlineData("anchor apple Something", "anchor apple Something")]
    [InlineData("certificate leaf = H\"0011aabb\"", "certificate leaf = H\"0011aabb\"")]
    [InlineData("anchor = H\"0011aabb\"", "certificate anchor = H\"0011aabb\"")]
    [InlineData("cdhash H\"00112233445566778899aabbccddeeff00112233\"", "cdhash H\"00112233445566778899aabbccddeeff00112233\"")]
    [InlineData("info[CFBundleVersion] >= \"1.2\"", "info[CFBundleVersion] >= \"1.2\"")]
    [InlineData("info[CFBundleVersion] < \"2\"", "info[CFBundleVersion] < \"2\"")]
    [InlineData("info[CFBundleVersion] > \"2\"", "info[CFBundleVersion] > \"2\"")]
    [InlineData("info[CFBundleVersion] <= \"2\"", "info[CFBundleVersion] <= \"2\"")]
    [InlineData("entitlement[\"com.apple.developer.driverkit\"] exists", "entitlement[com.apple.developer.driverkit] /* exists */")]
    [InlineData("entitlement[x] absent", "entitlement[x] absent ")]
    [InlineData("certificate 1[field.1.2.840.113635.100.6.2.6]", "certificate 1[field.1.2.840.113635.100.6.2.6] /* exists */")]
    [InlineData("certificate leaf[subject.CN] = \"Developer ID Application: X\"*", "certificate leaf[subject.CN] = \"Developer ID Application: X\"*")]
    [InlineData("certificate leaf[subject.CN] = *Corp", "certificate leaf[subject.CN] = *Corp")]
    [InlineData("certificate leaf[subject.O] ~ Micro", "certificate leaf[subject.O] ~ Micro")]
    [InlineData("certificate leaf[subject.OU] = \"9BNSXJN65R\"", "certificate leaf[subject.OU] = \"9BNSXJN65R\"")]
    [InlineData("certificate 2 trusted", "certificate 2 trusted")]
    [InlineData("certificate root[policy.1.2.840.113635.100.5.1]", "certificate anchor[policy.1.2.840.113635.100.5.1] /* exists */")]
    [InlineData("certificate leaf[timestamp.1.2.840.113635.100.6.1.33] >= <2019-04-10 00:00:00 +0000>", "certificate leaf[timestamp.1.2.840.113635.100.6.1.33] >= <2019-04-10 00:00:00 +0000>")]
    [InlineData("certificate leaf[timestamp.1.2.3] = <2019-04-10 00:00:00 +0000>", "certificate leaf[timestamp.1.2.3] = <2019-04-10 00:00:00 +0000>")]
    [InlineData("platform = 1", "platform = 1")]
    [InlineData("notarized", "notarized")]
    [InlineData("legacy", "legacy")]
    [InlineData("(\"com.example.named\")", "(\"com.example.named\")")]
    [InlineData("info[Key] = 0x00ff", "info[Key] = 0x00ff")]
    public void Every_opcode_and_match_decompiles_like_codesign(string source, string expected)
    {
        Assert.Equal(expected, RoundTrip(source));
    }

    [Theory]
    [InlineData("a", "identifier a and identifier b or identifier c", "identifier a and identifier b or identifier c")]
    [InlineData("b", "identifier a and (identifier b or identifier c)", "identifier a and (identifier b or identifier c)")]
    [InlineData("c", "(identifier a or identifier b) and identifier c", "(identifier a or identifier b) and identifier c")]
    [InlineData("d", "! (anchor apple and notarized)", "! (anchor apple and notarized)")]
    [InlineData("e", "!anchor apple or notarized", "! anchor apple or notarized")]
    [InlineData("f", "((anchor apple))", "anchor apple")]
    [InlineData("g", "anchor apple or (anchor apple generic and certificate 1[field.1.2.840.113635.100.6.2.6] exists and notarized)",
        "anchor apple or anchor apple generic and certificate 1[field.1.2.840.113635.100.6.2.6] /* exists */ and notarized")]
    public void Precedence_and_parentheses(string name, string source, string expected)
    {
        Assert.NotNull(name);
        Assert.Equal(expected, RoundTrip(source));
    }

    [Fact]
    public void Third_party_kext_requirement_from_kext_tools_compiles_and_nests_right()
    {
        var text = "anchor apple generic and certificate 1[field.1.2.840.113635.100.6.2.6] and certificate leaf[field.1.2.840.113635.100.6.1.13] and certificate leaf[field.1.2.840.113635.100.6.1.18]";
        var blob = RequirementCompiler.Compile(text);
        // And(anchor apple generic, And(cert 1 …, And(leaf …13, leaf …18)))
        Assert.Equal((uint)RequirementOpcode.And, BinaryPrimitives.ReadUInt32BigEndian(blob.AsSpan(12)));
        Assert.Equal((uint)RequirementOpcode.AppleGenericAnchor, BinaryPrimitives.ReadUInt32BigEndian(blob.AsSpan(16)));
        Assert.Equal((uint)RequirementOpcode.And, BinaryPrimitives.ReadUInt32BigEndian(blob.AsSpan(20)));
        Assert.Equal((uint)RequirementOpcode.CertGeneric, BinaryPrimitives.ReadUInt32BigEndian(blob.AsSpan(24)));
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32BigEndian(blob.AsSpan(28)));
        // OID stored as the DER body: 10 bytes 2a 86 48 86 f7 63 64 06 02 06, padded to 12.
        Assert.Equal(10u, BinaryPrimitives.ReadUInt32BigEndian(blob.AsSpan(32)));
        Assert.Equal(Convert.FromHexString("2a864886f76364060206"), blob.AsSpan(36, 10).ToArray());
        Assert.Equal(
            "anchor apple generic and certificate 1[field.1.2.840.113635.100.6.2.6] /* exists */ and certificate leaf[field.1.2.840.113635.100.6.1.13] /* exists */ and certificate leaf[field.1.2.840.113635.100.6.1.18] /* exists */",
            Requirement.Parse(blob, null).Text);
    }

    [Fact]
    public void Set_text_round_trips()
    {
        var text = "host => anchor apple\ndesignated => identifier \"com.example.kext\" and anchor apple generic";
        var set = RequirementSet.Parse(RequirementCompiler.CompileSet(text), null);
        Assert.Equal(text, set.ToText());
        Assert.Equal("identifier \"com.example.kext\" and anchor apple generic", set.Designated!.Text);
    }

    [Fact]
    public void Nesting_beyond_the_limit_is_a_typed_failure()
    {
        var depth = Requirement.MaxDepth + 10;
        var body = new List<byte>();
        void U32(uint v) { var b = new byte[4]; BinaryPrimitives.WriteUInt32BigEndian(b, v); body.AddRange(b); }
        for (var i = 0; i < depth; i++)
        {
            U32((uint)RequirementOpcode.Not);
        }
        U32((uint)RequirementOpcode.True);
        var blob = new byte[12 + body.Count];
        BinaryPrimitives.WriteUInt32BigEndian(blob, BlobMagic.Requirement);
        BinaryPrimitives.WriteUInt32BigEndian(blob.AsSpan(4), (uint)blob.Length);
        BinaryPrimitives.WriteUInt32BigEndian(blob.AsSpan(8), 1);
        body.CopyTo(blob, 12);
        Assert.Contains("nesting", Assert.Throws<CodeSignatureFormatException>(() => Requirement.Parse(blob, "deep")).Rule);
    }

    [Theory]
    [InlineData("0000002a")]                  // unknown opcode 42
    [InlineData("0000000e00000000")]          // CertGeneric, slot, then missing data
    [InlineData("0000000200000100")]          // Ident with a 256-byte length past the end
    [InlineData("0000000e000000000000000100ff00000000001f")] // bad OID body, match op 31
    public void Malformed_expressions_are_typed_failures(string hexBody)
    {
        var body = Convert.FromHexString(hexBody);
        var blob = new byte[12 + body.Length];
        BinaryPrimitives.WriteUInt32BigEndian(blob, BlobMagic.Requirement);
        BinaryPrimitives.WriteUInt32BigEndian(blob.AsSpan(4), (uint)blob.Length);
        BinaryPrimitives.WriteUInt32BigEndian(blob.AsSpan(8), 1);
        body.CopyTo(blob, 12);
        Assert.Throws<CodeSignatureFormatException>(() => Requirement.Parse(blob, null));
    }

    [Fact]
    public void Unknown_opcodes_with_the_generic_flags_are_printed_as_comments()
    {
        var blob = RequirementCompiler.Compile("always and never");
        BinaryPrimitives.WriteUInt32BigEndian(blob.AsSpan(16), 0x80000000 | 99);
        BinaryPrimitives.WriteUInt32BigEndian(blob.AsSpan(20), 0x40000000 | 98);
        Assert.Equal("never /* opcode 99 */ and always /* opcode 98 */", Requirement.Parse(blob, null).Text);
    }

    [Theory]
    [InlineData("identifier")]
    [InlineData("anchor apple and")]
    [InlineData("(anchor apple")]
    [InlineData("certificate x[field.1]")]
    [InlineData("certificate leaf[field.notanoid]")]
    [InlineData("info[a] = \"unterminated")]
    public void Bad_text_is_a_syntax_error(string text)
    {
        Assert.Throws<RequirementSyntaxException>(() => RequirementCompiler.Compile(text));
    }

    [Theory]
    [InlineData("anchor apple and", 16, "expected an expression, found '<end>'")]
    [InlineData("identifier \"é\" and bogus", 20, "unknown keyword 'bogus'")]
    public void A_syntax_error_names_the_source_and_the_utf8_byte_offset(string text, long offset, string rule)
    {
        var e = Assert.Throws<RequirementSyntaxException>(() => RequirementCompiler.Compile(text, "designated.req"));
        Assert.IsAssignableFrom<KextTrust.Formats.KextTrustFormatException>(e);
        Assert.Equal("designated.req", e.SourceName);
        Assert.Equal(offset, e.Offset);
        Assert.Equal(rule, e.Rule);
    }

    [Fact]
    public void A_syntax_error_in_a_set_is_placed_in_the_whole_text()
    {
        const string text = "designated => anchor apple\n  library => identifier \"x\" and (";
        var e = Assert.Throws<RequirementSyntaxException>(() => RequirementCompiler.CompileSet(text));
        Assert.Equal(RequirementCompiler.DefaultSource, e.SourceName);
        Assert.Equal(text.Length, e.Offset);
        var unknown = Assert.Throws<RequirementSyntaxException>(() => RequirementCompiler.CompileSet("designated => anchor apple\n\tmaker => anchor apple"));
        Assert.Equal(28, unknown.Offset);
        Assert.Equal("unknown requirement type 'maker'", unknown.Rule);
    }
}

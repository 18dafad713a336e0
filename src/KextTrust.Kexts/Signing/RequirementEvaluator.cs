using System.Buffers.Binary;
using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using KextTrust.Formats.CodeSigning;
using KextTrust.Formats.PropertyLists;

namespace KextTrust.Kexts.Signing;

/// <summary>
/// What a requirement is evaluated against: the signing identifier, the verified chain (leaf first, anchor
/// last) and which root it ended at, the Info.plist, the cdhashes and the platform byte.
/// </summary>
internal sealed record RequirementContext(
    string Identifier,
    IReadOnlyList<X509Certificate2> Chain,
    TrustAnchorKind Anchor,
    PlistDictionary? InfoPlist,
    IReadOnlyList<byte[]> CdHashes,
    byte Platform);

/// <summary>
/// Evaluates compiled code requirements (the opcode form of <c>csreq</c>) against a
/// <see cref="RequirementContext"/>. <c>anchor apple generic</c> holds when the chain ends at the pinned Apple
/// Root CA, or at the test root the caller trusted explicitly (the context records which). <c>anchor apple</c>
/// additionally needs Apple's own "Apple Code Signing Certification Authority" intermediate, as
/// Security's <c>appleSigned()</c> does. Clauses that cannot be decided off the Mac (notarization, user trust
/// settings, entitlements, named anchors) are <see cref="RequirementOutcome.Unknown"/>; Kleene logic combines them.
/// </summary>
internal static class RequirementEvaluator
{
    /// <summary>kext_tools' requirement for third-party kexts (pipeline facts §5).</summary>
    public const string ThirdPartyKextRequirement =
        "anchor apple generic and certificate 1[field.1.2.840.113635.100.6.2.6] and certificate leaf[field.1.2.840.113635.100.6.1.13] and certificate leaf[field.1.2.840.113635.100.6.1.18]";

    /// <summary>kext_tools' requirement for <c>com.apple.</c> kexts.</summary>
    public const string AppleKextRequirement = "anchor apple";

    /// <summary>The kext-load requirement for a bundle identifier: Apple's for <c>com.apple.</c>, else the third-party one.</summary>
    public static string KextRequirementFor(string? identifier) =>
        identifier is not null && identifier.StartsWith("com.apple.", StringComparison.Ordinal) ? AppleKextRequirement : ThirdPartyKextRequirement;

    private static readonly Requirement CompiledThirdPartyKextRequirement = Compile(ThirdPartyKextRequirement);
    private static readonly Requirement CompiledAppleKextRequirement = Compile(AppleKextRequirement);

    /// <summary>The compiled kext-load requirement for a bundle identifier (compiled once; a <see cref="Requirement"/> is immutable).</summary>
    public static Requirement KextRequirement(string? identifier) =>
        KextRequirementFor(identifier) == AppleKextRequirement ? CompiledAppleKextRequirement : CompiledThirdPartyKextRequirement;

    private static Requirement Compile(string expression) => Requirement.Parse(RequirementCompiler.Compile(expression), "requirement");

    /// <summary>Compiles <paramref name="expression"/> and evaluates it.</summary>
    public static RequirementEvaluation Evaluate(string expression, RequirementContext context) => Evaluate(Compile(expression), context);

    /// <summary>Evaluates a parsed requirement.</summary>
    public static RequirementEvaluation Evaluate(Requirement requirement, RequirementContext context)
    {
        ArgumentNullException.ThrowIfNull(requirement);
        ArgumentNullException.ThrowIfNull(context);
        var unsupported = new List<string>();
        var interp = new Interpreter(requirement.Bytes.Span, context, unsupported);
        var outcome = interp.Expr(0);
        return new RequirementEvaluation(requirement.Text, outcome, unsupported.Distinct().ToArray());
    }

    private static RequirementOutcome Of(bool value) => value ? RequirementOutcome.Satisfied : RequirementOutcome.NotSatisfied;

    private ref struct Interpreter
    {
        private readonly ReadOnlySpan<byte> _b;
        private readonly RequirementContext _ctx;
        private readonly List<string> _unsupported;
        private int _pos;

        public Interpreter(ReadOnlySpan<byte> blob, RequirementContext ctx, List<string> unsupported)
        {
            _b = blob;
            _ctx = ctx;
            _unsupported = unsupported;
            _pos = 12;
        }

        private uint U32()
        {
            var v = BinaryPrimitives.ReadUInt32BigEndian(_b[_pos..]);
            _pos += 4;
            return v;
        }

        private ReadOnlySpan<byte> Data()
        {
            var len = (int)U32();
            var d = _b.Slice(_pos, len);
            _pos += (len + 3) & ~3;
            return d;
        }

        private RequirementOutcome Unknown(string what)
        {
            _unsupported.Add(what);
            return RequirementOutcome.Unknown;
        }

        public RequirementOutcome Expr(int depth)
        {
            if (depth > Requirement.MaxDepth)
            {
                throw new InvalidOperationException("requirement nesting too deep");
            }
            var raw = U32();
            var op = (RequirementOpcode)(raw & 0x3FFFFFFF);
            switch (op)
            {
                case RequirementOpcode.False: return RequirementOutcome.NotSatisfied;
                case RequirementOpcode.True: return RequirementOutcome.Satisfied;
                case RequirementOpcode.Ident: return Of(Encoding.UTF8.GetString(Data()) == _ctx.Identifier);
                case RequirementOpcode.AppleGenericAnchor: return Of(_ctx.Anchor is TrustAnchorKind.AppleRoot or TrustAnchorKind.TestRoot);
                case RequirementOpcode.AppleAnchor: return Of(AppleSigned());
                case RequirementOpcode.AnchorHash:
                {
                    var cert = Cert(unchecked((int)U32()));
                    var hash = Data();
                    return Of(cert is not null && SHA1.HashData(cert.RawData).AsSpan().SequenceEqual(hash));
                }
                case RequirementOpcode.InfoKey:
                {
                    var key = Encoding.UTF8.GetString(Data());
                    var value = Encoding.UTF8.GetString(Data());
                    return Of(_ctx.InfoPlist?.GetString(key) == value);
                }
                case RequirementOpcode.And:
                {
                    var a = Expr(depth + 1);
                    var b = Expr(depth + 1);
                    return a == RequirementOutcome.NotSatisfied || b == RequirementOutcome.NotSatisfied ? RequirementOutcome.NotSatisfied
                        : a == RequirementOutcome.Satisfied && b == RequirementOutcome.Satisfied ? RequirementOutcome.Satisfied
                        : RequirementOutcome.Unknown;
                }
                case RequirementOpcode.Or:
                {
                    var a = Expr(depth + 1);
                    var b = Expr(depth + 1);
                    return a == RequirementOutcome.Satisfied || b == RequirementOutcome.Satisfied ? RequirementOutcome.Satisfied
                        : a == RequirementOutcome.NotSatisfied && b == RequirementOutcome.NotSatisfied ? RequirementOutcome.NotSatisfied
                        : RequirementOutcome.Unknown;
                }
                case RequirementOpcode.Not:
                    return Expr(depth + 1) switch
                    {
                        RequirementOutcome.Satisfied => RequirementOutcome.NotSatisfied,
                        RequirementOutcome.NotSatisfied => RequirementOutcome.Satisfied,
                        _ => RequirementOutcome.Unknown,
                    };
                case RequirementOpcode.CDHash:
                {
                    var h = Data();
                    var found = false;
                    foreach (var c in _ctx.CdHashes)
                    {
                        found |= c.AsSpan().SequenceEqual(h);
                    }
                    return Of(found);
                }
                case RequirementOpcode.InfoKeyField:
                {
                    var key = Encoding.UTF8.GetString(Data());
                    return Match(_ctx.InfoPlist?.GetString(key));
                }
                case RequirementOpcode.CertField:
                {
                    var cert = Cert(unchecked((int)U32()));
                    var field = Encoding.UTF8.GetString(Data());
                    string? value = null;
                    if (cert is not null)
                    {
                        value = CertFieldValue(cert, field, out var known);
                        if (!known)
                        {
                            SkipMatchOperand((RequirementMatchOperation)U32());
                            return Unknown($"certificate[{field}]");
                        }
                    }
                    return Match(value);
                }
                case RequirementOpcode.CertGeneric:
                {
                    var cert = Cert(unchecked((int)U32()));
                    var oid = DecodeOid(Data());
                    var ext = cert?.Extensions[oid];
                    var matchOp = (RequirementMatchOperation)U32();
                    if (matchOp is RequirementMatchOperation.Exists)
                    {
                        return Of(ext is not null);
                    }
                    if (matchOp is RequirementMatchOperation.Absent)
                    {
                        return Of(ext is null);
                    }
                    SkipMatchOperand(matchOp);
                    return Unknown($"certificate[field.{oid}] with a value comparison");
                }
                case RequirementOpcode.CertPolicy:
                {
                    _ = U32();
                    var oid = DecodeOid(Data());
                    var matchOp = (RequirementMatchOperation)U32();
                    SkipMatchOperand(matchOp);
                    return Unknown($"certificate[policy.{oid}]");
                }
                case RequirementOpcode.CertFieldDate:
                {
                    _ = U32();
                    var oid = DecodeOid(Data());
                    var matchOp = (RequirementMatchOperation)U32();
                    SkipMatchOperand(matchOp);
                    return Unknown($"certificate[timestamp.{oid}]");
                }
                case RequirementOpcode.EntitlementField:
                {
                    var key = Encoding.UTF8.GetString(Data());
                    var matchOp = (RequirementMatchOperation)U32();
                    SkipMatchOperand(matchOp);
                    return Unknown($"entitlement[{key}]");
                }
                case RequirementOpcode.TrustedCert: _ = U32(); return Unknown("certificate trusted (user trust settings)");
                case RequirementOpcode.TrustedCerts: return Unknown("anchor trusted (user trust settings)");
                case RequirementOpcode.NamedAnchor: Data(); return Unknown("named anchor");
                case RequirementOpcode.NamedCode: Data(); return Unknown("named code requirement");
                case RequirementOpcode.Platform: return Of(U32() == _ctx.Platform);
                case RequirementOpcode.Notarized: return Unknown("notarized (needs a ticket or Apple's service)");
                case RequirementOpcode.LegacyDevID: return Unknown("legacy Developer ID");
                default:
                    if ((raw & 0x80000000) != 0)
                    {
                        return RequirementOutcome.NotSatisfied;
                    }
                    if ((raw & 0x40000000) != 0)
                    {
                        return RequirementOutcome.Satisfied;
                    }
                    throw new InvalidOperationException($"unknown requirement opcode {raw}");
            }
        }

        private void SkipMatchOperand(RequirementMatchOperation op)
        {
            switch (op)
            {
                case RequirementMatchOperation.Exists or RequirementMatchOperation.Absent:
                    break;
                case >= RequirementMatchOperation.On and <= RequirementMatchOperation.OnOrAfter:
                    _pos += 8;
                    break;
                default:
                    Data();
                    break;
            }
        }

        private RequirementOutcome Match(string? value)
        {
            var op = (RequirementMatchOperation)U32();
            switch (op)
            {
                case RequirementMatchOperation.Exists: return Of(value is not null);
                case RequirementMatchOperation.Absent: return Of(value is null);
                case >= RequirementMatchOperation.On and <= RequirementMatchOperation.OnOrAfter:
                    _pos += 8;
                    return Unknown("date comparison");
            }
            var operand = Encoding.UTF8.GetString(Data());
            if (value is null)
            {
                return RequirementOutcome.NotSatisfied;
            }
            return Of(op switch
            {
                RequirementMatchOperation.Equal => value == operand,
                RequirementMatchOperation.Contains => value.Contains(operand, StringComparison.Ordinal),
                RequirementMatchOperation.BeginsWith => value.StartsWith(operand, StringComparison.Ordinal),
                RequirementMatchOperation.EndsWith => value.EndsWith(operand, StringComparison.Ordinal),
                RequirementMatchOperation.LessThan => string.CompareOrdinal(value, operand) < 0,
                RequirementMatchOperation.GreaterThan => string.CompareOrdinal(value, operand) > 0,
                RequirementMatchOperation.LessEqual => string.CompareOrdinal(value, operand) <= 0,
                RequirementMatchOperation.GreaterEqual => string.CompareOrdinal(value, operand) >= 0,
                _ => false,
            });
        }

        private readonly X509Certificate2? Cert(int slot)
        {
            var chain = _ctx.Chain;
            var index = slot < 0 ? chain.Count + slot : slot;
            return index >= 0 && index < chain.Count ? chain[index] : null;
        }

        private readonly bool AppleSigned()
        {
            // Security's appleSigned(): Apple-anchored and the first intermediate is Apple's own code-signing CA.
            if (_ctx.Anchor != TrustAnchorKind.AppleRoot || _ctx.Chain.Count < 2)
            {
                return false;
            }
            var intermediate = _ctx.Chain[^2];
            return CertFieldValue(intermediate, "subject.CN", out _) == "Apple Code Signing Certification Authority"
                && CertFieldValue(intermediate, "subject.O", out _) == "Apple Inc.";
        }

        private static string DecodeOid(ReadOnlySpan<byte> body)
        {
            var der = new byte[body.Length + 2];
            der[0] = 0x06;
            der[1] = checked((byte)body.Length);
            body.CopyTo(der.AsSpan(2));
            return AsnDecoder.ReadObjectIdentifier(der, AsnEncodingRules.DER, out _);
        }
    }

    /// <summary>The value of a <c>subject.X</c>/<c>issuer.X</c> field (CN, O, OU, C, L, ST, UID, email) of a certificate.</summary>
    public static string? CertFieldValue(X509Certificate2 cert, string field, out bool known)
    {
        known = true;
        var dot = field.IndexOf('.', StringComparison.Ordinal);
        if (dot < 0)
        {
            known = false;
            return null;
        }
        var which = field[..dot];
        var attr = field[(dot + 1)..];
        X500DistinguishedName? name = which switch { "subject" => cert.SubjectName, "issuer" => cert.IssuerName, _ => null };
        var oid = attr switch
        {
            "CN" => "2.5.4.3",
            "O" => "2.5.4.10",
            "OU" => "2.5.4.11",
            "C" => "2.5.4.6",
            "L" => "2.5.4.7",
            "ST" => "2.5.4.8",
            "UID" => AppleOids.UserId,
            "email" or "emailAddress" => "1.2.840.113549.1.9.1",
            _ => null,
        };
        if (name is null || oid is null)
        {
            known = false;
            return null;
        }
        foreach (var rdn in name.EnumerateRelativeDistinguishedNames())
        {
            if (rdn.GetSingleElementType().Value == oid)
            {
                return rdn.GetSingleElementValue();
            }
        }
        return null;
    }
}

using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Serialization;
using KextTrust.Boot.Policy;
using KextTrust.Formats;
using KextTrust.Formats.Image4;
using KextTrust.Formats.PropertyLists;
using KextTrust.Kexts.Image4;

namespace KextTrust.Cli;

/// <summary>One property: its 4CC, its type (integer, boolean, octet-string, ia5-string) and its value (integers in hex, bytes in hex).</summary>
internal sealed record Img4PropertyJson(string FourCC, string Type, string Value);

/// <summary>One object of a manifest (e.g. <c>krnl</c>) and its properties.</summary>
internal sealed record Img4ObjectJson(string FourCC, IReadOnlyList<Img4PropertyJson> Properties);

/// <summary>A manifest: where it was found (the plist key path for an SHSH blob), its properties, objects, signature size and certificates.</summary>
internal sealed record Img4ManifestJson(
    string Source,
    IReadOnlyList<Img4PropertyJson> Properties,
    IReadOnlyList<Img4ObjectJson> Objects,
    int SignatureBytes,
    IReadOnlyList<string> Certificates,
    IReadOnlyList<string>? LocalPolicy);

/// <summary>One keybag of an encrypted payload: type 1 production, 2 development; IV and wrapped key in hex.</summary>
internal sealed record Img4KeybagJson(long Type, string Iv, string Key);

/// <summary>A payload: type, description, stored size, how it is stored, the declared uncompressed size, keybags and SHA-384 of the IM4P.</summary>
internal sealed record Img4PayloadJson(
    string Type,
    string Description,
    long Size,
    string Encoding,
    long? UncompressedSize,
    IReadOnlyList<Img4KeybagJson>? Keybags,
    IReadOnlyList<Img4PropertyJson>? Properties,
    string Sha384);

/// <summary><c>kextrust img4 info --json</c>.</summary>
internal sealed record Img4InfoJson(string File, string Kind, Img4PayloadJson? Payload, IReadOnlyList<Img4ManifestJson> Manifests, IReadOnlyList<Img4PropertyJson>? RestoreInfo);

/// <summary>A certificate of a verified chain (leaf first).</summary>
internal sealed record Img4CertificateJson(string Subject, string Issuer, string Sha256, DateTimeOffset NotBefore, DateTimeOffset NotAfter);

/// <summary>The verdict on one manifest; <c>problems</c> as <c>{code, message}</c> with kebab-case codes.</summary>
internal sealed record Img4VerdictJson(
    string Source,
    bool Valid,
    string SignatureAlgorithm,
    string TrustAnchor,
    IReadOnlyList<Img4CertificateJson> Chain,
    IReadOnlyList<string> Constraints,
    IReadOnlyList<Img4ProblemJson> Problems);

/// <summary>A problem found by <c>img4 verify</c>.</summary>
internal sealed record Img4ProblemJson(string Code, string Message);

/// <summary><c>kextrust img4 verify --json</c>.</summary>
internal sealed record Img4VerifyJson(string File, bool Valid, string? TrustedByRequest, IReadOnlyList<Img4VerdictJson> Manifests);

/// <summary><c>kextrust img4 extract --json</c>.</summary>
internal sealed record Img4ExtractJson(string File, string Output, string Type, string Encoding, long Bytes, string Sha256);

/// <summary>Compile-time JSON metadata of the <c>img4</c> documents.</summary>
[JsonSerializable(typeof(Img4InfoJson))]
[JsonSerializable(typeof(Img4VerifyJson))]
[JsonSerializable(typeof(Img4ExtractJson))]
internal sealed partial class Img4JsonContext : JsonSerializerContext;

/// <summary>
/// <c>kextrust img4 info|verify|extract FILE</c>: Apple's Image4 files as people hold them (IMG4, IM4P, IM4M such as an
/// <c>apticket.der</c> or a LocalPolicy, IM4R, and SHSH/SHSH2 plists whose <c>ApImg4Ticket</c> holds an IM4M).
/// </summary>
internal static class Img4Command
{
    /// <summary>The plist key of the manifest in an SHSH blob.</summary>
    public const string TicketKey = "ApImg4Ticket";

    /// <summary>Builds <c>img4</c> and its subcommands.</summary>
    public static Command Create(CliOutput output)
    {
        var img4 = new Command("img4", "Apple's Image4 files: IMG4, IM4P, IM4M (APTickets, LocalPolicy), IM4R, and SHSH/SHSH2 blobs (their ApImg4Ticket).");
        img4.Subcommands.Add(Info(output));
        img4.Subcommands.Add(Verify(output));
        img4.Subcommands.Add(Extract(output));
        return img4;
    }

    private static Argument<string> FileArgument() => new("FILE") { Description = "An IMG4, IM4P, IM4M, IM4R (DER), or an SHSH/SHSH2 plist." };

    private static Command Info(CliOutput output)
    {
        var file = FileArgument();
        var json = BootCommands.JsonOption();
        var cmd = new Command("info", "Show what the file holds: payload type, description, compression and keybags; manifest properties, objects and certificates (and, for a LocalPolicy, its settings as bputil -d shows them); restore info.")
        {
            file, json,
        };
        cmd.SetAction(r => Guard(output, r.GetValue(json), () =>
        {
            var path = r.GetValue(file)!;
            var info = Describe(Load(path));
            if (r.GetValue(json))
            {
                output.WriteJson(info);
            }
            else
            {
                WriteInfo(output, info);
            }
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static Command Verify(CliOutput output)
    {
        var file = FileArgument();
        var json = BootCommands.JsonOption();
        var trustRoot = new Option<string?>("--trust-root") { Description = "Also trust this root certificate (PEM or DER), e.g. a Secure Enclave's certificate for a LocalPolicy. Never needed for Apple-signed manifests; the output says when it was used." };
        var cmd = new Command("verify", "Verify each manifest: the signature over MANB with the manifest's certificate, the chain to the pinned Apple roots (Apple Root CA, Apple Secure Boot Root CA - G2), the certificate's manifest constraints; for an IMG4 also the payload's DGST. Exit 0 valid, 1 not valid, 2 unreadable.")
        {
            file, trustRoot, json,
        };
        cmd.SetAction(r => Guard(output, r.GetValue(json), () =>
        {
            var path = r.GetValue(file)!;
            var loaded = Load(path);
            using var root = r.GetValue(trustRoot) is { } rootPath ? LoadRoot(rootPath) : null;
            var verdicts = new List<Img4VerdictJson>();
            foreach (var (source, manifest) in loaded.Manifests)
            {
                var v = loaded.Document?.Image is { } image && source == "IMG4 [0]" ? Image4Verifier.Verify(image, root) : Image4Verifier.Verify(manifest, root);
                verdicts.Add(new(source, v.Valid, v.SignatureAlgorithm, MachineOption.Kebab(v.Anchor),
                    [.. v.Chain.Select(c => new Img4CertificateJson(c.Subject, c.Issuer, c.Sha256, c.NotBefore, c.NotAfter))],
                    [.. v.Constraints.Select(c => $"{c.Group} {c.FourCC} {(c.RequiredValue is null ? "any" : Value(c.RequiredValue).Value)}")],
                    [.. v.Problems.Select(p => new Img4ProblemJson(MachineOption.Kebab(p.Code), p.Detail))]));
            }
            if (verdicts.Count == 0)
            {
                return BootCommands.Fail(output, r.GetValue(json), "NoManifest", $"{path}: holds no manifest to verify ({loaded.Kind})", ExitCodes.InputError);
            }
            var report = new Img4VerifyJson(path, verdicts.All(v => v.Valid), root?.Subject, verdicts);
            if (r.GetValue(json))
            {
                output.WriteJson(report);
            }
            else
            {
                foreach (var v in verdicts)
                {
                    output.Out.WriteLine($"{v.Source}: {(v.Valid ? "valid" : "NOT VALID")} ({v.SignatureAlgorithm}; trust anchor: {v.TrustAnchor})");
                    foreach (var c in v.Chain)
                    {
                        output.Out.WriteLine($"  certificate: {c.Subject} (issuer {c.Issuer}; {c.NotBefore:yyyy-MM-dd} to {c.NotAfter:yyyy-MM-dd}; sha256 {c.Sha256})");
                    }
                    if (v.Constraints.Count > 0)
                    {
                        output.Out.WriteLine($"  certificate constraints: {string.Join(", ", v.Constraints)}");
                    }
                    foreach (var p in v.Problems)
                    {
                        output.Out.WriteLine($"  problem {p.Code}: {p.Message}");
                    }
                }
                if (root is not null)
                {
                    output.Out.WriteLine($"note: the root '{root.Subject}' was trusted by request (--trust-root); it is not Apple's");
                }
            }
            return report.Valid ? ExitCodes.Ok : ExitCodes.Failed;
        }));
        return cmd;
    }

    private static Command Extract(CliOutput output)
    {
        var file = FileArgument();
        var outPath = new Option<string>("-o", "--output") { Description = "Where to write the payload.", Required = true, HelpName = "FILE" };
        var raw = new Option<bool>("--raw") { Description = "Write the payload bytes as stored (compressed or encrypted), without decompressing." };
        var json = BootCommands.JsonOption();
        var cmd = new Command("extract", "Write the payload of an IM4P or IMG4: decompressed when it is LZSS (complzss); LZFSE-compressed and encrypted (KBAG) payloads are answered with what they are (exit 1) unless --raw.")
        {
            file, outPath, raw, json,
        };
        cmd.SetAction(r => Guard(output, r.GetValue(json), () =>
        {
            var path = r.GetValue(file)!;
            var asJson = r.GetValue(json);
            var doc = Load(path).Document;
            var payload = doc?.Payload ?? doc?.Image?.Payload;
            if (payload is null)
            {
                return BootCommands.Fail(output, asJson, "NoPayload", $"{path}: holds no payload (an IM4P or IMG4 is needed)", ExitCodes.InputError);
            }
            var encoding = Im4PayloadData.EncodingOf(payload);
            byte[] bytes;
            if (r.GetValue(raw) || encoding == Im4PayloadEncoding.Raw)
            {
                bytes = payload.Data.ToArray();
            }
            else if (encoding == Im4PayloadEncoding.Lzss)
            {
                bytes = ComplzssHeader.Decompress(payload.Data.Span, $"{path} (IM4P payload)");
            }
            else
            {
                var what = encoding == Im4PayloadEncoding.Lzfse
                    ? "compressed with LZFSE: no maintained LZFSE library is available here (none in Debian or on this NuGet feed); write it as stored with --raw"
                    : "encrypted (the IM4P carries keybags, wrapped with a device's GID key); write it as stored with --raw";
                return BootCommands.Fail(output, asJson, encoding == Im4PayloadEncoding.Lzfse ? "CompressedWithLzfse" : "Encrypted",
                    $"{path}: the '{payload.Type}' payload is {what}", ExitCodes.Failed);
            }
            var target = r.GetValue(outPath)!;
            File.WriteAllBytes(target, bytes);
            var result = new Img4ExtractJson(path, target, payload.Type, MachineOption.Kebab(r.GetValue(raw) ? Im4PayloadEncoding.Raw : encoding),
                bytes.Length, Convert.ToHexStringLower(SHA256.HashData(bytes)));
            if (asJson)
            {
                output.WriteJson(result);
            }
            else
            {
                output.Out.WriteLine($"wrote {bytes.Length} bytes of the '{payload.Type}' payload ({(encoding == Im4PayloadEncoding.Lzss && !r.GetValue(raw) ? "decompressed from LZSS" : "as stored")}) to {target}");
            }
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    /// <summary>A file read: its kind, the decoded DER document (null for a plist), and every manifest with where it was found.</summary>
    private sealed record Loaded(string Path, string Kind, Im4Document? Document, IReadOnlyList<(string Source, Im4Manifest Manifest)> Manifests);

    private static Loaded Load(string path)
    {
        var bytes = File.ReadAllBytes(path);
        if (Im4Document.LooksLikeDer(bytes))
        {
            var doc = Im4Document.Decode(bytes, path);
            var manifests = doc.Kind switch
            {
                Im4Kind.Manifest => [("IM4M", doc.Manifest!)],
                Im4Kind.Img4 => new List<(string, Im4Manifest)> { ("IMG4 [0]", doc.Image!.Manifest) },
                _ => [],
            };
            return new(path, MachineOption.Kebab(doc.Kind), doc, manifests);
        }
        // An SHSH/SHSH2 blob: a property list whose ApImg4Ticket (and that of nested dictionaries such as updateInstall,
        // noNonce) holds a DER IM4M.
        var root = PropertyList.Parse(bytes, path) as PlistDictionary
            ?? throw new Image4FormatException(path, 0, "neither a DER Image4 (it starts with 0x30) nor a property-list dictionary (an SHSH blob)");
        var tickets = new List<(string, Im4Manifest)>();
        void Collect(PlistDictionary dict, string prefix)
        {
            foreach (var (key, value) in dict.Entries)
            {
                var name = prefix + key;
                if (key == TicketKey && value is PlistData data)
                {
                    tickets.Add((name, Im4Manifest.FromBytes(data.Memory, $"{path} ({name})")));
                }
                else if (value is PlistDictionary nested)
                {
                    Collect(nested, name + "/");
                }
            }
        }
        Collect(root, "");
        if (tickets.Count == 0)
        {
            throw new Image4FormatException(path, 0, $"the property list holds no {TicketKey} (an SHSH blob's manifest)");
        }
        return new(path, "shsh", null, tickets);
    }

    private static Img4InfoJson Describe(Loaded loaded)
    {
        var doc = loaded.Document;
        var payload = doc?.Payload ?? doc?.Image?.Payload;
        var restore = doc?.RestoreInfo ?? doc?.Image?.RestoreInfo;
        return new(loaded.Path, loaded.Kind, payload is null ? null : DescribePayload(payload),
            [.. loaded.Manifests.Select(m => DescribeManifest(m.Source, m.Manifest))],
            restore is null ? null : Properties(restore.Properties));
    }

    private static Img4PayloadJson DescribePayload(Im4Payload p) => new(
        p.Type, p.Description, p.Data.Length, MachineOption.Kebab(Im4PayloadData.EncodingOf(p)),
        p.Compression is { } c ? checked((long)c.UncompressedSize) : null,
        p.Keybags is { } k ? Keybags(k) : null,
        p.Properties is { } props ? Properties(props) : null,
        p.ComputeDigest().ToString());

    /// <summary>Keybags: <c>SEQUENCE OF SEQUENCE { INTEGER type, OCTET STRING iv, OCTET STRING key }</c>; unreadable ones are reported as none.</summary>
    private static IReadOnlyList<Img4KeybagJson> Keybags(ReadOnlyMemory<byte> der)
    {
        try
        {
            var reader = new System.Formats.Asn1.AsnReader(der, System.Formats.Asn1.AsnEncodingRules.DER).ReadSequence();
            var list = new List<Img4KeybagJson>();
            while (reader.HasData)
            {
                var kbag = reader.ReadSequence();
                var type = kbag.ReadInteger();
                list.Add(new((long)type, Convert.ToHexStringLower(kbag.ReadOctetString()), Convert.ToHexStringLower(kbag.ReadOctetString())));
            }
            return list;
        }
        catch (Exception e) when (e is System.Formats.Asn1.AsnContentException or OverflowException or InvalidCastException)
        {
            return [];
        }
    }

    private static Img4ManifestJson DescribeManifest(string source, Im4Manifest m)
    {
        var certificates = new List<string>();
        foreach (var der in m.CertificateChain)
        {
            try
            {
                using var c = X509CertificateLoader.LoadCertificate(der.Span);
                certificates.Add(c.Subject);
            }
            catch (CryptographicException e)
            {
                certificates.Add($"(unreadable certificate: {e.Message})");
            }
        }
        IReadOnlyList<string>? localPolicy = null;
        try
        {
            // A manifest that reads as a LocalPolicy (vuid, lpnh, ECID and the LocalPolicy keys only) is shown as bputil -d would.
            localPolicy = [.. BputilDisplay.Lines(LocalPolicy.FromManifest(m), verified: false, currentNonceHash: null).Where(l => !l.Contains("Pairing Integrity", StringComparison.Ordinal))];
        }
        catch (LocalPolicyException)
        {
        }
        return new(source, Properties(m.ManifestProperties),
            [.. m.Body.Objects.Select(o => new Img4ObjectJson(o.ObjectFourCC, Properties(o.Properties)))],
            m.Signature.Length, certificates, localPolicy);
    }

    private static IReadOnlyList<Img4PropertyJson> Properties(Im4PropertySet set) =>
        [.. set.Select(p => { var (type, value) = Value(p.Value); return new Img4PropertyJson(p.FourCC, type, value); })];

    private static (string Type, string Value) Value(Im4Value value) => value switch
    {
        Im4Integer i => ("integer", "0x" + i.Value.ToString("x", CultureInfo.InvariantCulture)),
        Im4Boolean b => ("boolean", b.Value ? "true" : "false"),
        Im4OctetString o => ("octet-string", Convert.ToHexStringLower(o.Value.Span)),
        Im4String s => ("ia5-string", s.Value),
        _ => ("unknown", value.ToString()),
    };

    private static void WriteInfo(CliOutput output, Img4InfoJson info)
    {
        var o = output.Out;
        o.WriteLine($"{info.File}: {info.Kind}");
        if (info.Payload is { } p)
        {
            o.WriteLine($"payload (IM4P): type '{p.Type}', description \"{p.Description}\", {p.Size} bytes, {p.Encoding}"
                + (p.UncompressedSize is { } u ? $", uncompressed size {u}" : "") + $", SHA-384 of the IM4P {p.Sha384}");
            foreach (var k in p.Keybags ?? [])
            {
                o.WriteLine($"  keybag type {k.Type}: iv {k.Iv} key {k.Key}");
            }
            foreach (var prop in p.Properties ?? [])
            {
                o.WriteLine($"  PAYP {prop.FourCC} ({prop.Type}): {prop.Value}");
            }
        }
        foreach (var m in info.Manifests)
        {
            o.WriteLine($"manifest (IM4M) {m.Source}: {m.Properties.Count} properties, {m.Objects.Count} objects, {m.SignatureBytes}-byte signature");
            foreach (var prop in m.Properties)
            {
                o.WriteLine($"  MANP {prop.FourCC} ({prop.Type}): {prop.Value}");
            }
            foreach (var obj in m.Objects)
            {
                o.WriteLine($"  {obj.FourCC}: {string.Join(", ", obj.Properties.Select(x => $"{x.FourCC}={x.Value}"))}");
            }
            foreach (var c in m.Certificates)
            {
                o.WriteLine($"  certificate: {c}");
            }
            if (m.LocalPolicy is { } lines)
            {
                o.WriteLine("  as a LocalPolicy (bputil -d):");
                foreach (var line in lines)
                {
                    o.WriteLine("    " + line);
                }
            }
        }
        foreach (var prop in info.RestoreInfo ?? [])
        {
            o.WriteLine($"restore info (IM4R) {prop.FourCC} ({prop.Type}): {prop.Value}");
        }
    }

    private static X509Certificate2 LoadRoot(string path)
    {
        try
        {
            return X509CertificateLoader.LoadCertificateFromFile(path);
        }
        catch (CryptographicException e)
        {
            throw new IOException($"{path}: cannot read the trust root: {e.Message}", e);
        }
    }

    /// <summary>Runs a subcommand: a file that does not decode is exit 2 with the message naming file, offset and rule.</summary>
    private static int Guard(CliOutput output, bool json, Func<int> body)
    {
        try
        {
            return body();
        }
        catch (KextTrustFormatException e)
        {
            return BootCommands.Fail(output, json, "Malformed", e.Message, ExitCodes.InputError);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return BootCommands.Fail(output, json, "IOError", e.Message, ExitCodes.InputError);
        }
    }

    /// <summary>PascalCase → kebab-case (AppleSecureBootRootCaG2 → apple-secure-boot-root-ca-g2).</summary>
}

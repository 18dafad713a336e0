using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using KextTrust.Formats;
using KextTrust.Formats.CodeSigning;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Bundles;

namespace KextTrust.Kexts.Signing;

/// <summary>Who signs: a leaf certificate with its private key, and the chain certificates to embed in the CMS.</summary>
public sealed class KextSigningIdentity : IDisposable
{
    private readonly bool _owned;

    private KextSigningIdentity(X509Certificate2 leaf, IReadOnlyList<X509Certificate2> chain, bool owned)
    {
        Leaf = leaf;
        Chain = chain;
        _owned = owned;
    }

    /// <summary>The signing certificate (has its private key).</summary>
    public X509Certificate2 Leaf { get; }

    /// <summary>Intermediates (and optionally the root) embedded after the leaf.</summary>
    public IReadOnlyList<X509Certificate2> Chain { get; }

    /// <summary>The team id: the leaf subject's OU.</summary>
    public string? TeamId => RequirementEvaluator.CertFieldValue(Leaf, "subject.OU", out _);

    /// <summary>From a certificate with key and its chain; the caller keeps ownership (Dispose leaves them alone).</summary>
    public static KextSigningIdentity Create(X509Certificate2 leafWithKey, IEnumerable<X509Certificate2> chain)
    {
        ArgumentNullException.ThrowIfNull(leafWithKey);
        ArgumentNullException.ThrowIfNull(chain);
        if (!leafWithKey.HasPrivateKey)
        {
            throw new ArgumentException($"the certificate '{leafWithKey.Subject}' has no private key", nameof(leafWithKey));
        }
        return new KextSigningIdentity(leafWithKey, chain.ToArray(), owned: false);
    }

    /// <summary>Loads a PKCS#12: the certificate with a private key is the leaf, the others the chain.</summary>
    public static KextSigningIdentity FromPkcs12(string path, string? password)
    {
        X509Certificate2Collection all;
        try
        {
            all = X509CertificateLoader.LoadPkcs12CollectionFromFile(path, password);
        }
        catch (CryptographicException e)
        {
            throw new KextSigningException(path, -1, $"cannot read the PKCS#12: {e.Message}", e);
        }
        var leaf = all.FirstOrDefault(c => c.HasPrivateKey) ?? throw new KextSigningException(path, -1, "the PKCS#12 holds no certificate with a private key");
        return new KextSigningIdentity(leaf, all.Where(c => !ReferenceEquals(c, leaf)).ToArray(), owned: true);
    }

    /// <summary>Loads a PEM certificate and PEM private key, plus optional PEM chain certificates.</summary>
    public static KextSigningIdentity FromPem(string certificatePath, string keyPath, string? chainPath)
    {
        try
        {
            var leaf = X509Certificate2.CreateFromPemFile(certificatePath, keyPath);
            var chain = new X509Certificate2Collection();
            if (chainPath is not null)
            {
                chain.ImportFromPemFile(chainPath);
            }
            return new KextSigningIdentity(leaf, chain.ToArray(), owned: true);
        }
        catch (CryptographicException e)
        {
            throw new KextSigningException(certificatePath, -1, $"cannot read the PEM certificate/key: {e.Message}", e);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (!_owned)
        {
            return;
        }
        Leaf.Dispose();
        foreach (var c in Chain)
        {
            c.Dispose();
        }
    }
}

/// <summary>Options of <see cref="KextSigner.Sign"/>.</summary>
public sealed record KextSigningOptions
{
    /// <summary>The identity; null signs ad-hoc (CS_ADHOC, no CMS).</summary>
    public KextSigningIdentity? Identity { get; init; }

    /// <summary>Add a SHA-1 CodeDirectory (primary, slot 0) with the SHA-256 one as alternate, as codesign does for older OS targets.</summary>
    public bool IncludeSha1 { get; init; }

    /// <summary>The CMS signing time; null = now.</summary>
    public DateTimeOffset? SigningTime { get; init; }
}

/// <summary>What was signed: the bundle, its cdhashes per slice (primary CodeDirectory), its designated requirement, and nested results.</summary>
public sealed record KextSigningResult(string BundlePath, string Identifier, IReadOnlyList<string> CdHashes, string? DesignatedRequirement, IReadOnlyList<KextSigningResult> Nested);

/// <summary>
/// Signs kext bundles as codesign does: nested plug-ins first, then <c>_CodeSignature/CodeResources</c> (Apple's
/// default rules and rules2, <c>files</c> SHA-1 and <c>files2</c> SHA-1 + SHA-256, nested code by cdhash and
/// requirement), then every slice of the executable (CodeDirectory SHA-256, optionally SHA-1 + SHA-256, special
/// slots Info.plist / requirements / CodeResources, the designated requirement, CMS with the signer's chain, or
/// ad-hoc). Files are replaced atomically (written beside, then moved over).
/// </summary>
public static class KextSigner
{
    /// <summary>The designated requirement codesign derives for a Developer ID identity.</summary>
    internal static string DeveloperIdDesignatedRequirement(string identifier, string teamId) =>
        $"identifier \"{identifier}\" and anchor apple generic and certificate 1[field.1.2.840.113635.100.6.2.6] /* exists */ and certificate leaf[field.1.2.840.113635.100.6.1.13] /* exists */ and certificate leaf[subject.OU] = \"{teamId}\"";

    /// <summary>Signs the bundle at <paramref name="bundlePath"/> in place.</summary>
    /// <exception cref="KextSigningException">The bundle cannot be signed (no identifier, codeless, no header room…).</exception>
    public static KextSigningResult Sign(string bundlePath, KextSigningOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        KextBundle bundle;
        try
        {
            bundle = KextBundle.Open(bundlePath);
        }
        catch (KextBundleException e)
        {
            throw new KextSigningException(bundlePath, -1, e.Reason, e);
        }
        var id = bundle.BundleId ?? throw new KextSigningException(bundle.InfoPlistPath, -1, "CFBundleIdentifier is missing: the signing identifier comes from it");
        if (bundle.IsCodeless)
        {
            throw new KextSigningException(bundle.Path, -1, "codeless kexts (no CFBundleExecutable) need a detached _CodeSignature/CodeSignature, which is not supported");
        }
        if (!bundle.HasExecutable)
        {
            throw new KextSigningException(bundle.ExecutablePath ?? bundle.Path, -1, "the executable named by CFBundleExecutable is missing");
        }
        var nested = bundle.PlugIns.Select(p => Sign(p.Path, options)).ToArray();

        var resources = BuildCodeResources(bundle);
        Directory.CreateDirectory(bundle.CodeSignaturePath);
        var resourcesPath = Path.Combine(bundle.CodeSignaturePath, "CodeResources");
        var resourcesBytes = resources.ToXml();
        WriteAtomic(resourcesPath, resourcesBytes);
        var infoBytes = File.ReadAllBytes(bundle.InfoPlistPath);

        var identity = options.Identity;
        var team = identity?.TeamId;
        if (identity is not null && string.IsNullOrEmpty(team))
        {
            throw new KextSigningException(bundle.Path, -1, $"the signing certificate '{identity.Leaf.Subject}' has no OU (team id)");
        }
        var designated = identity is null ? null : DeveloperIdDesignatedRequirement(id, team!);
        var requirements = designated is null ? RequirementCompiler.BuildSet([]) : RequirementCompiler.CompileSet($"designated => {designated}");
        var time = options.SigningTime ?? DateTimeOffset.UtcNow;
        var exePath = bundle.ExecutablePath!;
        var exe = File.ReadAllBytes(exePath);
        MachOFile file;
        try
        {
            file = MachOFile.FromBytes(exe, exePath);
        }
        catch (KextTrustFormatException e)
        {
            throw new KextSigningException(exePath, e.Offset, e.Rule, e);
        }
        var cdhashes = new List<string>();
        var signedSlices = new List<ReadOnlyMemory<byte>>();
        foreach (var slice in file.Slices)
        {
            var signedSlice = MachOSignatureWriter.Sign(slice.Data, exePath, s =>
            {
                var types = options.IncludeSha1 ? new[] { CodeSigningHashType.Sha1, CodeSigningHashType.Sha256 } : [CodeSigningHashType.Sha256];
                var cds = types.Select(t => new CodeDirectoryBuilder
                {
                    Identifier = id,
                    TeamId = team,
                    HashType = t,
                    Flags = identity is null ? CodeDirectoryFlags.Adhoc : CodeDirectoryFlags.None,
                    ExecSegBase = s.TextFileOffset,
                    ExecSegLimit = s.TextFileSize,
                    ExecSegFlags = s.FileType == MachOFileType.Execute ? 1UL : 0UL,
                    SpecialSlotHashes = new Dictionary<int, byte[]>
                    {
                        [1] = CodeSigningHash.ComputeSlot(t, infoBytes),
                        [2] = CodeSigningHash.ComputeSlot(t, requirements),
                        [3] = CodeSigningHash.ComputeSlot(t, resourcesBytes),
                    },
                }.Build(s.Code.Span)).ToArray();
                var cms = identity is null ? [] : CodeSignatureCmsSigner.Sign(cds, identity.Leaf, identity.Chain, time);
                return new EmbeddedSignatureBuilder
                {
                    CodeDirectory = cds[0],
                    AlternateCodeDirectories = cds[1..],
                    Requirements = requirements,
                    Cms = cms,
                }.Build();
            });
            var parsed = MachOFile.FromBytes(signedSlice, exePath).Slices[0];
            cdhashes.Add(Convert.ToHexStringLower(EmbeddedSignature.Parse(parsed.CodeSignatureData, exePath).CodeDirectory.ComputeCdHash()));
            signedSlices.Add(signedSlice);
        }
        var output = file.IsFat ? MachOFatBuilder.Build(signedSlices) : signedSlices[0].ToArray();
        WriteAtomic(exePath, output);
        return new KextSigningResult(bundle.Path, id, cdhashes, designated, nested);
    }

    /// <summary>The resource seal of <paramref name="bundle"/> with Apple's default rules (nested code must already be signed).</summary>
    internal static CodeResources BuildCodeResources(KextBundle bundle)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        var contents = bundle.ContentsPath;
        var files2 = new Dictionary<string, CodeResourceEntry>(StringComparer.Ordinal);
        foreach (var item in BundleResourceScanner.Scan(contents, bundle.ExecutablePath, CodeResources.DefaultRules2))
        {
            files2[item.RelativePath] = item.Kind switch
            {
                BundleItemKind.Symlink => new CodeResourceEntry(item.RelativePath, null, null, false,
                    new FileInfo(item.FullPath).LinkTarget ?? new DirectoryInfo(item.FullPath).LinkTarget, null, null),
                BundleItemKind.NestedBundle => NestedEntry(item),
                _ => FileEntry(item, item.Rule.Optional),
            };
        }
        var files = new Dictionary<string, CodeResourceEntry>(StringComparer.Ordinal);
        foreach (var item in BundleResourceScanner.Scan(contents, bundle.ExecutablePath, CodeResources.DefaultRules).Where(i => i.Kind == BundleItemKind.File))
        {
            var (sha1, _) = BundleResourceScanner.HashFile(item.FullPath);
            files[item.RelativePath] = new CodeResourceEntry(item.RelativePath, sha1, null, item.Rule.Optional, null, null, null);
        }
        return new CodeResources(CodeResources.DefaultRules, CodeResources.DefaultRules2, files, files2);
    }

    private static CodeResourceEntry FileEntry(BundleItem item, bool optional)
    {
        var (sha1, sha256) = BundleResourceScanner.HashFile(item.FullPath);
        return new CodeResourceEntry(item.RelativePath, sha1, sha256, optional, null, null, null);
    }

    private static CodeResourceEntry NestedEntry(BundleItem item)
    {
        var nested = KextBundle.Open(item.FullPath);
        if (!nested.HasExecutable)
        {
            throw new KextSigningException(item.FullPath, -1, "nested code has no executable to seal by cdhash");
        }
        using var file = MachOFile.Open(nested.ExecutablePath!);
        var slice = file.Slices[0];
        if (slice.CodeSignature is null)
        {
            throw new KextSigningException(nested.ExecutablePath!, -1, "nested code is not signed: sign it first");
        }
        var sig = EmbeddedSignature.Parse(slice.CodeSignatureData, nested.ExecutablePath);
        var requirement = sig.Requirements?.Designated?.Text ?? $"cdhash H\"{Convert.ToHexStringLower(sig.CodeDirectory.ComputeCdHash())}\"";
        return new CodeResourceEntry(item.RelativePath, null, null, false, null, sig.CodeDirectory.ComputeCdHash(), requirement);
    }

    /// <summary>Writes <paramref name="bytes"/> to a temporary file beside <paramref name="path"/>, then moves it over.</summary>
    internal static void WriteAtomic(string path, byte[] bytes)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var tmp = Path.Combine(dir, $".{Path.GetFileName(path)}.kextrust-{Guid.NewGuid():N}.tmp");
        try
        {
            File.WriteAllBytes(tmp, bytes);
            if (File.Exists(path) && !OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(tmp, File.GetUnixFileMode(path));
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            File.Delete(tmp);
            throw;
        }
    }
}

using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using KextTrust.Formats.Image4;
using KextTrust.Kexts.Signing;

namespace KextTrust.Kexts.Image4;

/// <summary>Why an Image4 manifest or image did not verify.</summary>
public enum Image4ProblemCode
{
    /// <summary>The manifest carries no certificate.</summary>
    NoCertificate,
    /// <summary>A certificate of the manifest cannot be decoded.</summary>
    CertificateUnreadable,
    /// <summary>The signing certificate's key is neither RSA nor ECDSA.</summary>
    UnsupportedKey,
    /// <summary>The signature over the MANB SET does not verify with the signing certificate's key.</summary>
    SignatureInvalid,
    /// <summary>The certificates do not chain to a pinned Apple root (or the given root).</summary>
    ChainUntrusted,
    /// <summary>The signing certificate's constraint extension cannot be decoded.</summary>
    ConstraintsUnreadable,
    /// <summary>A manifest property has another value than the signing certificate requires.</summary>
    ConstraintViolated,
    /// <summary>An IMG4's payload type has no object entry in its manifest.</summary>
    PayloadNotInManifest,
    /// <summary>An IMG4's payload digest differs from its manifest's DGST.</summary>
    DigestMismatch,
}

/// <summary>One failed check, with what was found.</summary>
public sealed record Image4Problem(Image4ProblemCode Code, string Detail)
{
    /// <inheritdoc/>
    public override string ToString() => $"{Code}: {Detail}";
}

/// <summary>Which root a manifest's certificates chain to.</summary>
public enum Image4TrustAnchor
{
    /// <summary>None: the chain is not trusted.</summary>
    None,
    /// <summary>The pinned Apple Root CA (older manifests: leaf ← Apple Secure Boot Certification Authority ← Apple Root CA).</summary>
    AppleRootCa,
    /// <summary>The pinned Apple Secure Boot Root CA - G2 (newer manifests: the TSS leaf alone, issued by this root).</summary>
    AppleSecureBootRootCaG2,
    /// <summary>The root the caller named (<c>--trust-root</c>), e.g. a Secure Enclave's certificate.</summary>
    GivenRoot,
}

/// <summary>A certificate of the chain as built (leaf first).</summary>
public sealed record Image4ChainCertificate(string Subject, string Issuer, string Sha256, DateTimeOffset NotBefore, DateTimeOffset NotAfter);

/// <summary>
/// The verdict on an Image4 manifest: <see cref="Valid"/> when the signature over the MANB SET verifies with the signing
/// certificate, that certificate chains to a pinned root, and no property breaks the certificate's constraints.
/// Validity dates are reported, not enforced: the boot ROM that checks these manifests has no clock, and Apple's older
/// Secure Boot certificates expired in 2022 while the manifests they signed still boot.
/// </summary>
public sealed record Image4Verification(
    string SignatureAlgorithm,
    Image4TrustAnchor Anchor,
    IReadOnlyList<Image4ChainCertificate> Chain,
    IReadOnlyList<Im4Constraint> Constraints,
    IReadOnlyList<Image4Problem> Problems)
{
    /// <summary>True when no check failed.</summary>
    public bool Valid => Problems.Count == 0;

    /// <summary>True if some problem has this code.</summary>
    public bool Has(Image4ProblemCode code) => Problems.Any(p => p.Code == code);
}

/// <summary>
/// Verifies Image4 manifests as Apple's boot chain does: the signature over the exact DER of the MANB SET with the
/// signing certificate's key (the last certificate; SHA-1 when the manifest carries two certificates, SHA-384 when it
/// carries one, as img4tool's <c>isIM4MSignatureValid</c> decides; RSA PKCS #1 v1.5 or ECDSA), the chain of the
/// manifest's certificates to ONLY the pinned Apple roots (or the caller's root), and the manifest constraints of
/// extension <c>1.2.840.113635.100.6.1.15</c>: a constraint with a value must be met by every property of that 4CC
/// in its group (MANP, or every object for OBJP); a constraint <c>[0] NULL</c> allows any value and is reported only.
/// </summary>
public static class Image4Verifier
{
    /// <summary>Verifies a manifest; <paramref name="trustRoot"/> is trusted besides the pinned Apple roots when given.</summary>
    public static Image4Verification Verify(Im4Manifest manifest, X509Certificate2? trustRoot = null)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        var problems = new List<Image4Problem>();
        if (manifest.CertificateChain.Count == 0)
        {
            return new("none", Image4TrustAnchor.None, [], [], [new(Image4ProblemCode.NoCertificate, "the manifest carries no certificate")]);
        }
        var certificates = new List<X509Certificate2>();
        try
        {
            for (var i = 0; i < manifest.CertificateChain.Count; i++)
            {
                try
                {
                    certificates.Add(X509CertificateLoader.LoadCertificate(manifest.CertificateChain[i].Span));
                }
                catch (CryptographicException e)
                {
                    return new("none", Image4TrustAnchor.None, [], [],
                        [new(Image4ProblemCode.CertificateUnreadable, $"certificate {i} cannot be decoded: {e.Message}")]);
                }
            }
            var leaf = certificates[^1];
            var hash = certificates.Count == 2 ? HashAlgorithmName.SHA1 : HashAlgorithmName.SHA384;
            var algorithm = CheckSignature(manifest, leaf, hash, problems);
            var (anchor, chain) = CheckChain(leaf, certificates, trustRoot, problems);
            var constraints = CheckConstraints(manifest, leaf, problems);
            return new(algorithm, anchor, chain, constraints, problems);
        }
        finally
        {
            foreach (var c in certificates)
            {
                c.Dispose();
            }
        }
    }

    /// <summary>
    /// Verifies an IMG4: its manifest as <see cref="Verify(Im4Manifest, X509Certificate2?)"/>, and the payload against
    /// the manifest's object of the payload's type: <c>DGST</c> equal to SHA-384 (48-byte DGST) or SHA-1 (20-byte) of
    /// the whole IM4P element.
    /// </summary>
    public static Image4Verification Verify(Img4 image, X509Certificate2? trustRoot = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        var manifest = Verify(image.Manifest, trustRoot);
        var problems = manifest.Problems.ToList();
        if (CheckPayload(image.Payload, image.Manifest) is { } problem)
        {
            problems.Add(problem);
        }
        return manifest with { Problems = problems };
    }

    /// <summary>The payload's problem against the manifest (no entry, wrong digest), or null when its DGST matches.</summary>
    internal static Image4Problem? CheckPayload(Im4Payload payload, Im4Manifest manifest)
    {
        ArgumentNullException.ThrowIfNull(payload);
        ArgumentNullException.ThrowIfNull(manifest);
        var entry = manifest.Body.FindObject(payload.Type);
        if (entry?.Find("DGST") is not Im4OctetString dgst)
        {
            return new(Image4ProblemCode.PayloadNotInManifest, $"the manifest has no '{payload.Type}' object with a DGST");
        }
        var encoded = payload.Encode();
        var actual = dgst.Value.Length switch
        {
            48 => SHA384.HashData(encoded),
            20 => SHA1.HashData(encoded),
            var n => null as byte[] ?? throw new InvalidOperationException($"unsupported DGST length {n}"),
        };
        return CryptographicOperations.FixedTimeEquals(actual, dgst.Value.Span) ? null
            : new(Image4ProblemCode.DigestMismatch,
                $"'{payload.Type}' DGST {Convert.ToHexStringLower(dgst.Value.Span)} is not the IM4P's digest {Convert.ToHexStringLower(actual)}");
    }

    private static string CheckSignature(Im4Manifest manifest, X509Certificate2 leaf, HashAlgorithmName hash, List<Image4Problem> problems)
    {
        var body = manifest.BodyBytes.Span;
        var signature = manifest.Signature.Span;
        using var rsa = leaf.GetRSAPublicKey();
        if (rsa is not null)
        {
            if (!rsa.VerifyData(body, signature, hash, RSASignaturePadding.Pkcs1))
            {
                problems.Add(new(Image4ProblemCode.SignatureInvalid, $"the RSA signature over the MANB SET does not verify with {leaf.Subject} ({hash.Name})"));
            }
            return $"RSA-{rsa.KeySize} PKCS#1 v1.5 {hash.Name}";
        }
        using var ecdsa = leaf.GetECDsaPublicKey();
        if (ecdsa is not null)
        {
            bool valid;
            try
            {
                valid = ecdsa.VerifyData(body, signature, hash, DSASignatureFormat.Rfc3279DerSequence);
            }
            catch (CryptographicException)
            {
                valid = false;
            }
            if (!valid)
            {
                problems.Add(new(Image4ProblemCode.SignatureInvalid, $"the ECDSA signature over the MANB SET does not verify with {leaf.Subject} ({hash.Name})"));
            }
            return $"ECDSA P-{ecdsa.KeySize} {hash.Name}";
        }
        problems.Add(new(Image4ProblemCode.UnsupportedKey, $"{leaf.Subject}: key algorithm {leaf.PublicKey.Oid.Value} is neither RSA nor ECDSA"));
        return "unsupported";
    }

    private static (Image4TrustAnchor, IReadOnlyList<Image4ChainCertificate>) CheckChain(
        X509Certificate2 leaf, List<X509Certificate2> certificates, X509Certificate2? trustRoot, List<Image4Problem> problems)
    {
        using var appleRoot = AppleRootCertificate.Load();
        using var secureBootRoot = AppleSecureBootRootCertificate.Load();
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(appleRoot);
        chain.ChainPolicy.CustomTrustStore.Add(secureBootRoot);
        if (trustRoot is not null)
        {
            chain.ChainPolicy.CustomTrustStore.Add(trustRoot);
        }
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.DisableCertificateDownloads = true;
        chain.ChainPolicy.VerificationFlags = X509VerificationFlags.IgnoreNotTimeValid;
        foreach (var c in certificates.Where(c => !ReferenceEquals(c, leaf)))
        {
            chain.ChainPolicy.ExtraStore.Add(c);
        }
        chain.Build(leaf);
        var elements = chain.ChainElements.Select(e => e.Certificate).ToArray();
        try
        {
            var facts = elements.Select(c => new Image4ChainCertificate(c.Subject, c.Issuer, AppleRootCertificate.Sha256Of(c),
                new DateTimeOffset(c.NotBefore.ToUniversalTime()), new DateTimeOffset(c.NotAfter.ToUniversalTime()))).ToArray();
            var status = chain.ChainStatus.Select(s => s.Status).Aggregate(X509ChainStatusFlags.NoError, (a, b) => a | b);
            if ((status & X509ChainStatusFlags.HasNotSupportedCriticalExtension) != 0 && OnlyKnownCriticalExtensions(elements))
            {
                status &= ~X509ChainStatusFlags.HasNotSupportedCriticalExtension;
            }
            // The boot ROM has no clock: validity dates are reported (Chain), never a reason to refuse.
            status &= ~(X509ChainStatusFlags.NotTimeValid | X509ChainStatusFlags.NotTimeNested);
            var top = elements.Length > 0 ? elements[^1] : null;
            var anchor = top is null ? Image4TrustAnchor.None
                : Same(top, secureBootRoot) ? Image4TrustAnchor.AppleSecureBootRootCaG2
                : Same(top, appleRoot) ? Image4TrustAnchor.AppleRootCa
                : trustRoot is not null && Same(top, trustRoot) ? Image4TrustAnchor.GivenRoot
                : Image4TrustAnchor.None;
            if (status != X509ChainStatusFlags.NoError || anchor == Image4TrustAnchor.None)
            {
                problems.Add(new(Image4ProblemCode.ChainUntrusted,
                    $"{leaf.Subject} does not chain to a pinned Apple root{(trustRoot is null ? "" : " or the given root")} ({status}; issuer {leaf.Issuer})"));
                anchor = Image4TrustAnchor.None;
            }
            return (anchor, facts);
        }
        finally
        {
            foreach (var e in elements)
            {
                e.Dispose();
            }
        }
    }

    private static bool Same(X509Certificate2 a, X509Certificate2 b) => a.RawDataMemory.Span.SequenceEqual(b.RawDataMemory.Span);

    private static bool OnlyKnownCriticalExtensions(IEnumerable<X509Certificate2> certificates)
    {
        string[] handled = ["2.5.29.19", "2.5.29.15", "2.5.29.37", "2.5.29.32", "2.5.29.14", "2.5.29.35"];
        return certificates.All(c => c.Extensions.Cast<X509Extension>()
            .Where(x => x.Critical)
            .All(x => handled.Contains(x.Oid?.Value) || x.Oid?.Value == Im4CertificateConstraints.Oid));
    }

    private static IReadOnlyList<Im4Constraint> CheckConstraints(Im4Manifest manifest, X509Certificate2 leaf, List<Image4Problem> problems)
    {
        if (leaf.Extensions[Im4CertificateConstraints.Oid] is not { } extension)
        {
            return [];
        }
        IReadOnlyList<Im4Constraint> constraints;
        try
        {
            constraints = Im4CertificateConstraints.FromBytes(extension.RawData, $"{leaf.Subject} extension {Im4CertificateConstraints.Oid}");
        }
        catch (Image4FormatException e)
        {
            problems.Add(new(Image4ProblemCode.ConstraintsUnreadable, e.Message));
            return [];
        }
        foreach (var c in constraints.Where(c => c.RequiredValue is not null))
        {
            var sets = c.Group switch
            {
                "MANP" => new[] { ("MANP", manifest.ManifestProperties) },
                "OBJP" => manifest.Body.Objects.Select(o => (o.ObjectFourCC, o.Properties)).ToArray(),
                _ => [],
            };
            foreach (var (name, set) in sets)
            {
                if (set.Find(c.FourCC) is { } found && found != c.RequiredValue)
                {
                    problems.Add(new(Image4ProblemCode.ConstraintViolated,
                        $"'{name}' {c.FourCC} is {found}, but the signing certificate allows only {c.RequiredValue}"));
                }
            }
        }
        return constraints;
    }
}

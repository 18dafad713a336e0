using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using KextTrust.Formats.CodeSigning;

namespace KextTrust.Kexts.Signing;

/// <summary>Why a code signature's CMS did not verify.</summary>
public enum SignatureProblemCode
{
    /// <summary>No CMS blob (slot 0x10000) or an empty one (ad-hoc).</summary>
    NoCmsSignature,
    /// <summary>The CMS bytes do not decode.</summary>
    CmsMalformed,
    /// <summary>The CMS has no signer or more than one.</summary>
    SignerCountNotOne,
    /// <summary>The signer certificate is not in the CMS.</summary>
    SignerCertificateMissing,
    /// <summary>The messageDigest attribute does not match the slot-0 CodeDirectory.</summary>
    ContentDigestMismatch,
    /// <summary>The signature over the signed attributes does not verify.</summary>
    CmsSignatureInvalid,
    /// <summary>The <c>.9.1</c> cdhashes plist is missing while alternate CodeDirectories exist.</summary>
    CdHashesAttributeMissing,
    /// <summary>The <c>.9.1</c> attribute does not decode.</summary>
    CdHashesAttributeMalformed,
    /// <summary>The <c>.9.1</c> cdhashes differ from the CodeDirectories present.</summary>
    CdHashesMismatch,
    /// <summary>The <c>.9.2</c> attribute does not decode.</summary>
    CdHashesV2Malformed,
    /// <summary>The <c>.9.2</c> digests differ from the CodeDirectories present.</summary>
    CdHashesV2Mismatch,
    /// <summary>The chain does not end at a trusted root (the pinned Apple Root CA or the caller's test root).</summary>
    UntrustedRoot,
    /// <summary>A certificate of the chain is not valid at the verification time.</summary>
    CertificateNotTimeValid,
    /// <summary>The chain failed for another reason (see detail).</summary>
    ChainInvalid,
}

/// <summary>One reason a verification failed: a typed code plus a human detail.</summary>
public sealed record SignatureProblem(SignatureProblemCode Code, string Detail);

/// <summary>Which trust anchor the chain ended at.</summary>
public enum TrustAnchorKind
{
    /// <summary>No trusted anchor.</summary>
    None,
    /// <summary>The pinned Apple Root CA.</summary>
    AppleRoot,
    /// <summary>The caller-given test root.</summary>
    TestRoot,
}

/// <summary>Where the verification time came from.</summary>
internal enum VerificationTimeSource
{
    /// <summary>The CMS signing-time signed attribute.</summary>
    CmsSigningTime,
    /// <summary>The current time (no signing time in the CMS).</summary>
    Now,
}

/// <summary>Whether a cdhash attribute agrees with every CodeDirectory present.</summary>
internal enum CdHashAttributeStatus
{
    /// <summary>The attribute is absent.</summary>
    Absent,
    /// <summary>Present and equal to the CodeDirectories present.</summary>
    Agrees,
    /// <summary>Present but listing other hashes (e.g. a stripped or swapped CodeDirectory).</summary>
    Mismatch,
    /// <summary>Present but undecodable.</summary>
    Malformed,
}

/// <summary>A certificate of the built chain, as immutable facts.</summary>
public sealed record ChainCertificate(string Subject, string Issuer, string Sha256, DateTimeOffset NotBefore, DateTimeOffset NotAfter);

/// <summary>Facts about the signer read from the leaf and intermediate certificates.</summary>
internal sealed record SignerFacts(
    string? TeamId,
    string? CommonName,
    string LeafSha256,
    bool IsDeveloperIdApplication,
    bool IntermediateIsDeveloperIdCa,
    bool HasKextSigningAuthority);

/// <summary>The immutable outcome of verifying a code signature's CMS.</summary>
internal sealed record CodeSignatureVerification(
    IReadOnlyList<SignatureProblem> Problems,
    SignerFacts? Signer,
    TrustAnchorKind Anchor,
    IReadOnlyList<ChainCertificate> Chain,
    DateTimeOffset VerificationTime,
    VerificationTimeSource TimeSource,
    CdHashAttributeStatus CdHashesPlist,
    CdHashAttributeStatus CdHashesV2)
{
    /// <summary>True when there is no problem.</summary>
    public bool IsValid => Problems.Count == 0;

    /// <summary>True when a problem with <paramref name="code"/> was reported.</summary>
    public bool Has(SignatureProblemCode code) => Problems.Any(p => p.Code == code);

    /// <summary>True when the chain ends at the pinned Apple Root CA and nothing else failed.</summary>
    public bool IsAppleAnchored => IsValid && Anchor == TrustAnchorKind.AppleRoot;
}

/// <summary>Options of <see cref="CodeSignatureVerifier.Verify"/>.</summary>
internal sealed record CodeSignatureVerifierOptions
{
    /// <summary>An additional trusted root (our test PKI); never the system store.</summary>
    public X509Certificate2? TestRoot { get; init; }

    /// <summary>The time used when the CMS has no signing time; null = the current time.</summary>
    public DateTimeOffset? Now { get; init; }
}

/// <summary>
/// Verifies the CMS of an embedded signature: detached SignedData over the slot-0 CodeDirectory bytes,
/// cdhash attributes against every CodeDirectory, and the chain against ONLY the pinned Apple Root CA
/// (plus an explicitly passed test root), with revocation off.
/// </summary>
internal static class CodeSignatureVerifier
{
    private static readonly string[] AppleCriticalExtensions =
    [
        AppleOids.DeveloperIdApplication, AppleOids.DeveloperIdInstaller, AppleOids.DeveloperIdKernel,
        "1.2.840.113635.100.6.1.12", "1.2.840.113635.100.6.1.9", "1.2.840.113635.100.6.1.3",
    ];

    /// <summary>Verifies <paramref name="signature"/>'s CMS blob.</summary>
    public static CodeSignatureVerification Verify(EmbeddedSignature signature, CodeSignatureVerifierOptions? options = null)
    {
        using var cache = new ChainVerdictCache();
        return Verify(signature, options, cache, out _);
    }

    /// <summary>
    /// Verifies the CMS with a per-run <paramref name="cache"/> of decoded certificates and chain verdicts and hands
    /// back the CMS certificate set (borrowed from the cache, which owns and disposes it).
    /// </summary>
    internal static CodeSignatureVerification Verify(EmbeddedSignature signature, CodeSignatureVerifierOptions? options, ChainVerdictCache cache,
        out IReadOnlyList<X509Certificate2> certificates)
    {
        ArgumentNullException.ThrowIfNull(signature);
        options ??= new CodeSignatureVerifierOptions();
        certificates = [];
        // The pinned root is loaded (and its fingerprint re-checked) outside the CMS error handling:
        // a bad embedded root is a build defect, never a property of the signature. A run's cache loads it once.
        var appleRoot = cache.AppleRoot;
        var certs = new List<X509Certificate2>();
        try
        {
            var result = VerifyCore(signature, options, appleRoot, cache, certs);
            certificates = certs;
            return result;
        }
        catch (CryptographicException e)
        {
            // Decode is lazy in places (certificates, attributes): a corrupt part surfaces here.
            var now = options.Now ?? DateTimeOffset.UtcNow;
            return new CodeSignatureVerification([new(SignatureProblemCode.CmsMalformed, e.Message)], null, TrustAnchorKind.None, [], now,
                VerificationTimeSource.Now, CdHashAttributeStatus.Absent, CdHashAttributeStatus.Absent);
        }
    }

    private static CodeSignatureVerification VerifyCore(EmbeddedSignature signature, CodeSignatureVerifierOptions options, X509Certificate2 appleRoot,
        ChainVerdictCache cache, List<X509Certificate2> certificates)
    {
        var problems = new List<SignatureProblem>();
        var now = options.Now ?? DateTimeOffset.UtcNow;
        CodeSignatureVerification Done(SignerFacts? signer, TrustAnchorKind anchor, IReadOnlyList<ChainCertificate> chain, DateTimeOffset time, VerificationTimeSource source, CdHashAttributeStatus v1, CdHashAttributeStatus v2) =>
            new(problems.ToArray(), signer, anchor, chain, time, source, v1, v2);

        var cmsBytes = signature.Signature?.CmsBytes ?? ReadOnlyMemory<byte>.Empty;
        if (cmsBytes.IsEmpty)
        {
            problems.Add(new(SignatureProblemCode.NoCmsSignature, "the signature has no CMS blob (ad-hoc or unsigned)"));
            return Done(null, TrustAnchorKind.None, [], now, VerificationTimeSource.Now, CdHashAttributeStatus.Absent, CdHashAttributeStatus.Absent);
        }

        // The common shape (one signer named by issuer and serial, DER signed attributes, RSA or ECDSA) is confirmed
        // with the run's key for the leaf before SignedCms is asked (CmsSignatureCheck). SignedCms then still decodes
        // the message (a message it refuses is malformed whatever the signature says), but holds no content (it would
        // copy the CodeDirectory, up to ~100 KB) and builds no signer infos (each read decodes the issuer name to a
        // string, ~0.1 ms of OID look-ups per file); nothing of it decodes a certificate.
        var codeDirectory = signature.CodeDirectory.Bytes;
        var understood = CmsCertificateSet.TryRead(cmsBytes, out var encodedCertificates, out var signerParts);
        var parts = understood && signerParts is [var only] ? only : null;
        X509Certificate2? candidate = null, confirmedLeaf = null;
        IReadOnlyList<CmsAttribute>? confirmedAttributes = null;
        if (parts is not null)
        {
            certificates.AddRange(encodedCertificates.Select(cache.Certificate));
            candidate = CmsSignatureCheck.FindByIssuerAndSerial(parts, certificates);
            if (candidate is not null && CmsSignatureCheck.Confirms(parts, candidate, codeDirectory.Span, cache, out confirmedAttributes))
            {
                confirmedLeaf = candidate;
            }
        }

        // Otherwise SignedCms decodes the message without its certificate set (else it would turn every certificate
        // into an X509Certificate2 for every file); the certificates come from the run's cache, keyed by their exact
        // bytes. A message this split does not understand is decoded as it is (then SignedCms reports what is wrong).
        var cms = new SignedCms(new ContentInfo(confirmedLeaf is null ? codeDirectory.ToArray() : []), detached: true);
        try
        {
            if (confirmedLeaf is not null)
            {
                cms.Decode(cmsBytes.Span);
            }
            else if (CmsCertificateSet.TrySplit(cmsBytes, out var stripped, out encodedCertificates))
            {
                cms.Decode(stripped);
            }
            else
            {
                cms.Decode(cmsBytes.Span);
                var decoded = cms.Certificates;
                encodedCertificates = decoded.Select(c => (ReadOnlyMemory<byte>)c.RawData).ToArray();
                foreach (var c in decoded)
                {
                    c.Dispose();
                }
            }
        }
        catch (CryptographicException e)
        {
            problems.Add(new(SignatureProblemCode.CmsMalformed, e.Message));
            return Done(null, TrustAnchorKind.None, [], now, VerificationTimeSource.Now, CdHashAttributeStatus.Absent, CdHashAttributeStatus.Absent);
        }

        X509Certificate2? leaf;
        IReadOnlyList<CmsAttribute> attributes;
        if (confirmedLeaf is not null)
        {
            // Confirmed above over the same bytes: one signer, exactly one messageDigest, equal to the CodeDirectory's
            // digest under the signer's digest algorithm, and the signature verified with this leaf's key.
            cache.CountConfirmedSignature();
            leaf = confirmedLeaf;
            attributes = confirmedAttributes!;
        }
        else
        {
            if (parts is null)
            {
                certificates.AddRange(encodedCertificates.Select(cache.Certificate));
            }
            var signerInfos = cms.SignerInfos; // each read of SignedCms.SignerInfos decodes them anew
            if (signerInfos.Count != 1)
            {
                problems.Add(new(SignatureProblemCode.SignerCountNotOne, $"{signerInfos.Count} signers"));
                return Done(null, TrustAnchorKind.None, [], now, VerificationTimeSource.Now, CdHashAttributeStatus.Absent, CdHashAttributeStatus.Absent);
            }
            var signer = signerInfos[0];
            leaf = candidate ?? FindSignerCertificate(signer.SignerIdentifier, certificates);
            attributes = signer.SignedAttributes.Cast<CryptographicAttributeObject>() // likewise decoded on every read
                .Select(a => new CmsAttribute(a.Oid.Value ?? "", a.Values.Cast<AsnEncodedData>().Select(v => (ReadOnlyMemory<byte>)v.RawData).ToArray()))
                .ToArray();

            // Content digest (messageDigest attribute vs. the slot-0 CodeDirectory), then the signature itself.
            var messageDigest = AttributeValues(attributes, "1.2.840.113549.1.9.4")
                .Select(MessageDigestValue)
                .FirstOrDefault();
            var digestAlgorithm = CmsSignatureCheck.DigestAlgorithm(signer.DigestAlgorithm.Value) ?? default;
            if (messageDigest is not null && digestAlgorithm.Name is not null
                && !CryptographicOperations.FixedTimeEquals(messageDigest, CryptographicOperations.HashData(digestAlgorithm, codeDirectory.Span)))
            {
                problems.Add(new(SignatureProblemCode.ContentDigestMismatch, "the CMS messageDigest does not match the slot-0 CodeDirectory"));
            }
            else
            {
                try
                {
                    // Verified against the leaf found above and nothing else: the facts below describe the key that signed.
                    signer.CheckSignature(leaf is null ? [] : new X509Certificate2Collection(leaf), verifySignatureOnly: true);
                }
                catch (CryptographicException e)
                {
                    problems.Add(new(SignatureProblemCode.CmsSignatureInvalid, e.Message));
                }
            }
        }

        var v1 = CheckPlistAttribute(attributes, signature, problems);
        var v2 = CheckV2Attribute(attributes, signature, problems);

        // Verification time.
        var signingTime = AttributeValues(attributes, AppleOids.SigningTime)
            .Select(v => (DateTime?)new Pkcs9SigningTime(v.ToArray()).SigningTime)
            .FirstOrDefault();
        var time = signingTime is { } st ? new DateTimeOffset(DateTime.SpecifyKind(st, DateTimeKind.Utc)) : now;
        var source = signingTime is null ? VerificationTimeSource.Now : VerificationTimeSource.CmsSigningTime;

        if (leaf is null)
        {
            problems.Add(new(SignatureProblemCode.SignerCertificateMissing, "the CMS does not carry the signer certificate"));
            return Done(null, TrustAnchorKind.None, [], time, source, v1, v2);
        }

        var verdict = cache.GetOrBuild(leaf, certificates, options.TestRoot, time, () => BuildChain(leaf, certificates, appleRoot, options.TestRoot, time));
        var chainFacts = verdict.Chain;
        var status = verdict.Status;
        var rootSha = chainFacts.Length > 0 ? chainFacts[^1].Sha256 : "";
        var anchor = TrustAnchorKind.None;
        if ((status & (X509ChainStatusFlags.UntrustedRoot | X509ChainStatusFlags.PartialChain)) != 0)
        {
            problems.Add(new(SignatureProblemCode.UntrustedRoot, $"chain ends at '{chainFacts.LastOrDefault()?.Subject}', which is not a trusted root ({status})"));
        }
        else if (rootSha == AppleRootCertificate.Sha256Fingerprint)
        {
            anchor = TrustAnchorKind.AppleRoot;
        }
        else if (options.TestRoot is not null && rootSha == cache.Sha256Of(options.TestRoot))
        {
            anchor = TrustAnchorKind.TestRoot;
        }
        else
        {
            problems.Add(new(SignatureProblemCode.UntrustedRoot, $"chain ends at '{chainFacts.LastOrDefault()?.Subject}', which is neither pinned root"));
        }
        if ((status & X509ChainStatusFlags.NotTimeValid) != 0)
        {
            problems.Add(new(SignatureProblemCode.CertificateNotTimeValid, $"a chain certificate is not valid at {time:u} ({source})"));
        }
        var other = status & ~(X509ChainStatusFlags.UntrustedRoot | X509ChainStatusFlags.PartialChain | X509ChainStatusFlags.NotTimeValid);
        if (other != X509ChainStatusFlags.NoError)
        {
            problems.Add(new(SignatureProblemCode.ChainInvalid, other.ToString()));
        }

        var facts = new SignerFacts(
            TeamId: SubjectAttribute(leaf, "2.5.4.11"),
            CommonName: SubjectAttribute(leaf, "2.5.4.3"),
            LeafSha256: cache.Sha256Of(leaf),
            IsDeveloperIdApplication: leaf.Extensions[AppleOids.DeveloperIdApplication] is not null,
            IntermediateIsDeveloperIdCa: verdict.IntermediateIsDeveloperIdCa,
            HasKextSigningAuthority: leaf.Extensions[AppleOids.DeveloperIdKernel] is not null);
        return Done(facts, anchor, chainFacts, time, source, v1, v2);
    }

    /// <summary>Builds the chain of <paramref name="leaf"/> against ONLY the pinned root (and the test root), revocation off.</summary>
    private static ChainVerdict BuildChain(X509Certificate2 leaf, IReadOnlyList<X509Certificate2> extra, X509Certificate2 appleRoot, X509Certificate2? testRoot, DateTimeOffset time)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(appleRoot);
        if (testRoot is not null)
        {
            chain.ChainPolicy.CustomTrustStore.Add(testRoot);
        }
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.DisableCertificateDownloads = true;
        foreach (var c in extra)
        {
            chain.ChainPolicy.ExtraStore.Add(c);
        }
        chain.ChainPolicy.VerificationTime = time.UtcDateTime;
        chain.ChainPolicy.VerificationTimeIgnored = false;
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid(AppleOids.CodeSigningEku));
        chain.Build(leaf);

        var elements = chain.ChainElements.Select(e => e.Certificate).ToArray();
        try
        {
            var chainFacts = elements.Select(c => new ChainCertificate(c.Subject, c.Issuer, AppleRootCertificate.Sha256Of(c),
                new DateTimeOffset(c.NotBefore.ToUniversalTime()), new DateTimeOffset(c.NotAfter.ToUniversalTime()))).ToArray();
            var status = chain.ChainStatus.Select(s => s.Status).Aggregate(X509ChainStatusFlags.NoError, (a, b) => a | b);
            if ((status & X509ChainStatusFlags.HasNotSupportedCriticalExtension) != 0 && OnlyAppleCriticalExtensions(elements))
            {
                status &= ~X509ChainStatusFlags.HasNotSupportedCriticalExtension;
            }
            return new ChainVerdict(chainFacts, status, elements.Length > 2 && elements[1].Extensions[AppleOids.DeveloperIdCa] is not null);
        }
        finally
        {
            foreach (var e in elements)
            {
                e.Dispose();
            }
        }
    }

    /// <summary>
    /// The signer's certificate among the CMS set, matched as <c>SignerInfo.Certificate</c> matches it
    /// (<see cref="X509Certificate2Collection.Find"/> by serial number and then issuer name, or by subject key
    /// identifier); the shared object, not the search's copy.
    /// </summary>
    private static X509Certificate2? FindSignerCertificate(SubjectIdentifier id, IReadOnlyList<X509Certificate2> certificates)
    {
        if (certificates.Count == 0)
        {
            return null;
        }
        var store = new X509Certificate2Collection(certificates.ToArray());
        X509Certificate2Collection? found = null;
        try
        {
            switch (id.Type)
            {
                case SubjectIdentifierType.IssuerAndSerialNumber:
                {
                    var issuerSerial = (System.Security.Cryptography.Xml.X509IssuerSerial)id.Value!;
                    found = store.Find(X509FindType.FindBySerialNumber, issuerSerial.SerialNumber, false);
                    var match = found.FirstOrDefault(c => c.IssuerName.Name == issuerSerial.IssuerName);
                    return match is null ? null : certificates.First(c => c.RawDataMemory.Span.SequenceEqual(match.RawDataMemory.Span));
                }
                case SubjectIdentifierType.SubjectKeyIdentifier:
                {
                    found = store.Find(X509FindType.FindBySubjectKeyIdentifier, id.Value!, false);
                    var match = found.FirstOrDefault();
                    return match is null ? null : certificates.First(c => c.RawDataMemory.Span.SequenceEqual(match.RawDataMemory.Span));
                }
                default:
                    return null;
            }
        }
        finally
        {
            foreach (var c in found ?? [])
            {
                if (!certificates.Any(s => ReferenceEquals(s, c)))
                {
                    c.Dispose();
                }
            }
        }
    }

    private static bool OnlyAppleCriticalExtensions(IEnumerable<X509Certificate2> certificates)
    {
        string[] handled = ["2.5.29.19", "2.5.29.15", "2.5.29.37", "2.5.29.32", "2.5.29.14", "2.5.29.35", "2.5.29.17", "2.5.29.30"];
        return certificates.All(c => c.Extensions.Cast<X509Extension>()
            .Where(x => x.Critical)
            .All(x => handled.Contains(x.Oid?.Value) || AppleCriticalExtensions.Contains(x.Oid?.Value)));
    }

    private static string? SubjectAttribute(X509Certificate2 cert, string oid)
    {
        foreach (var rdn in cert.SubjectName.EnumerateRelativeDistinguishedNames())
        {
            if (rdn.GetSingleElementType().Value == oid)
            {
                return rdn.GetSingleElementValue();
            }
        }
        return null;
    }

    /// <summary>The digest a messageDigest attribute value carries (an OCTET STRING, read as <c>Pkcs9MessageDigest</c> reads it).</summary>
    private static byte[] MessageDigestValue(ReadOnlyMemory<byte> encoded)
    {
        try
        {
            var value = AsnDecoder.ReadOctetString(encoded.Span, AsnEncodingRules.BER, out var consumed);
            return consumed == encoded.Length ? value : throw new CryptographicException("the messageDigest attribute value has bytes after its OCTET STRING");
        }
        catch (AsnContentException e)
        {
            throw new CryptographicException("the messageDigest attribute value is not an OCTET STRING", e);
        }
    }

    private static IEnumerable<ReadOnlyMemory<byte>> AttributeValues(IReadOnlyList<CmsAttribute> attributes, string oid) =>
        attributes
            .Where(a => a.Oid == oid)
            .SelectMany(a => a.Values);

    private static CdHashAttributeStatus CheckPlistAttribute(IReadOnlyList<CmsAttribute> attributes, EmbeddedSignature signature, List<SignatureProblem> problems)
    {
        var values = AttributeValues(attributes, AppleOids.CdHashesPlistAttribute).ToArray();
        if (values.Length == 0)
        {
            if (signature.AlternateCodeDirectories.Count > 0)
            {
                problems.Add(new(SignatureProblemCode.CdHashesAttributeMissing, "alternate CodeDirectories exist but the CMS does not list cdhashes"));
            }
            return CdHashAttributeStatus.Absent;
        }
        var listed = values.Length == 1 ? CdHashAttributes.TryDecodePlistAttribute(values[0].Span) : null;
        if (listed is null)
        {
            problems.Add(new(SignatureProblemCode.CdHashesAttributeMalformed, "the cdhashes plist attribute does not decode"));
            return CdHashAttributeStatus.Malformed;
        }
        var expected = signature.AllCodeDirectories.Select(cd => Convert.ToHexString(cd.ComputeCdHash())).ToArray();
        var actual = listed.Select(Convert.ToHexString).ToArray();
        if (!expected.SequenceEqual(actual))
        {
            problems.Add(new(SignatureProblemCode.CdHashesMismatch, $"CMS lists [{string.Join(", ", actual)}], CodeDirectories hash to [{string.Join(", ", expected)}]"));
            return CdHashAttributeStatus.Mismatch;
        }
        return CdHashAttributeStatus.Agrees;
    }

    private static CdHashAttributeStatus CheckV2Attribute(IReadOnlyList<CmsAttribute> attributes, EmbeddedSignature signature, List<SignatureProblem> problems)
    {
        var values = AttributeValues(attributes, AppleOids.CdHashesV2Attribute).ToArray();
        if (values.Length == 0)
        {
            return CdHashAttributeStatus.Absent;
        }
        var entries = values.Select(CdHashAttributes.TryDecodeV2Value).ToArray();
        if (entries.Any(e => e is null))
        {
            problems.Add(new(SignatureProblemCode.CdHashesV2Malformed, "a hash-agility v2 value does not decode"));
            return CdHashAttributeStatus.Malformed;
        }
        var expected = CdHashAttributes.ExpectedV2(signature.AllCodeDirectories).Select(e => e.ToString()).Order(StringComparer.Ordinal);
        var actual = entries.Select(e => e!.ToString()).Order(StringComparer.Ordinal);
        if (!expected.SequenceEqual(actual))
        {
            problems.Add(new(SignatureProblemCode.CdHashesV2Mismatch, "the hash-agility v2 digests differ from the CodeDirectories present"));
            return CdHashAttributeStatus.Mismatch;
        }
        return CdHashAttributeStatus.Agrees;
    }
}

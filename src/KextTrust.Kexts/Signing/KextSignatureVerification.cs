namespace KextTrust.Kexts.Signing;

/// <summary>The verdict on a kext bundle's or Mach-O file's code signature.</summary>
public enum KextSignatureStatus
{
    /// <summary>No slice carries an embedded signature (and a bundle has no CodeResources).</summary>
    Unsigned,
    /// <summary>Every hash matches, but the signature is ad-hoc (no CMS, <c>CS_ADHOC</c>): nobody vouches for it.</summary>
    AdHoc,
    /// <summary>Every hash matches and the CMS chains to a trusted root.</summary>
    Valid,
    /// <summary>Something did not match or did not verify: see the problems.</summary>
    Invalid,
}

/// <summary>Stable codes of <see cref="KextSignatureProblem"/>s: one per way a signature can be wrong.</summary>
public enum KextSignatureProblemCode
{
    /// <summary>The executable or bundle could not be read or parsed (malformed Mach-O or SuperBlob).</summary>
    Unreadable,
    /// <summary>Some slices are signed and others are not.</summary>
    SliceUnsigned,
    /// <summary>A code page hash differs from the slice's bytes (page number and file offset given).</summary>
    CodePageHashMismatch,
    /// <summary>The CodeDirectory's code limit or slot count does not fit the slice.</summary>
    CodeLimitInvalid,
    /// <summary>The signature does not lie at the end of <c>__LINKEDIT</c> / the code limit is not the signature offset.</summary>
    SignatureLayoutInvalid,
    /// <summary>Special slot 1 does not match Info.plist.</summary>
    InfoPlistHashMismatch,
    /// <summary>Special slot 1 is filled but there is no Info.plist.</summary>
    InfoPlistMissing,
    /// <summary>Special slot 2 does not match the requirement set blob (or the blob is missing).</summary>
    RequirementsHashMismatch,
    /// <summary>Special slot 3 does not match <c>_CodeSignature/CodeResources</c>.</summary>
    ResourceDirectoryHashMismatch,
    /// <summary>Special slot 3 is filled (or the bundle needs one) but CodeResources is missing.</summary>
    ResourceDirectoryMissing,
    /// <summary>CodeResources does not parse or lacks <c>files2</c>/<c>rules2</c>.</summary>
    ResourceDirectoryMalformed,
    /// <summary>Special slot 5 does not match the XML entitlements blob (or the blob is missing).</summary>
    EntitlementsHashMismatch,
    /// <summary>Special slot 7 does not match the DER entitlements blob (or the blob is missing).</summary>
    DerEntitlementsHashMismatch,
    /// <summary>A bundle file is not listed in CodeResources.</summary>
    ResourceAdded,
    /// <summary>A non-optional CodeResources file is gone.</summary>
    ResourceMissing,
    /// <summary>A bundle file's hash differs from CodeResources.</summary>
    ResourceChanged,
    /// <summary>A symbolic link's target differs from CodeResources (or a file became/stopped being a link).</summary>
    SymlinkChanged,
    /// <summary>A nested bundle (plug-in) has an invalid signature or a cdhash other than the one sealed.</summary>
    NestedCodeInvalid,
    /// <summary>The primary and alternate CodeDirectories disagree on identifier, limit or special slots.</summary>
    CodeDirectoriesDisagree,
    /// <summary>The signature has no CMS (and is not flagged ad-hoc), or an ad-hoc flag with a CMS.</summary>
    CmsMissing,
    /// <summary>The CMS did not verify (see the message for <see cref="SignatureProblemCode"/>).</summary>
    CmsInvalid,
    /// <summary>The cdhashes signed in the CMS do not match the CodeDirectories (stripped, swapped or edited CodeDirectory).</summary>
    CdHashMismatch,
    /// <summary>The certificate chain does not end at the pinned Apple Root CA (nor at a root trusted by request).</summary>
    UntrustedRoot,
    /// <summary>A certificate of the chain was not valid at the signing time.</summary>
    CertificateExpired,
    /// <summary>The chain is otherwise invalid.</summary>
    ChainInvalid,
    /// <summary>The code's own designated requirement is not satisfied.</summary>
    DesignatedRequirementNotSatisfied,
}

/// <summary>One typed reason a signature is not valid: code, human message, and where (slice, offset, path, code page).</summary>
public sealed record KextSignatureProblem(
    KextSignatureProblemCode Code,
    string Message,
    string? Arch = null,
    long? Offset = null,
    string? Path = null,
    int? Page = null)
{
    /// <summary>The stable code as every output writes it (kebab-case: <c>code-page-hash-mismatch</c>).</summary>
    public string StableCode => KextSignatureRefusal.CodeName(Code);

    /// <inheritdoc />
    public override string ToString() =>
        $"{Code}: {Message}{(Arch is null ? "" : $" [{Arch}]")}{(Offset is null ? "" : $" @0x{Offset:x}")}{(Path is null ? "" : $" ({Path})")}";
}

/// <summary>The cdhash of one CodeDirectory of one slice.</summary>
public sealed record SliceCdHash(string Arch, uint Slot, string HashType, string CdHash);

/// <summary>Per-slice facts: architecture, Mach-O file type, the CodeDirectories' cdhashes, pages checked.</summary>
public sealed record SliceVerification(string Arch, string FileType, bool Signed, IReadOnlyList<SliceCdHash> CdHashes, long PagesVerified, long BytesHashed);

/// <summary>The outcome of evaluating one code requirement.</summary>
public sealed record RequirementEvaluation(string Requirement, RequirementOutcome Outcome, IReadOnlyList<string> Unsupported)
{
    /// <summary>True only when definitely satisfied.</summary>
    public bool Satisfied => Outcome == RequirementOutcome.Satisfied;
}

/// <summary>Three-valued result of a requirement (Kleene logic over clauses we cannot evaluate off the Mac).</summary>
public enum RequirementOutcome
{
    /// <summary>The requirement holds.</summary>
    Satisfied,
    /// <summary>The requirement does not hold.</summary>
    NotSatisfied,
    /// <summary>The answer depends on a clause that cannot be evaluated here (e.g. <c>notarized</c>).</summary>
    Unknown,
}

/// <summary>
/// The immutable verdict on one kext bundle or Mach-O file: status, typed problems, the signer, the trust
/// anchor (and whether it was a root trusted by the caller's request), cdhashes per slice, the kext-load
/// requirement of kext_tools (<c>anchor apple</c> for <c>com.apple.</c> ids, else the third-party kext
/// requirement) and the code's own designated requirement, plus nested plug-ins' results.
/// </summary>
public sealed record KextSignatureVerification(
    string Path,
    string Kind,
    string? Identifier,
    KextSignatureStatus Status,
    IReadOnlyList<KextSignatureProblem> Problems,
    string? TeamId,
    string? Signer,
    bool KextSigningAuthorized,
    TrustAnchorKind Anchor,
    string? TrustedRoot,
    bool TrustedByRequest,
    IReadOnlyList<SliceVerification> Slices,
    bool IsKextBinary,
    RequirementEvaluation? KextRequirement,
    RequirementEvaluation? DesignatedRequirement,
    IReadOnlyList<ChainCertificate> Chain,
    IReadOnlyList<KextSignatureVerification> Nested)
{
    /// <summary>True when the kext-load requirement is definitely satisfied.</summary>
    public bool RequirementSatisfied => KextRequirement?.Satisfied == true;

    /// <summary>All cdhashes (hex) of all slices, primary CodeDirectory first per slice.</summary>
    public IReadOnlyList<string> CdHashes => Slices.SelectMany(s => s.CdHashes).Select(c => c.CdHash).ToArray();

    /// <summary>True when a problem with <paramref name="code"/> was reported.</summary>
    public bool Has(KextSignatureProblemCode code) => Problems.Any(p => p.Code == code);

    /// <summary>Total code pages verified across slices and CodeDirectories.</summary>
    public long PagesVerified => Slices.Sum(s => s.PagesVerified);

    /// <summary>
    /// Why this signature does not let a third-party kext load where signatures are enforced (SIP's kext protection on),
    /// or null when it does: a valid signature that meets the kext-load requirement (for third parties: Developer ID
    /// CA, Developer ID Application, kext-signing authority). Every consumer — install, approve, <c>why</c>, kmd,
    /// startup — reports this one refusal, so a kext is refused with the same code and page everywhere.
    /// </summary>
    public KextSignatureRefusal? Refusal => Status switch
    {
        KextSignatureStatus.Invalid => Problems.Count > 0 ? KextSignatureRefusal.Of(Problems[0])
            : new KextSignatureRefusal(KextSignatureRefusal.InvalidCode, "the signature does not validate", null, null, null),
        KextSignatureStatus.Unsigned => new KextSignatureRefusal(KextSignatureRefusal.UnsignedCode, "the kext has no code signature", null, null, null),
        KextSignatureStatus.AdHoc => new KextSignatureRefusal(KextSignatureRefusal.AdHocCode, "the kext is signed ad hoc (no CMS, nobody vouches for it)", null, null, null),
        _ when !KextSigningAuthorized => new KextSignatureRefusal(KextSignatureRefusal.NotKextSigningAuthorityCode,
            $"signed by {Signer ?? "an unnamed signer"}, but the certificate lacks the kext-signing authority (OID 1.2.840.113635.100.6.1.18)", null, null, null),
        _ when !RequirementSatisfied => new KextSignatureRefusal(KextSignatureRefusal.KextRequirementCode,
            $"the signature does not meet the kext-load requirement: {KextRequirement?.Requirement ?? RequirementEvaluator.KextRequirementFor(Identifier)}", null, null, null),
        _ => null,
    };

    /// <summary>The team the signature vouches for: its team id when <see cref="Refusal"/> is null, else null.</summary>
    public string? VerifiedTeamId => Refusal is null ? TeamId : null;

    /// <summary>The cdhash of the first slice's primary CodeDirectory (what the KextPolicy database records), or null.</summary>
    public string? PrimaryCdHash => Slices.SelectMany(s => s.CdHashes).Select(c => c.CdHash).FirstOrDefault();

    /// <summary>One line: "valid, team T, kext-signing authority (Signer)" or the refusal.</summary>
    public string Summary => Refusal is { } r
        ? $"{Status.ToString().ToLowerInvariant()}: {r}"
        : $"valid, team {TeamId}, kext-signing authority ({Signer})";
}

/// <summary>
/// Why a kext's signature does not let it load under SIP: a stable kebab-case code (a <see cref="KextSignatureProblemCode"/>
/// name, or <c>unsigned</c>, <c>ad-hoc</c>, <c>not-kext-signing-authority</c>, <c>kext-requirement-not-satisfied</c>), the
/// message, and where (code page, slice, file) when the verifier knows.
/// </summary>
public sealed record KextSignatureRefusal(string Code, string Message, int? Page, string? Arch, string? Path)
{
    /// <summary>No code signature.</summary>
    public const string UnsignedCode = "unsigned";
    /// <summary>An ad-hoc signature.</summary>
    public const string AdHocCode = "ad-hoc";
    /// <summary>Invalid without a more precise problem.</summary>
    public const string InvalidCode = "signature-invalid";
    /// <summary>A valid signature whose certificate lacks the kext-signing authority.</summary>
    public const string NotKextSigningAuthorityCode = "not-kext-signing-authority";
    /// <summary>A valid signature that does not meet the kext-load requirement.</summary>
    public const string KextRequirementCode = "kext-requirement-not-satisfied";

    /// <summary>The refusal for one verifier problem.</summary>
    public static KextSignatureRefusal Of(KextSignatureProblem problem)
    {
        ArgumentNullException.ThrowIfNull(problem);
        return new(problem.StableCode, problem.Message, problem.Page, problem.Arch, problem.Path);
    }

    /// <summary>The kebab-case name of a code or status (<c>code-page-hash-mismatch</c>, <c>ad-hoc</c>).</summary>
    public static string CodeName<T>(T code) where T : struct, Enum => Trust.TrustCodes.Kebab(code);

    /// <summary>"code-page-hash-mismatch (page 3, arm64e): message".</summary>
    public override string ToString()
    {
        var where = string.Join(", ", new[] { Page is { } p ? $"page {p}" : null, Arch }.Where(x => x is not null));
        return $"{Code}{(where.Length > 0 ? $" ({where})" : "")}: {Message}";
    }
}

/// <summary>
/// The kext signature verifier as a service: consumers that verify bundles one by one (consent, the simulated Mac) hold
/// one of these; <see cref="KextSignatureVerifier.Using"/> gives the real one, tests may substitute verdicts.
/// </summary>
public interface IKextSignatureVerifier
{
    /// <summary>Verifies the kext bundle or Mach-O file at <paramref name="path"/>.</summary>
    /// <exception cref="KextSignatureInputException">The path is missing or unreadable as a kext.</exception>
    KextSignatureVerification Verify(string path);
}

/// <summary>Options of <see cref="KextSignatureVerifier"/>.</summary>
public sealed record KextSignatureVerifierOptions
{
    /// <summary>A root trusted in addition to the pinned Apple Root CA — only when the caller names it; the result says so.</summary>
    public System.Security.Cryptography.X509Certificates.X509Certificate2? TrustedTestRoot { get; init; }

    /// <summary>Verification time when the CMS has no signing time; null = now.</summary>
    public DateTimeOffset? Now { get; init; }

    /// <summary>Degree of parallelism for page hashing; null or ≤ 0 = all cores, 1 = single-threaded.</summary>
    public int? MaxDegreeOfParallelism { get; init; }

    /// <summary>Pages hashed per work item (a chunk of one CodeDirectory of one slice).</summary>
    public int PagesPerWorkItem { get; init; } = 256;

    /// <summary>
    /// Hash the code pages of every CodeDirectory, alternates included (as <c>codesign --verify</c>'s static
    /// validation does). Off by default: the pages are checked against the strongest CodeDirectory only, as the
    /// kernel checks them, and the alternates are bound through their cdhashes in the CMS and their special slots.
    /// </summary>
    public bool AllCodeDirectories { get; init; }

    /// <summary>At most this many page mismatches are reported per CodeDirectory.</summary>
    public int MaxPageProblemsPerCodeDirectory { get; init; } = 8;
}

/// <summary>The input could not be read as a kext or Mach-O at all (missing path, malformed signature container).</summary>
public sealed class KextSignatureInputException(string path, long offset, string rule, Exception? inner = null)
    : KextTrust.Formats.KextTrustException($"{path}: {(offset >= 0 ? $"at offset {offset} (0x{offset:x}): " : "")}{rule}", inner)
{
    /// <inheritdoc/>
    public override string ErrorCode => "UnreadableInput";

    /// <inheritdoc/>
    public override KextTrust.Formats.ErrorKind Kind => KextTrust.Formats.ErrorKind.InvalidInput;

    /// <summary>The file or folder.</summary>
    public string PathName { get; } = path;
    /// <summary>Offset of the problem, or −1.</summary>
    public long Offset { get; } = offset;
    /// <summary>The broken rule.</summary>
    public string Rule { get; } = rule;
}

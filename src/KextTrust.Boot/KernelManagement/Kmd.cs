using KextTrust.Machine;
using System.Collections.Immutable;
using KextTrust.Boot.Enclave;
using KextTrust.Boot.Policy;
using KextTrust.Boot.Receipt;
using KextTrust.Consent.Policy;
using KextTrust.Formats;
using KextTrust.Formats.Image4;
using KextTrust.Formats.MachO;
using KextTrust.Formats.PropertyLists;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;
using KextTrust.Kexts.Signing;
using KextTrust.Kexts.Trust;

namespace KextTrust.Boot.KernelManagement;

/// <summary>The outcome of an AuxKC build: the collection, its receipt and kmd's decision for every candidate.</summary>
/// <param name="AuxKc">The Auxiliary Kernel Collection.</param>
/// <param name="Measurement">SHA-384 of the AuxKC bytes (what the Secure Enclave signs).</param>
/// <param name="Receipt">The kext receipt.</param>
/// <param name="Decisions">One decision per candidate (plug-ins included), in candidate order (bundle id, then path).</param>
public sealed record AuxKcBuildResult(AuxiliaryKernelCollection AuxKc, Sha384Digest Measurement, KextReceipt Receipt, ImmutableArray<KmdDecision> Decisions)
{
    /// <summary>The receipt file bytes.</summary>
    internal byte[] ReceiptBytes() => Receipt.ToBytes();

    /// <summary>The bundle ids in the AuxKC, in load order.</summary>
    public IEnumerable<string> IncludedBundleIds => Receipt.Included.Select(k => k.BundleId);

    /// <summary>The decision for a bundle id (the first candidate with it), or null.</summary>
    internal KmdDecision? DecisionFor(string bundleId) => Decisions.FirstOrDefault(d => d.BundleId == bundleId);
}

/// <summary>An AuxKC signed by the Secure Enclave, with the three hashes the LocalPolicy records.</summary>
/// <param name="Image4">The AuxKC Image4 (IM4P <c>auxk</c> holding the AuxKC, IM4M signed by the SEP).</param>
/// <param name="Image4Bytes">Its DER.</param>
/// <param name="AuxKcImage4Hash"><c>auxi</c>: SHA-384 of the IM4M.</param>
/// <param name="ReceiptHash"><c>auxr</c>: SHA-384 of the receipt bytes.</param>
/// <param name="UaklHash"><c>auxp</c>: SHA-384 of the UAKL the AuxKC was built from.</param>
public sealed record SignedAuxKc(Img4 Image4, ReadOnlyMemory<byte> Image4Bytes, Sha384Digest AuxKcImage4Hash, Sha384Digest ReceiptHash, Sha384Digest UaklHash);

/// <summary>A new LocalPolicy after an AuxKC rebuild.</summary>
/// <param name="Policy">The policy with the new nonce hash and <c>auxp</c>/<c>auxi</c>/<c>auxr</c>.</param>
/// <param name="Manifest">The SEP-signed IM4M.</param>
/// <remarks>
/// The new policy carries the hash of <paramref name="Nonce"/>, which is not installed yet: store
/// <see cref="PendingLocalPolicyNonce.SealedBytes"/> as the SEP's nonce file in the same atomic change as the policy
/// file. Until then the previous policy keeps verifying and this one does not.
/// </remarks>
internal sealed record LocalPolicyUpdate(LocalPolicy Policy, Im4Manifest Manifest, PendingLocalPolicyNonce Nonce)
{
    /// <summary>The IM4M DER to store as the LocalPolicy file.</summary>
    public byte[] ToBytes() => Manifest.Encode();
}

/// <summary>
/// The kernel management daemon (kernelmanagerd): builds the Auxiliary Kernel Collection from the kexts in the
/// user-authorized kext list, writes the kext receipt, has the Secure Enclave sign the AuxKC into an Image4 and
/// records the three hashes in a new LocalPolicy. Pure over its inputs; no static mutable state.
/// </summary>
/// <remarks>
/// Per candidate (a kext or a plug-in of one), in order: <see cref="TrustStep.Bundle"/> (readable, unique bundle id — the
/// highest version wins), <see cref="TrustStep.Consent"/> (the signature's team id, empty when unsigned or ad hoc, with the
/// bundle id), <see cref="TrustStep.ExcludeList"/>, <see cref="TrustStep.Signature"/> (valid and kext-signing authorized;
/// skipped when SIP's ALLOW_UNTRUSTED_KEXTS bit is set), <see cref="TrustStep.Architecture"/> (arm64e on Apple silicon,
/// x86_64 on Intel), <see cref="TrustStep.Kpi"/> (Apple's KPI rules; exempt when SIP's kext bit is off or the UAKL entry came from
/// MDM), then among the survivors until nothing changes: <see cref="TrustStep.Dependencies"/> and <see cref="TrustStep.Link"/>
/// (each undefined symbol exported by a declared KPI of the release, by a declared third-party library in the AuxKC, or —
/// by name only — by a declared Apple family of the Boot KC); finally <see cref="TrustStep.Order"/> (a topological order of
/// OSBundleLibraries, ties by bundle id; kexts in or behind a cycle are left out). SIP's ALLOW_UNAPPROVED_KEXTS bit does
/// not bypass the UAKL: on Apple silicon only user-authorized kexts go in.
/// </remarks>
internal static class Kmd
{
    private const int MaxListedSymbols = 8;

    /// <summary>Builds the AuxKC and the receipt. Deterministic: the same inputs give the same bytes.</summary>
    /// <exception cref="ArgumentException">The catalog has no data for the release on that architecture.</exception>
    public static AuxKcBuildResult BuildAuxKc(AuxKcBuildRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(request.Candidates);
        ArgumentNullException.ThrowIfNull(request.Uakl);
        ArgumentNullException.ThrowIfNull(request.Release);
        ArgumentNullException.ThrowIfNull(request.Catalog);
        ArgumentNullException.ThrowIfNull(request.VerifySignature);
        ArgumentNullException.ThrowIfNull(request.IsBanned);
        if (!KpiCatalog.Supports(request.Release, request.Architecture))
        {
            throw new ArgumentException($"{request.Release} never ran on {request.Architecture}", nameof(request));
        }
        var candidates = request.Candidates
            .SelectMany(b => b.SelectAndPlugInsSafe())
            .Select(b => new Candidate(b, MacPath(request.VolumeRoot, b.Path)))
            .OrderBy(c => c.Bundle.BundleId ?? "", StringComparer.Ordinal)
            .ThenBy(c => c.MacPath, StringComparer.Ordinal)
            .ToList();

        CheckBundles(candidates);
        foreach (var c in candidates.Where(c => c.Alive))
        {
            CheckIndividually(c, request);
        }
        ResolveDependencies(candidates, request);
        var order = Order(candidates);
        var auxKc = BuildCollection(order, request);
        var measurement = auxKc.ComputeMeasurement();
        var receipt = new KextReceipt
        {
            AuxKcMeasurement = measurement,
            UaklHash = request.Uakl.Hash,
            Release = request.Release,
            Architecture = request.Architecture,
            Sip = request.Sip,
            Included = [.. order.Select(c => new ReceiptIncludedKext(c.BundleId!, c.Bundle.VersionString!, c.TeamId ?? "", c.Signature?.PrimaryCdHash ?? "",
                c.Consent!.Value, c.MacPath, c.SliceBytes is not null))],
            Excluded = [.. candidates.Where(c => !c.Alive).Select(c => new ReceiptExcludedKext(c.Bundle.BundleId ?? "", c.Bundle.VersionString ?? "",
                c.MacPath, c.Failure!.Value, c.Checks[^1].Detail))],
        };
        return new AuxKcBuildResult(auxKc, measurement, receipt, [.. candidates.Select(c => c.ToDecision())]);
    }

    /// <summary>Has the Secure Enclave sign the AuxKC measurement into an Image4 and computes <c>auxi</c> and <c>auxr</c>.</summary>
    public static SignedAuxKc SignAuxKc(AuxKcBuildResult build, SecureEnclave secureEnclave)
    {
        ArgumentNullException.ThrowIfNull(build);
        ArgumentNullException.ThrowIfNull(secureEnclave);
        var image4 = AuxKcImage4.Create(secureEnclave, build.AuxKc.Bytes.Span);
        return new SignedAuxKc(image4, image4.Encoded, AuxKcImage4.ManifestHash(image4), build.Receipt.ComputeHash(), build.Receipt.UaklHash);
    }

    /// <summary>
    /// A new SEP-signed LocalPolicy: <paramref name="current"/> with <c>auxp</c>/<c>auxi</c>/<c>auxr</c> replaced, for a
    /// new Local Policy Nonce that the caller installs together with it (<see cref="LocalPolicyUpdate.Nonce"/>); once
    /// installed, the previous policy (and its AuxKC) stops verifying. Writes nothing and leaves the Secure Enclave's
    /// current nonce untouched.
    /// </summary>
    /// <exception cref="LocalPolicyException">The updated policy would be inconsistent or is for another ECID.</exception>
    public static LocalPolicyUpdate UpdateLocalPolicy(LocalPolicy current, SecureEnclave secureEnclave, Sha384Digest uaklHash,
        Sha384Digest auxKcImage4Hash, Sha384Digest receiptHash)
    {
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(secureEnclave);
        ArgumentNullException.ThrowIfNull(uaklHash);
        ArgumentNullException.ThrowIfNull(auxKcImage4Hash);
        ArgumentNullException.ThrowIfNull(receiptHash);
        var proposed = current with { AuxKextPolicyHash = uaklHash, AuxKcImage4Hash = auxKcImage4Hash, AuxKcReceiptHash = receiptHash };
        var failures = proposed.CheckConsistency().ToList();
        if (proposed.Ecid != secureEnclave.Ecid)
        {
            failures.Add(new(LocalPolicyFailureCode.EcidMismatch, $"policy ECID 0x{proposed.Ecid:x16} is not this Mac's 0x{secureEnclave.Ecid:x16}"));
        }
        if (failures.Count > 0)
        {
            throw new LocalPolicyException(failures);
        }
        var nonce = secureEnclave.PrepareLocalPolicyNonce();
        var policy = proposed with { LocalPolicyNonceHash = nonce.Hash };
        return new LocalPolicyUpdate(policy, policy.Sign(secureEnclave, nonce), nonce);
    }

    /// <summary><see cref="UpdateLocalPolicy(LocalPolicy, SecureEnclave, Sha384Digest, Sha384Digest, Sha384Digest)"/> with a signed AuxKC's hashes.</summary>
    public static LocalPolicyUpdate UpdateLocalPolicy(LocalPolicy current, SecureEnclave secureEnclave, SignedAuxKc signed)
    {
        ArgumentNullException.ThrowIfNull(signed);
        return UpdateLocalPolicy(current, secureEnclave, signed.UaklHash, signed.AuxKcImage4Hash, signed.ReceiptHash);
    }

    private static IEnumerable<KextBundle> SelectAndPlugInsSafe(this KextBundle bundle)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        return bundle.SelfAndPlugIns();
    }

    /// <summary>The bundle's path on the Mac: "/" + its path under the volume root, '/'-separated; else the full path.</summary>
    private static string MacPath(string? volumeRoot, string path)
    {
        if (volumeRoot is null)
        {
            return path;
        }
        var relative = Path.GetRelativePath(Path.GetFullPath(volumeRoot), path);
        return relative.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(relative)
            ? path
            : "/" + relative.Replace(Path.DirectorySeparatorChar, '/');
    }

    private static void CheckBundles(List<Candidate> candidates)
    {
        foreach (var c in candidates)
        {
            var b = c.Bundle;
            var problems = b.Problems.Where(p => p.Code != KextProblemCode.PlugInUnreadable).ToList();
            if (b.BundleId is null || b.Version is null || problems.Count > 0)
            {
                c.Fail(TrustStep.Bundle, TrustCode.MalformedBundle, problems.Count > 0
                    ? string.Join("; ", problems.Select(p => p.Message))
                    : "no CFBundleIdentifier or CFBundleVersion");
            }
            else if (!b.IsCodeless && (!b.HasExecutable || b.ExecutablePath is null))
            {
                c.Fail(TrustStep.Bundle, TrustCode.MissingExecutable, $"CFBundleExecutable '{b.ExecutableName}' is missing");
            }
        }
        foreach (var group in candidates.Where(c => c.Alive).GroupBy(c => c.BundleId!, StringComparer.Ordinal))
        {
            var winner = group.OrderByDescending(c => c.Bundle.Version!.Value).ThenBy(c => c.MacPath, StringComparer.Ordinal).First();
            foreach (var c in group)
            {
                if (c == winner)
                {
                    c.Pass(TrustStep.Bundle, $"{c.BundleId} {c.Bundle.VersionString}{(c.Bundle.IsCodeless ? " (codeless)" : "")}");
                }
                else
                {
                    c.Fail(TrustStep.Bundle, TrustCode.DuplicateBundleId,
                        $"{c.BundleId} {c.Bundle.VersionString} is superseded by version {winner.Bundle.VersionString} at {winner.MacPath}");
                }
            }
        }
    }

    private static void CheckIndividually(Candidate c, AuxKcBuildRequest request)
    {
        var id = c.BundleId!;
        var untrustedAllowed = request.Sip.HasFlag(CsrConfig.AllowUntrustedKexts);
        KextSignatureVerification? signature = null;
        string? verifierFailure = null;
        try
        {
            signature = request.VerifySignature(c.Bundle) ?? throw new InvalidOperationException("the verifier returned no verdict");
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            verifierFailure = e.Message;
        }
        c.Signature = signature;
        c.TeamId = signature is { Status: KextSignatureStatus.Valid or KextSignatureStatus.Invalid, TeamId: { Length: > 0 } signedTeam } ? signedTeam : null;

        // UAKL
        var team = c.TeamId ?? "";
        if (!request.Uakl.TryFind(team, id, out var entry))
        {
            var teams = request.Uakl.TeamsFor(id);
            if (teams.Count == 0)
            {
                c.Fail(TrustStep.Consent, TrustCode.NotApproved, $"{id} is not in the user-authorized kext list");
            }
            else
            {
                c.Fail(TrustStep.Consent, TrustCode.UaklTeamMismatch,
                    $"{id} is authorized for team {string.Join(", ", teams.Select(t => t.Length == 0 ? "(unsigned)" : t))}, but its signature's team is {(team.Length == 0 ? "(none)" : team)}");
            }
            return;
        }
        c.Consent = entry.Source;
        c.Pass(TrustStep.Consent, $"authorized for team {(team.Length == 0 ? "(unsigned)" : team)} ({entry.Source})");

        // Exclude list
        if (request.IsBanned(id, c.Bundle.Version!.Value))
        {
            c.Fail(TrustStep.ExcludeList, TrustCode.ExcludeListed, $"{id} {c.Bundle.VersionString} is on the kext exclude list");
            return;
        }
        c.Pass(TrustStep.ExcludeList, "not on the exclude list");

        // Signature: the one verdict's refusal, with its stable code (and page), as install, approve and why report it.
        if (untrustedAllowed)
        {
            c.Add(TrustStep.Signature, TrustOutcome.Skipped, null,
                $"SIP allows untrusted kexts: signature not enforced ({signature?.Summary ?? "could not be verified: " + verifierFailure})");
        }
        else if (signature is null)
        {
            c.Fail(TrustStep.Signature, TrustCode.SignatureInvalid, $"the signature could not be verified: {verifierFailure}");
            return;
        }
        else if (signature.Refusal is { } refusal)
        {
            var code = TrustCodes.ForSignature(signature.Status, refusal.Code);
            var what = code switch
            {
                TrustCode.SignatureUnsigned => "unsigned, and SIP enforces kext signatures",
                TrustCode.SignatureAdHoc => "ad hoc signed, and SIP enforces kext signatures",
                TrustCode.NotKextSigningAuthority => $"signed by team {team}, but the certificate is not authorized to sign kexts",
                _ => "the signature does not validate",
            };
            c.Fail(TrustStep.Signature, code, $"{what}: {refusal}");
            return;
        }
        else
        {
            c.Pass(TrustStep.Signature, $"valid, team {team}, kext-signing authority");
        }

        // Architecture
        if (c.Bundle.IsCodeless)
        {
            c.Add(TrustStep.Architecture, TrustOutcome.Skipped, null, "codeless kext: no executable");
            c.Add(TrustStep.Kpi, TrustOutcome.Skipped, null, "codeless kext: no imports");
            return;
        }
        if (!ReadSlice(c, request))
        {
            return;
        }

        // KPI rules
        var libraries = c.Bundle.Libraries.ToDictionary(l => l.BundleId, l => l.RequestedVersion, StringComparer.Ordinal);
        var context = new KpiEnforcementContext(untrustedAllowed, entry.Source == ConsentSource.Mdm);
        var verdict = KpiRuleEvaluator.Evaluate(c.Slice!.UndefinedSymbols, libraries, context).On(request.Release);
        string Describe(KpiFindingStatus s) =>
            $"{s.Finding.Rule.Id} {s.Finding.Rule.Title} ({string.Join(", ", s.Finding.TriggeringSymbols.Concat(s.Finding.TriggeringLibraries).Take(MaxListedSymbols))}) is {s.Status} on {request.Release}; use {s.Finding.Rule.Replacement}";
        var (kpiOutcome, kpiCode) = TrustCodes.ForKpi(verdict);
        if (kpiOutcome == TrustOutcome.Failed)
        {
            c.Fail(TrustStep.Kpi, TrustCode.UnsupportedKpi, string.Join("; ", verdict.Findings.Where(s => s.BlocksLoad).Select(Describe)));
            return;
        }
        if (kpiCode is null)
        {
            c.Pass(TrustStep.Kpi, "no deprecated or unsupported KPI");
        }
        else
        {
            var why = untrustedAllowed ? "SIP's kext protection is off" : "approved by MDM";
            c.Add(TrustStep.Kpi, kpiOutcome, kpiCode, string.Join("; ", verdict.Findings.Where(s => s.Status != KpiSupportStatus.Supported).Select(s =>
                s.Status == KpiSupportStatus.Unsupported ? $"{Describe(s)}, allowed because {why}" : Describe(s))));
        }
    }

    private static bool ReadSlice(Candidate c, AuxKcBuildRequest request)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(c.Bundle.ExecutablePath!);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            c.Fail(TrustStep.Architecture, TrustCode.MalformedExecutable, $"the executable cannot be read: {e.Message}");
            return false;
        }
        var wanted = request.Architecture.SliceName();
        MachOFile file;
        try
        {
            file = MachOFile.FromBytes(bytes, c.Bundle.ExecutablePath);
        }
        catch (MachOFormatException e)
        {
            c.Fail(TrustStep.Architecture, TrustCode.MalformedExecutable, $"the executable is not a well-formed Mach-O: {e.Message}");
            return false;
        }
        var slice = file.Slices.FirstOrDefault(s => s.Architecture == wanted);
        if (slice is null)
        {
            c.Fail(TrustStep.Architecture, TrustCode.MissingArchitecture,
                $"KMErrorDomain {TrustCode.MissingArchitecture.KMErrorCode()}: the executable has no {wanted} slice (it has {string.Join(", ", file.Slices.Select(s => s.Architecture))})");
            return false;
        }
        if (slice.FileType != MachOFileType.KextBundle || !slice.Is64Bit)
        {
            c.Fail(TrustStep.Architecture, TrustCode.MalformedExecutable, $"the {wanted} slice is a {slice.FileType}, not a 64-bit MH_KEXT_BUNDLE");
            return false;
        }
        var sliceBytes = slice.Data.ToArray();
        try
        {
            new FilesetBuilder(request.Architecture.MachOTarget()).AddEntry(c.BundleId!, sliceBytes);
        }
        catch (ArgumentException e)
        {
            c.Fail(TrustStep.Architecture, TrustCode.MalformedExecutable, $"the {wanted} slice cannot be placed in a kernel collection: {e.Message}");
            return false;
        }
        c.Slice = MachOFile.FromBytes(sliceBytes).Slices[0];
        c.SliceBytes = sliceBytes;
        c.Pass(TrustStep.Architecture, $"{wanted} slice, {sliceBytes.Length} bytes");
        return true;
    }

    private static void ResolveDependencies(List<Candidate> candidates, AuxKcBuildRequest request)
    {
        var byId = candidates.Where(c => c.Failure is not TrustCode.DuplicateBundleId and not TrustCode.MalformedBundle and not TrustCode.MissingExecutable)
            .ToDictionary(c => c.BundleId!, StringComparer.Ordinal);
        var passes = new Dictionary<Candidate, (string Dependencies, TrustCheck Link)>();
        bool changed;
        do
        {
            changed = false;
            passes.Clear();
            foreach (var c in candidates.Where(c => c.Alive))
            {
                var deps = CheckLibraries(c, byId, request);
                if (deps.Failure is { } f)
                {
                    c.Fail(TrustStep.Dependencies, f, deps.Detail);
                    changed = true;
                    continue;
                }
                var link = Link(c, byId, request);
                if (link.Outcome == TrustOutcome.Failed)
                {
                    c.Pass(TrustStep.Dependencies, deps.Detail);
                    c.Add(link);
                    changed = true;
                    continue;
                }
                passes[c] = (deps.Detail, link);
            }
        }
        while (changed);
        foreach (var (c, (deps, link)) in passes)
        {
            c.Pass(TrustStep.Dependencies, deps);
            c.Add(link);
        }
    }

    private static (TrustCode? Failure, string Detail) CheckLibraries(Candidate c, Dictionary<string, Candidate> byId, AuxKcBuildRequest request)
    {
        var notes = new List<string>();
        foreach (var lib in c.Bundle.Libraries)
        {
            if (lib.Version is not { } requested)
            {
                return (TrustCode.LibraryVersion, $"{lib.BundleId}: requested version '{lib.RequestedVersion}' is not a kext version");
            }
            if (request.Catalog.FindPseudoKext(request.Release, lib.BundleId) is not null)
            {
                if (Linkage.CheckKpiVersion(request.Catalog, request.Release, lib.BundleId, requested) is { } why)
                {
                    return (TrustCode.LibraryVersion, why);
                }
                notes.Add($"{lib.BundleId} (KPI)");
            }
            else if (byId.TryGetValue(lib.BundleId, out var other))
            {
                if (!other.Alive)
                {
                    return (TrustCode.DependencyExcluded, $"library {lib.BundleId} was left out ({other.Failure})");
                }
                if (other.Bundle.CompatibleVersion is not { } otherCompatible)
                {
                    return (TrustCode.LibraryVersion, $"library {lib.BundleId} declares no OSBundleCompatibleVersion, so no kext can link against it");
                }
                if (!other.Bundle.Version!.Value.Satisfies(requested, otherCompatible))
                {
                    return (TrustCode.LibraryVersion,
                        $"library {lib.BundleId} {other.Bundle.VersionString} (compatible back to {other.Bundle.CompatibleVersionString}) does not satisfy requested {lib.RequestedVersion}");
                }
                notes.Add($"{lib.BundleId} (AuxKC)");
            }
            else if (lib.BundleId.StartsWith("com.apple.", StringComparison.Ordinal))
            {
                notes.Add($"{lib.BundleId} (Apple family, assumed in the Boot KC)");
            }
            else
            {
                return (TrustCode.MissingLibrary, $"library {lib.BundleId} is neither a KPI of {request.Release}, an Apple family, nor a kext being built into the AuxKC");
            }
        }
        return (null, notes.Count == 0 ? "no OSBundleLibraries" : string.Join(", ", notes));
    }

    private static TrustCheck Link(Candidate c, Dictionary<string, Candidate> byId, AuxKcBuildRequest request)
    {
        if (c.Slice is null)
        {
            return new TrustCheck(TrustStep.Link, TrustOutcome.Skipped, null, "codeless kext: nothing to link");
        }
        var declared = c.Bundle.Libraries.Select(l => l.BundleId).ToList();
        var kextLibraries = declared.Where(byId.ContainsKey).Select(id => byId[id]).ToList();
        var (viaKpi, viaKext, assumed, unresolved, families) = Linkage.Resolve(request.Catalog, request.Release, request.Architecture,
            c.Slice.UndefinedSymbols, declared, symbol => kextLibraries.Any(k => k.Defines(symbol)));
        if (unresolved.Count > 0)
        {
            return new TrustCheck(TrustStep.Link, TrustOutcome.Failed, TrustCode.UnresolvedSymbols,
                $"{unresolved.Count} undefined symbol(s) resolve to no declared library of {request.Release}/{request.Architecture.SliceName()}: " +
                string.Join(", ", unresolved.Take(MaxListedSymbols)) + (unresolved.Count > MaxListedSymbols ? ", …" : ""));
        }
        var summary = $"{c.Slice.UndefinedSymbols.Count} symbol(s): {viaKpi} from KPIs, {viaKext} from AuxKC kexts";
        return assumed.Count == 0
            ? new TrustCheck(TrustStep.Link, TrustOutcome.Passed, null, summary)
            : new TrustCheck(TrustStep.Link, TrustOutcome.Warning, null,
                $"{summary}, {assumed.Count} assumed exported by {string.Join(", ", families)} (Apple families are accepted by name)");
    }

    private static List<Candidate> Order(List<Candidate> candidates)
    {
        var alive = candidates.Where(c => c.Alive).ToDictionary(c => c.BundleId!, StringComparer.Ordinal);
        var dependents = alive.Keys.ToDictionary(k => k, _ => new List<string>(), StringComparer.Ordinal);
        var pending = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (id, c) in alive)
        {
            var deps = c.Bundle.Libraries.Select(l => l.BundleId).Where(alive.ContainsKey).Distinct(StringComparer.Ordinal).ToList();
            pending[id] = deps.Count;
            foreach (var d in deps)
            {
                dependents[d].Add(id);
            }
        }
        var ready = new SortedSet<string>(pending.Where(p => p.Value == 0).Select(p => p.Key), StringComparer.Ordinal);
        var order = new List<Candidate>();
        while (ready.Count > 0)
        {
            var next = ready.Min!;
            ready.Remove(next);
            var c = alive[next];
            c.Pass(TrustStep.Order, $"load position {order.Count + 1}");
            order.Add(c);
            foreach (var d in dependents[next])
            {
                if (--pending[d] == 0)
                {
                    ready.Add(d);
                }
            }
        }
        var stuck = pending.Where(p => p.Value > 0).Select(p => p.Key).Order(StringComparer.Ordinal).ToList();
        foreach (var id in stuck)
        {
            alive[id].Fail(TrustStep.Order, TrustCode.DependencyCycle, $"OSBundleLibraries form a cycle among (or lead into one): {string.Join(", ", stuck)}");
        }
        return order;
    }

    private static AuxiliaryKernelCollection BuildCollection(List<Candidate> order, AuxKcBuildRequest request)
    {
        var target = request.Architecture.MachOTarget();
        var vmBase = AuxiliaryKernelCollection.VmBaseFor(request.Architecture);
        FilesetBuilder NewBuilder(byte[] prelinkInfo)
        {
            var builder = new FilesetBuilder(target) { PrelinkInfo = prelinkInfo, VmBase = vmBase };
            foreach (var c in order.Where(c => c.SliceBytes is not null))
            {
                builder.AddEntry(c.BundleId!, c.SliceBytes!);
            }
            return builder;
        }
        // Entry offsets do not depend on the prelink info (it follows the entries), so a first layout gives the load addresses.
        var layout = MachOFile.FromBytes(NewBuilder([]).Build()).Slices[0].FilesetEntries.ToDictionary(e => e.EntryId, StringComparer.Ordinal);
        var infos = order.Select(c => (PlistNode)PrelinkInfo(c, layout.GetValueOrDefault(c.BundleId!))).ToList();
        var prelink = PropertyList.ToXml(new PlistDictionary((AuxiliaryKernelCollection.InfoDictionaryKey, new PlistArray(infos))));
        // The freshly built bytes belong to the collection alone: no copy.
        return AuxiliaryKernelCollection.ReadInPlace(NewBuilder(prelink).Build(), "AuxKC built by kmd");
    }

    private static PlistDictionary PrelinkInfo(Candidate c, MachOFilesetEntry? entry)
    {
        var entries = c.Bundle.InfoPlist!.Where(kv => !kv.Key.StartsWith("_Prelink", StringComparison.Ordinal)).ToList();
        entries.Add(new(AuxiliaryKernelCollection.BundlePathKey, new PlistString(c.MacPath)));
        if (entry is not null)
        {
            var relative = Path.GetRelativePath(c.Bundle.Path, c.Bundle.ExecutablePath!).Replace(Path.DirectorySeparatorChar, '/');
            entries.Add(new(AuxiliaryKernelCollection.ExecutableRelativePathKey, new PlistString(relative)));
            entries.Add(new(AuxiliaryKernelCollection.ExecutableLoadAddrKey, new PlistInteger(entry.VmAddress)));
            entries.Add(new(AuxiliaryKernelCollection.ExecutableSizeKey, new PlistInteger(c.SliceBytes!.Length)));
        }
        entries.Add(new(AuxiliaryKernelCollection.KcIdKey, new PlistInteger(AuxiliaryKernelCollection.KcKindAuxiliary)));
        return new PlistDictionary(entries);
    }

    /// <summary>Mutable working state for one candidate during a build (never escapes).</summary>
    private sealed class Candidate(KextBundle bundle, string macPath)
    {
        private HashSet<string>? _defined;

        public KextBundle Bundle { get; } = bundle;
        public string MacPath { get; } = macPath;
        public string? BundleId => Bundle.BundleId;
        public List<TrustCheck> Checks { get; } = [];
        public TrustCode? Failure { get; private set; }
        public bool Alive => Failure is null;
        public KextSignatureVerification? Signature { get; set; }
        public string? TeamId { get; set; }
        public ConsentSource? Consent { get; set; }
        public MachOSlice? Slice { get; set; }
        public byte[]? SliceBytes { get; set; }

        public bool Defines(string symbol)
        {
            _defined ??= Slice is null ? [] : Slice.DefinedExternalSymbols.Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
            return _defined.Contains(symbol);
        }

        public void Add(TrustCheck check)
        {
            Checks.Add(check);
            if (check.Outcome == TrustOutcome.Failed)
            {
                Failure = check.Code;
            }
        }

        public void Add(TrustStep step, TrustOutcome outcome, TrustCode? code, string detail) => Add(new TrustCheck(step, outcome, code, detail));

        public void Pass(TrustStep step, string detail) => Add(step, TrustOutcome.Passed, null, detail);

        public void Fail(TrustStep step, TrustCode code, string detail) => Add(step, TrustOutcome.Failed, code, detail);

        public KmdDecision ToDecision() => new()
        {
            BundlePath = MacPath,
            BundleId = Bundle.BundleId,
            Version = Bundle.VersionString,
            TeamId = TeamId,
            CdHash = Signature?.PrimaryCdHash,
            Consent = Consent,
            Exclusion = Failure,
            Checks = [.. Checks],
        };
    }
}

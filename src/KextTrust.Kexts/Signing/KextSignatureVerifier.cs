using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using KextTrust.Formats;
using KextTrust.Formats.CodeSigning;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Bundles;

namespace KextTrust.Kexts.Signing;

/// <summary>One input of <see cref="KextSignatureVerifier.VerifyMany"/>: its verdict, or why it could not be read.</summary>
public sealed record KextVerifyItem(string Path, KextSignatureVerification? Result, KextSignatureInputException? Error);

/// <summary>
/// Verifies kext bundles and bare Mach-O files as kext_tools' <c>checkKextSignature</c> does with
/// <c>kSecCSCheckAllArchitectures | kSecCSStrictValidate</c>: for every slice every code page of the best
/// CodeDirectory as the kernel does (of every CodeDirectory with <see cref="KextSignatureVerifierOptions.AllCodeDirectories"/>;
/// hashed in parallel across files, slices and page ranges, straight from the memory map), the cdhash of every
/// CodeDirectory against the CMS and every CodeDirectory's special slots, the
/// special slots (Info.plist, requirements, CodeResources, entitlements), the resource seal (<c>files2</c> under
/// <c>rules2</c>, nested plug-ins recursively), the CMS and its chain to the pinned Apple Root CA, the kext-load
/// requirement and the code's designated requirement.
/// </summary>
public static class KextSignatureVerifier
{
    /// <summary>This verifier with fixed <paramref name="options"/>, as an <see cref="IKextSignatureVerifier"/>.</summary>
    public static IKextSignatureVerifier Using(KextSignatureVerifierOptions? options = null) => new Bound(options ?? new KextSignatureVerifierOptions());

    private sealed class Bound(KextSignatureVerifierOptions options) : IKextSignatureVerifier
    {
        public KextSignatureVerification Verify(string path) => KextSignatureVerifier.Verify(path, options);
    }

    /// <summary>Verifies one kext bundle or Mach-O file.</summary>
    /// <exception cref="KextSignatureInputException">The path is missing or its Mach-O / SuperBlob is malformed.</exception>
    public static KextSignatureVerification Verify(string path, KextSignatureVerifierOptions? options = null)
    {
        var item = VerifyMany([path], options)[0];
        return item.Result ?? throw item.Error!;
    }

    /// <summary>
    /// Verifies several inputs. Each input is opened, hashed, judged and closed before the worker takes the next, so
    /// at most one input per worker is open and read buffers are reused; the inputs are spread over
    /// <see cref="KextSignatureVerifierOptions.MaxDegreeOfParallelism"/> workers largest first, and the pages of one
    /// input are also spread over idle workers, so one large file does not finish alone on one core.
    /// </summary>
    public static IReadOnlyList<KextVerifyItem> VerifyMany(IReadOnlyList<string> paths, KextSignatureVerifierOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(paths);
        options ??= new KextSignatureVerifierOptions();
        var dop = options.MaxDegreeOfParallelism is > 0 ? options.MaxDegreeOfParallelism.Value : Environment.ProcessorCount;
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = dop };
        var results = new KextVerifyItem[paths.Count];
        using var cache = new ChainVerdictCache();

        void VerifyOne(int i)
        {
            Target target;
            try
            {
                target = Target.Prepare(paths[i], depth: 0);
            }
            catch (KextSignatureInputException e)
            {
                results[i] = new KextVerifyItem(paths[i], null, e);
                return;
            }
            using (target)
            {
                var chunks = target.SelfAndNested().SelectMany(t => t.Chunks(options)).ToArray();
                if (dop == 1 || chunks.Length == 1)
                {
                    foreach (var c in chunks)
                    {
                        c.Run();
                    }
                }
                else
                {
                    Parallel.ForEach(System.Collections.Concurrent.Partitioner.Create(chunks, loadBalance: true), parallel, c => c.Run());
                }
                results[i] = new KextVerifyItem(paths[i], target.Finish(options, cache), null);
            }
        }

        if (dop == 1 || paths.Count == 1)
        {
            for (var i = 0; i < paths.Count; i++)
            {
                VerifyOne(i);
            }
        }
        else
        {
            // Largest first (files by length; folders count as small), handed out one at a time: the big files
            // start early and the small ones fill the gaps.
            var order = Enumerable.Range(0, paths.Count).OrderByDescending(i => LengthOf(paths[i])).ToArray();
            Parallel.ForEach(System.Collections.Concurrent.Partitioner.Create(order, loadBalance: true), parallel, VerifyOne);
        }
        return results;
    }

    private static long LengthOf(string path)
    {
        try
        {
            var info = new FileInfo(path);
            return info.Exists ? info.Length : 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return 0;
        }
    }

    /// <summary>Hashes <paramref name="data"/> with the CodeDirectory's algorithm into <paramref name="destination"/> (≥ 48 bytes); returns the slot size.</summary>
    internal static int HashInto(CodeSigningHashType type, ReadOnlySpan<byte> data, Span<byte> destination)
    {
        switch (type)
        {
            case CodeSigningHashType.Sha1: return SHA1.HashData(data, destination);
            case CodeSigningHashType.Sha256: return SHA256.HashData(data, destination);
            case CodeSigningHashType.Sha256Truncated: SHA256.HashData(data, destination); return 20;
            case CodeSigningHashType.Sha384: return SHA384.HashData(data, destination);
            default: throw new ArgumentOutOfRangeException(nameof(type), type, "unknown code-signing hash type");
        }
    }

    /// <summary>
    /// The CodeDirectories whose code pages are hashed by default: those of the strongest hash type present, as the
    /// kernel chooses them. xnu's <c>cs_validate_csblob</c> (bsd/kern/ubc_subr.c) ranks every CodeDirectory of the
    /// SuperBlob with <c>hash_rank</c> (<c>hashPriorities</c>: SHA-1 &lt; SHA-256-truncated &lt; SHA-256 &lt; SHA-384),
    /// keeps the highest as the blob's <c>csb_cd</c>, and <c>cs_validate_hash</c> / <c>cs_validate_page</c> check every
    /// page of the running code against that one only; Security.framework's <c>CodeDirectory::bestHashOf</c>
    /// (libsecurity_codesigning codedirectory.cpp) makes the same choice for the code directory it reports. The
    /// alternates are bound through the CMS: their cdhashes are in the signed CDHashes attributes, which
    /// <see cref="CodeSignatureVerifier"/> checks against every CodeDirectory present, and their special slots are
    /// checked like the primary's. Userland static validation (<c>SecStaticCode::validateExecutable</c> in
    /// StaticCode.cpp, i.e. <c>codesign --verify</c>) hashes each page with every algorithm present; that is
    /// <see cref="KextSignatureVerifierOptions.AllCodeDirectories"/>. Ties (two CodeDirectories of one type, which
    /// the kernel rejects) are all hashed.
    /// </summary>
    internal static IReadOnlyList<CodeDirectory> BestCodeDirectories(IReadOnlyList<CodeDirectory> codeDirectories)
    {
        var best = codeDirectories.Max(cd => HashRank(cd.HashType));
        return codeDirectories.Where(cd => HashRank(cd.HashType) == best).ToArray();
    }

    /// <summary>xnu's <c>hash_rank</c>: higher is stronger, 0 = not a code-signing hash the kernel uses.</summary>
    private static int HashRank(CodeSigningHashType type) => type switch
    {
        CodeSigningHashType.Sha1 => 1,
        CodeSigningHashType.Sha256Truncated => 2,
        CodeSigningHashType.Sha256 => 3,
        CodeSigningHashType.Sha384 => 4,
        _ => 0,
    };

    private sealed class PageChunk(SliceState slice, CodeDirectory cd, int first, int end)
    {
        public SliceState Slice { get; } = slice;
        public CodeDirectory Cd { get; } = cd;
        public List<(int Page, long Offset)>? Mismatches { get; private set; }
        public int Count => end - first;

        /// <summary>
        /// Bytes read per call when the pages come through the file handle: large enough to amortise the call, small
        /// enough to stay in cache, and the size a pooled Mach-O open reads small files into, so that one rented
        /// buffer per thread serves both.
        /// </summary>
        private const int ReadSize = MachOFile.PooledReadLimit;

        /// <summary>Bytes per code page: the CodeDirectory's page size, or the whole code limit for page size 0.</summary>
        private long PageBytes => Cd.PageSize == 0 ? (long)Cd.EffectiveCodeLimit : Cd.PageSize;

        public void Run()
        {
            var limit = (long)Cd.EffectiveCodeLimit;
            var pageSize = PageBytes;
            if (Slice.Pages is { } handle)
            {
                RunFromFile(handle, limit, pageSize);
                return;
            }
            Span<byte> digest = stackalloc byte[64];
            var data = Slice.Slice.Data.Span;
            using var hash = IncrementalHash.CreateHash(CodeSigningHash.AlgorithmOf(Cd.HashType));
            for (var i = first; i < end; i++)
            {
                var start = i * pageSize;
                Check(hash, i, data.Slice((int)start, (int)Math.Min(pageSize, limit - start)), digest);
            }
        }

        /// <summary>
        /// Hashes one page with the chunk's reused digest context: a one-shot hash per page would set up and tear down
        /// a native context for every 4 KiB (about 1 µs each, a quarter of the page's hashing time).
        /// </summary>
        private void Check(IncrementalHash hash, int page, ReadOnlySpan<byte> bytes, Span<byte> digest)
        {
            hash.AppendData(bytes);
            hash.GetHashAndReset(digest);
            if (!Matches(page, digest))
            {
                Mismatch(page);
            }
        }

        /// <summary>True when <paramref name="digest"/> starts with the hash the CodeDirectory records for <paramref name="page"/>.</summary>
        private bool Matches(int page, ReadOnlySpan<byte> digest) =>
            digest[..Cd.HashSize].SequenceEqual(Cd.Bytes.Span.Slice((int)Cd.HashOffset + page * Cd.HashSize, Cd.HashSize));

        private void Mismatch(int page) => (Mismatches ??= []).Add((page, Slice.Slice.FileOffset + page * PageBytes));

        /// <summary>
        /// The pages of a memory-mapped file, read through the file's own handle into one pooled buffer (reused
        /// by the next chunk on this thread, so it stays in cache and no fresh page is touched) instead of faulting
        /// the map in page by page. Pages that cannot be read (the file shrank since it was opened) are mismatches.
        /// </summary>
        private void RunFromFile(Microsoft.Win32.SafeHandles.SafeFileHandle handle, long limit, long pageSize)
        {
            Span<byte> digest = stackalloc byte[64];
            var fileBase = Slice.Slice.FileOffset;
            var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(ReadSize);
            using var hash = IncrementalHash.CreateHash(CodeSigningHash.AlgorithmOf(Cd.HashType));
            try
            {
                if (pageSize <= buffer.Length)
                {
                    var perRead = (int)(buffer.Length / pageSize);
                    for (var i = first; i < end; i += perRead)
                    {
                        var n = Math.Min(perRead, end - i);
                        var start = i * pageSize;
                        var bytes = (int)Math.Min(n * pageSize, limit - start);
                        var got = ReadAll(handle, buffer.AsSpan(0, bytes), fileBase + start);
                        for (var k = 0; k < n; k++)
                        {
                            var from = (int)(k * pageSize);
                            var length = (int)Math.Min(pageSize, bytes - from);
                            if (from + length > got)
                            {
                                Mismatch(i + k);
                                continue;
                            }
                            Check(hash, i + k, buffer.AsSpan(from, length), digest);
                        }
                    }
                    return;
                }
                // A page larger than the buffer (page size 0 = one page over the whole code): hashed as it streams.
                for (var i = first; i < end; i++)
                {
                    var start = i * pageSize;
                    var length = Math.Min(pageSize, limit - start);
                    var complete = true;
                    for (long done = 0; done < length && complete;)
                    {
                        var want = (int)Math.Min(buffer.Length, length - done);
                        var got = ReadAll(handle, buffer.AsSpan(0, want), fileBase + start + done);
                        hash.AppendData(buffer, 0, got);
                        complete = got == want;
                        done += got;
                    }
                    hash.GetHashAndReset(digest);
                    if (!complete || !Matches(i, digest))
                    {
                        Mismatch(i);
                    }
                }
            }
            finally
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        /// <summary>Reads until <paramref name="buffer"/> is full or the file ends; returns the bytes read.</summary>
        private static int ReadAll(Microsoft.Win32.SafeHandles.SafeFileHandle handle, Span<byte> buffer, long offset)
        {
            var read = 0;
            while (read < buffer.Length)
            {
                var n = RandomAccess.Read(handle, buffer[read..], offset + read);
                if (n == 0)
                {
                    break;
                }
                read += n;
            }
            return read;
        }
    }

    private sealed class SliceState(MachOSlice slice, EmbeddedSignature? signature, Microsoft.Win32.SafeHandles.SafeFileHandle? pages)
    {
        private CodeSignatureVerification? _cms;
        private IReadOnlyList<X509Certificate2> _cmsCertificates = [];

        public MachOSlice Slice { get; } = slice;
        public EmbeddedSignature? Signature { get; } = signature;

        /// <summary>The open file to read code pages through when the slice's bytes are a memory map (owned by the target); null when they are in memory.</summary>
        public Microsoft.Win32.SafeHandles.SafeFileHandle? Pages { get; } = pages;
        public List<PageChunk> Chunks { get; } = [];
        public List<KextSignatureProblem> LayoutProblems { get; } = [];

        /// <summary>The CMS certificate set, decoded once per run and borrowed from the run's cache.</summary>
        public IReadOnlyList<X509Certificate2> CmsCertificates => _cmsCertificates;

        /// <summary>Verifies the CMS once (from the parallel pass or from <c>Finish</c>).</summary>
        public CodeSignatureVerification VerifyCms(KextSignatureVerifierOptions options, ChainVerdictCache cache)
        {
            if (_cms is null)
            {
                _cms = CodeSignatureVerifier.Verify(Signature!, new CodeSignatureVerifierOptions { TestRoot = options.TrustedTestRoot, Now = options.Now }, cache, out var certs);
                _cmsCertificates = certs;
            }
            return _cms;
        }
    }

    private sealed class Target : IDisposable
    {
        private readonly Microsoft.Win32.SafeHandles.SafeFileHandle? _pages;

        private Target(string path, string kind, KextBundle? bundle, MachOFile? file, Microsoft.Win32.SafeHandles.SafeFileHandle? pages, List<SliceState> slices,
            List<Target> nested, List<KextSignatureProblem> problems)
        {
            _pages = pages;
            Path = path;
            Kind = kind;
            Bundle = bundle;
            File = file;
            Slices = slices;
            Nested = nested;
            Problems = problems;
        }

        public string Path { get; }
        public string Kind { get; }
        public KextBundle? Bundle { get; }
        public MachOFile? File { get; }
        public List<SliceState> Slices { get; }
        public List<Target> Nested { get; }
        public List<KextSignatureProblem> Problems { get; }

        public IEnumerable<Target> SelfAndNested() => Nested.SelectMany(n => n.SelfAndNested()).Prepend(this);

        public static Target Prepare(string path, int depth)
        {
            var problems = new List<KextSignatureProblem>();
            if (System.IO.File.Exists(path))
            {
                var (file, pages) = OpenMachO(path);
                try
                {
                    return new Target(System.IO.Path.GetFullPath(path), "macho", null, file, pages, ReadSlices(file, pages, path), [], problems);
                }
                catch
                {
                    file.Dispose();
                    pages?.Dispose();
                    throw;
                }
            }
            if (!Directory.Exists(path))
            {
                throw new KextSignatureInputException(path, -1, "no such file or folder");
            }
            KextBundle bundle;
            try
            {
                bundle = KextBundle.Open(path);
            }
            catch (KextBundleException e)
            {
                throw new KextSignatureInputException(path, -1, e.Reason, e);
            }
            foreach (var p in bundle.Problems.Where(p => p.Code is KextProblemCode.ExecutableMissing or KextProblemCode.InfoPlistMissing
                         or KextProblemCode.InfoPlistUnreadable or KextProblemCode.RequiredFileIsEscapingLink))
            {
                problems.Add(new(KextSignatureProblemCode.Unreadable, p.Message, Path: p.Path));
            }
            MachOFile? exe = null;
            Microsoft.Win32.SafeHandles.SafeFileHandle? exePages = null;
            var slices = new List<SliceState>();
            var nested = new List<Target>();
            try
            {
                if (bundle.HasExecutable)
                {
                    (exe, exePages) = OpenMachO(bundle.ExecutablePath!);
                    slices = ReadSlices(exe, exePages, bundle.ExecutablePath!);
                }
                foreach (var plugIn in bundle.PlugIns)
                {
                    nested.Add(Prepare(plugIn.Path, depth + 1));
                }
                return new Target(bundle.Path, "kext", bundle, exe, exePages, slices, nested, problems);
            }
            catch
            {
                exe?.Dispose();
                exePages?.Dispose();
                foreach (var n in nested)
                {
                    n.Dispose();
                }
                throw;
            }
        }

        /// <summary>
        /// Opens and parses an executable through one handle: its bytes are read into a pooled buffer, or mapped when
        /// large, and then the handle is kept to stream the code pages from the same file (null when in memory).
        /// </summary>
        private static (MachOFile File, Microsoft.Win32.SafeHandles.SafeFileHandle? Pages) OpenMachO(string path)
        {
            Microsoft.Win32.SafeHandles.SafeFileHandle? handle = null;
            try
            {
                handle = System.IO.File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
                var file = MachOFile.OpenPooled(handle, path, MachOReadOptions.LoadCommandsOnly);
                if (file.IsMemoryMapped)
                {
                    return (file, handle);
                }
                handle.Dispose();
                return (file, null);
            }
            catch (KextTrustFormatException e)
            {
                handle?.Dispose();
                throw new KextSignatureInputException(path, e.Offset, e.Rule, e);
            }
            catch (IOException e)
            {
                handle?.Dispose();
                throw new KextSignatureInputException(path, -1, e.Message, e);
            }
            catch (UnauthorizedAccessException e)
            {
                handle?.Dispose();
                throw new KextSignatureInputException(path, -1, e.Message, e);
            }
        }

        private static List<SliceState> ReadSlices(MachOFile file, Microsoft.Win32.SafeHandles.SafeFileHandle? pages, string path)
        {
            var list = new List<SliceState>();
            foreach (var slice in file.Slices)
            {
                EmbeddedSignature? sig = null;
                if (slice.CodeSignature is { } cs)
                {
                    try
                    {
                        sig = EmbeddedSignature.Parse(slice.CodeSignatureData, $"{path} [{slice.Architecture}]");
                    }
                    catch (KextTrustFormatException e)
                    {
                        throw new KextSignatureInputException(path, slice.FileOffset + cs.DataOffset + Math.Max(0, e.Offset),
                            $"embedded signature of the {slice.Architecture} slice: {e.Rule}", e);
                    }
                }
                list.Add(new SliceState(slice, sig, pages));
            }
            return list;
        }

        public IEnumerable<PageChunk> Chunks(KextSignatureVerifierOptions options)
        {
            var per = Math.Max(1, options.PagesPerWorkItem);
            foreach (var s in Slices)
            {
                if (s.Signature is null)
                {
                    continue;
                }
                var hashed = options.AllCodeDirectories ? s.Signature.AllCodeDirectories : BestCodeDirectories(s.Signature.AllCodeDirectories);
                foreach (var cd in s.Signature.AllCodeDirectories)
                {
                    var limit = cd.EffectiveCodeLimit;
                    var expectedSlots = limit == 0 ? 0 : cd.PageSize == 0 ? 1 : (long)((limit + (ulong)cd.PageSize - 1) / (ulong)cd.PageSize);
                    if (limit > (ulong)s.Slice.Size || expectedSlots != cd.CodeSlotCount)
                    {
                        s.LayoutProblems.Add(new(KextSignatureProblemCode.CodeLimitInvalid,
                            $"{cd.HashType} CodeDirectory covers {limit} bytes in {cd.CodeSlotCount} pages, but the slice is {s.Slice.Size} bytes and that limit needs {expectedSlots} pages",
                            s.Slice.Architecture, s.Slice.FileOffset, Path));
                        continue;
                    }
                    if (!hashed.Contains(cd))
                    {
                        continue; // an alternate: bound through its cdhash in the CMS, its pages not hashed
                    }
                    for (var first = 0; first < cd.CodeSlotCount; first += per)
                    {
                        var chunk = new PageChunk(s, cd, first, (int)Math.Min(cd.CodeSlotCount, (long)first + per));
                        s.Chunks.Add(chunk);
                        yield return chunk;
                    }
                }
            }
        }

        public KextSignatureVerification Finish(KextSignatureVerifierOptions options, ChainVerdictCache cache)
        {
            var nestedResults = Nested.Select(n => n.Finish(options, cache)).ToArray();
            var problems = new List<KextSignatureProblem>(Problems);
            var sliceFacts = new List<SliceVerification>();
            var signed = Slices.Where(s => s.Signature is not null).ToArray();
            var identifier = Bundle?.BundleId ?? signed.FirstOrDefault()?.Signature!.CodeDirectory.Identifier;
            // As the kernel sees it: each Mac loads the slice of its own architecture (x86_64, arm64e) and ignores the
            // others, so an i386 MH_OBJECT beside an x86_64 MH_KEXT_BUNDLE (acidanthera's fat kexts) is a kext binary.
            var kernelSlices = Slices.Where(s => s.Slice.Architecture is "x86_64" or "x86_64h" or "arm64e").ToArray();
            var isKext = Slices.Any(s => s.Slice.FileType == MachOFileType.KextBundle) && kernelSlices.All(s => s.Slice.FileType == MachOFileType.KextBundle);
            var codeResourcesPath = Bundle is null ? null : System.IO.Path.Combine(Bundle.CodeSignaturePath, "CodeResources");

            foreach (var s in Slices)
            {
                sliceFacts.Add(new SliceVerification(s.Slice.Architecture, s.Slice.FileType.ToString(), s.Signature is not null,
                    s.Signature?.AllCodeDirectories.Select(cd => new SliceCdHash(s.Slice.Architecture, cd.Slot, cd.HashType.ToString(), Convert.ToHexStringLower(cd.ComputeCdHash()))).ToArray() ?? [],
                    s.Chunks.Sum(c => (long)c.Count),
                    s.Chunks.Select(c => c.Cd).Distinct().Sum(cd => (long)cd.EffectiveCodeLimit)));
            }

            if (signed.Length == 0 && problems.Count == 0)
            {
                if (codeResourcesPath is not null && System.IO.File.Exists(codeResourcesPath))
                {
                    problems.Add(new(Slices.Count == 0 ? KextSignatureProblemCode.Unreadable : KextSignatureProblemCode.SliceUnsigned,
                        Slices.Count == 0
                            ? "codeless kext with a resource seal: its detached _CodeSignature/CodeSignature is not supported"
                            : "the bundle has a resource seal but its executable is not signed", Path: codeResourcesPath));
                }
                else if (nestedResults.All(n => n.Status == KextSignatureStatus.Unsigned))
                {
                    return Result(KextSignatureStatus.Unsigned, problems, null, TrustAnchorKind.None, null, sliceFacts, isKext, null, null, [], nestedResults, identifier, options);
                }
            }
            foreach (var s in Slices.Where(s => s.Signature is null))
            {
                if (signed.Length > 0)
                {
                    problems.Add(new(KextSignatureProblemCode.SliceUnsigned, "this slice has no LC_CODE_SIGNATURE while others are signed", s.Slice.Architecture, s.Slice.FileOffset, File?.SourceName));
                }
            }

            // The bytes the bundle parsed; read here only when it could not use them (unparsable, or behind an escaping link).
            ReadOnlyMemory<byte>? infoBytes = Bundle?.InfoPlistBytes
                ?? (Bundle is not null && System.IO.File.Exists(Bundle.InfoPlistPath) ? System.IO.File.ReadAllBytes(Bundle.InfoPlistPath) : (ReadOnlyMemory<byte>?)null);
            var resourcesBytes = codeResourcesPath is not null && System.IO.File.Exists(codeResourcesPath) ? System.IO.File.ReadAllBytes(codeResourcesPath) : null;
            var adhocSlices = 0;
            CodeSignatureVerification? cmsFacts = null;
            RequirementEvaluation? kextReq = null, designated = null;
            var chainCerts = new List<ChainCertificate>();
            var exePath = File?.SourceName;
            var allCdHashes = signed.SelectMany(s => s.Signature!.AllCodeDirectories).Select(cd => cd.ComputeCdHash()).ToArray();

            foreach (var s in signed)
            {
                var sig = s.Signature!;
                var arch = s.Slice.Architecture;
                problems.AddRange(s.LayoutProblems);
                foreach (var chunk in s.Chunks)
                {
                    foreach (var (page, offset) in (chunk.Mismatches ?? []).Take(options.MaxPageProblemsPerCodeDirectory))
                    {
                        problems.Add(new(KextSignatureProblemCode.CodePageHashMismatch,
                            $"code page {page} does not match its {chunk.Cd.HashType} hash in the CodeDirectory (slot 0x{chunk.Cd.Slot:x})", arch, offset, exePath, page));
                    }
                }
                var cs = s.Slice.CodeSignature!.Value;
                foreach (var cd in sig.AllCodeDirectories)
                {
                    if (cd.EffectiveCodeLimit != cs.DataOffset)
                    {
                        problems.Add(new(KextSignatureProblemCode.SignatureLayoutInvalid,
                            $"the {cd.HashType} CodeDirectory's code limit {cd.EffectiveCodeLimit} is not the signature offset {cs.DataOffset}", arch, s.Slice.FileOffset + cs.DataOffset, exePath));
                    }
                    if (cd.Identifier != sig.CodeDirectory.Identifier)
                    {
                        problems.Add(new(KextSignatureProblemCode.CodeDirectoriesDisagree,
                            $"CodeDirectory slot 0x{cd.Slot:x} names '{cd.Identifier}' but the primary names '{sig.CodeDirectory.Identifier}'", arch, null, exePath));
                    }
                    CheckSpecialSlots(cd, sig, arch, infoBytes, resourcesBytes, codeResourcesPath, problems);
                }
                if (Bundle?.BundleId is { } bid && sig.CodeDirectory.Identifier != bid)
                {
                    problems.Add(new(KextSignatureProblemCode.CodeDirectoriesDisagree,
                        $"the signing identifier '{sig.CodeDirectory.Identifier}' is not the bundle identifier '{bid}'", arch, null, exePath));
                }

                var adhoc = sig.AllCodeDirectories.All(cd => (cd.Flags & CodeDirectoryFlags.Adhoc) != 0);
                var cms = s.VerifyCms(options, cache);
                if (cms.Has(SignatureProblemCode.NoCmsSignature))
                {
                    if (adhoc)
                    {
                        adhocSlices++;
                    }
                    else
                    {
                        problems.Add(new(KextSignatureProblemCode.CmsMissing, "no CMS signature, and the CodeDirectory is not flagged ad-hoc", arch, null, exePath));
                    }
                }
                else
                {
                    foreach (var p in cms.Problems)
                    {
                        problems.Add(new(MapCms(p.Code), $"{p.Code}: {p.Detail}", arch, null, exePath));
                    }
                    cmsFacts ??= cms;
                    if (cms.Chain.Count > chainCerts.Count)
                    {
                        chainCerts = [.. cms.Chain];
                    }
                }

                var chain = ChainObjects(s, cms, cache, options.TrustedTestRoot);
                var anchor = cms.Has(SignatureProblemCode.UntrustedRoot) ? TrustAnchorKind.None : cms.Anchor;
                var ctx = new RequirementContext(sig.CodeDirectory.Identifier, chain, anchor, Bundle?.InfoPlist, allCdHashes, sig.CodeDirectory.Platform);
                var kr = RequirementEvaluator.Evaluate(RequirementEvaluator.KextRequirement(identifier), ctx);
                kextReq = Worse(kextReq, kr);
                if (sig.Requirements?.Designated is { } dr)
                {
                    var dre = RequirementEvaluator.Evaluate(dr, ctx);
                    designated = Worse(designated, dre);
                    if (dre.Outcome == RequirementOutcome.NotSatisfied && !adhoc && !cms.Has(SignatureProblemCode.UntrustedRoot))
                    {
                        problems.Add(new(KextSignatureProblemCode.DesignatedRequirementNotSatisfied, $"designated requirement not satisfied: {dr.Text}", arch, null, exePath));
                    }
                }
            }

            if (Bundle is not null && (resourcesBytes is not null || signed.Length > 0))
            {
                CheckResources(resourcesBytes, codeResourcesPath!, nestedResults, options, problems, adhocSlices > 0);
            }

            var deduped = problems.DistinctBy(p => (p.Code, p.Arch, p.Offset, p.Path, p.Code == KextSignatureProblemCode.CodePageHashMismatch || p.Code == KextSignatureProblemCode.CmsInvalid ? p.Message : "")).ToArray();
            var status = deduped.Length > 0 ? KextSignatureStatus.Invalid
                : adhocSlices > 0 ? KextSignatureStatus.AdHoc
                : signed.Length == 0 ? KextSignatureStatus.Unsigned
                : KextSignatureStatus.Valid;
            return Result(status, deduped, cmsFacts, cmsFacts?.Anchor ?? TrustAnchorKind.None, cmsFacts?.Signer, sliceFacts, isKext,
                kextReq, designated, chainCerts, nestedResults, identifier, options,
                teamFallback: signed.FirstOrDefault()?.Signature!.CodeDirectory.TeamId);
        }

        private KextSignatureVerification Result(KextSignatureStatus status, IReadOnlyList<KextSignatureProblem> problems, CodeSignatureVerification? cms,
            TrustAnchorKind anchor, SignerFacts? signer, IReadOnlyList<SliceVerification> slices, bool isKext, RequirementEvaluation? kextReq,
            RequirementEvaluation? designated, IReadOnlyList<ChainCertificate> chain, IReadOnlyList<KextSignatureVerification> nested, string? identifier,
            KextSignatureVerifierOptions options, string? teamFallback = null)
        {
            string? trustedRoot = anchor switch
            {
                TrustAnchorKind.AppleRoot => "Apple Root CA",
                TrustAnchorKind.TestRoot => options.TrustedTestRoot?.Subject,
                _ => null,
            };
            return new KextSignatureVerification(Path, Kind, identifier, status, problems, signer?.TeamId ?? teamFallback, signer?.CommonName,
                signer?.HasKextSigningAuthority ?? false, anchor, trustedRoot, anchor == TrustAnchorKind.TestRoot, slices, isKext,
                kextReq, designated, chain, nested);
        }

        private static RequirementEvaluation? Worse(RequirementEvaluation? a, RequirementEvaluation b) =>
            a is null || b.Outcome == RequirementOutcome.NotSatisfied || (b.Outcome == RequirementOutcome.Unknown && a.Outcome == RequirementOutcome.Satisfied) ? b : a;

        private static KextSignatureProblemCode MapCms(SignatureProblemCode code) => code switch
        {
            SignatureProblemCode.ContentDigestMismatch or SignatureProblemCode.CdHashesAttributeMissing or SignatureProblemCode.CdHashesMismatch
                or SignatureProblemCode.CdHashesV2Mismatch => KextSignatureProblemCode.CdHashMismatch,
            SignatureProblemCode.UntrustedRoot => KextSignatureProblemCode.UntrustedRoot,
            SignatureProblemCode.CertificateNotTimeValid => KextSignatureProblemCode.CertificateExpired,
            SignatureProblemCode.ChainInvalid => KextSignatureProblemCode.ChainInvalid,
            _ => KextSignatureProblemCode.CmsInvalid,
        };

        /// <summary>
        /// The built chain as certificate objects, borrowed (nothing here is owned): the CMS set's (owned by the cache),
        /// the run's pinned Apple root (owned by the cache) and the caller's test root.
        /// </summary>
        private static List<X509Certificate2> ChainObjects(SliceState slice, CodeSignatureVerification cms, ChainVerdictCache cache, X509Certificate2? testRoot)
        {
            var list = new List<X509Certificate2>();
            if (cms.Chain.Count == 0 || slice.Signature?.Signature is null)
            {
                return list;
            }
            var pool = new List<(X509Certificate2 Certificate, string Sha256)>();
            foreach (var c in slice.CmsCertificates.Append(cache.AppleRoot))
            {
                pool.Add((c, cache.Sha256Of(c)));
            }
            if (testRoot is not null)
            {
                pool.Add((testRoot, cache.Sha256Of(testRoot)));
            }
            foreach (var element in cms.Chain)
            {
                var index = pool.FindIndex(p => p.Sha256 == element.Sha256);
                if (index < 0)
                {
                    break;
                }
                list.Add(pool[index].Certificate);
                pool.RemoveAt(index);
            }
            return list;
        }

        private void CheckSpecialSlots(CodeDirectory cd, EmbeddedSignature sig, string arch, ReadOnlyMemory<byte>? info, byte[]? resources, string? resourcesPath, List<KextSignatureProblem> problems)
        {
            var exe = File?.SourceName;
            void Slot(int slot, ReadOnlySpan<byte> actual, bool present, KextSignatureProblemCode mismatch, KextSignatureProblemCode missing, string what, string? path)
            {
                if (!cd.HasSpecialSlotHash(slot))
                {
                    if (present && slot is 2 or 5 or 7)
                    {
                        problems.Add(new(mismatch, $"{what} is present but not bound (special slot {slot} is empty)", arch, null, path));
                    }
                    return;
                }
                if (!present)
                {
                    problems.Add(new(missing, $"special slot {slot} is filled but {what} is missing", arch, null, path));
                    return;
                }
                Span<byte> digest = stackalloc byte[64];
                var n = HashInto(cd.HashType, actual, digest);
                if (!digest[..cd.HashSize].SequenceEqual(cd.GetSpecialSlotHash(slot).Span))
                {
                    problems.Add(new(mismatch, $"{what} does not match special slot {slot} of the {cd.HashType} CodeDirectory", arch, null, path));
                }
                _ = n;
            }

            Slot(1, info.GetValueOrDefault().Span, info is not null, KextSignatureProblemCode.InfoPlistHashMismatch, KextSignatureProblemCode.InfoPlistMissing, "Info.plist", Bundle?.InfoPlistPath ?? exe);
            if (Bundle is not null && info is not null && !cd.HasSpecialSlotHash(1))
            {
                problems.Add(new(KextSignatureProblemCode.InfoPlistHashMismatch, "Info.plist is not bound to the signature (special slot 1 is empty)", arch, null, Bundle.InfoPlistPath));
            }
            Slot(2, sig.Requirements is { } r ? r.Bytes.Span : default, sig.Requirements is not null,
                KextSignatureProblemCode.RequirementsHashMismatch, KextSignatureProblemCode.RequirementsHashMismatch, "the requirement set", exe);
            Slot(3, resources, resources is not null, KextSignatureProblemCode.ResourceDirectoryHashMismatch, KextSignatureProblemCode.ResourceDirectoryMissing,
                "_CodeSignature/CodeResources", resourcesPath ?? exe);
            if (Bundle is not null && !cd.HasSpecialSlotHash(3))
            {
                problems.Add(new(KextSignatureProblemCode.ResourceDirectoryMissing, "the bundle's resources are not sealed (special slot 3 is empty)", arch, null, resourcesPath));
            }
            Slot(5, sig.Entitlements is { } e ? e.Bytes.Span : default, sig.Entitlements is not null,
                KextSignatureProblemCode.EntitlementsHashMismatch, KextSignatureProblemCode.EntitlementsHashMismatch, "the XML entitlements blob", exe);
            Slot(7, sig.DerEntitlements is { } d ? d.Bytes.Span : default, sig.DerEntitlements is not null,
                KextSignatureProblemCode.DerEntitlementsHashMismatch, KextSignatureProblemCode.DerEntitlementsHashMismatch, "the DER entitlements blob", exe);
        }

        private void CheckResources(byte[]? bytes, string resourcesPath, IReadOnlyList<KextSignatureVerification> nestedResults,
            KextSignatureVerifierOptions options, List<KextSignatureProblem> problems, bool adhoc)
        {
            if (bytes is null)
            {
                problems.Add(new(KextSignatureProblemCode.ResourceDirectoryMissing, "_CodeSignature/CodeResources is missing", null, null, resourcesPath));
                return;
            }
            CodeResources seal;
            try
            {
                seal = CodeResources.Parse(bytes, resourcesPath);
            }
            catch (CodeResourcesFormatException e)
            {
                problems.Add(new(KextSignatureProblemCode.ResourceDirectoryMalformed, e.Rule, null, null, resourcesPath));
                return;
            }
            var v2 = seal.Rules2.Count > 0;
            var rules = v2 ? seal.Rules2 : seal.Rules;
            var files = v2 ? seal.Files2 : seal.Files;
            if (rules.Count == 0)
            {
                problems.Add(new(KextSignatureProblemCode.ResourceDirectoryMalformed, "neither rules2 nor rules is present", null, null, resourcesPath));
                return;
            }
            var contents = Bundle!.ContentsPath;
            if (Bundle.Layout == KextBundleLayout.Contents)
            {
                foreach (var extra in new DirectoryInfo(Bundle.Path).EnumerateFileSystemInfos().Where(i => i.Name != "Contents"))
                {
                    problems.Add(new(KextSignatureProblemCode.ResourceAdded, $"'{extra.Name}' sits beside Contents/ and cannot be sealed", null, null, extra.FullName));
                }
            }
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var item in BundleResourceScanner.Scan(contents, Bundle.ExecutablePath, rules))
            {
                seen.Add(item.RelativePath);
                if (!files.TryGetValue(item.RelativePath, out var entry))
                {
                    problems.Add(new(KextSignatureProblemCode.ResourceAdded, $"'{item.RelativePath}' is not in the resource seal", null, null, item.FullPath));
                    continue;
                }
                switch (item.Kind)
                {
                    case BundleItemKind.Symlink:
                    {
                        var target = new FileInfo(item.FullPath).LinkTarget ?? new DirectoryInfo(item.FullPath).LinkTarget;
                        if (entry.Symlink != target)
                        {
                            problems.Add(new(KextSignatureProblemCode.SymlinkChanged,
                                $"'{item.RelativePath}' links to '{target}' but the seal records {(entry.Symlink is null ? "a file" : $"'{entry.Symlink}'")}", null, null, item.FullPath));
                        }
                        break;
                    }
                    case BundleItemKind.NestedBundle:
                    {
                        var full = System.IO.Path.GetFullPath(item.FullPath);
                        var nested = nestedResults.FirstOrDefault(n => n.Path == full);
                        if (nested is null)
                        {
                            try
                            {
                                nested = Verify(full, options);
                            }
                            catch (KextSignatureInputException e)
                            {
                                problems.Add(new(KextSignatureProblemCode.NestedCodeInvalid, $"nested code '{item.RelativePath}' is unreadable: {e.Rule}", null, e.Offset, full));
                                break;
                            }
                        }
                        var ok = nested.Status == KextSignatureStatus.Valid || (adhoc && nested.Status == KextSignatureStatus.AdHoc);
                        if (!ok)
                        {
                            problems.Add(new(KextSignatureProblemCode.NestedCodeInvalid,
                                $"nested code '{item.RelativePath}' is {nested.Status}: {string.Join("; ", nested.Problems.Take(3).Select(p => p.Code))}", null, null, full));
                        }
                        else if (entry.CdHash is { } sealedHash && !nested.CdHashes.Contains(Convert.ToHexStringLower(sealedHash)))
                        {
                            problems.Add(new(KextSignatureProblemCode.NestedCodeInvalid,
                                $"nested code '{item.RelativePath}' has cdhashes [{string.Join(", ", nested.CdHashes)}], the seal records {Convert.ToHexStringLower(sealedHash)}", null, null, full));
                        }
                        break;
                    }
                    default:
                    {
                        if (entry.Symlink is not null)
                        {
                            problems.Add(new(KextSignatureProblemCode.SymlinkChanged, $"'{item.RelativePath}' is a file but the seal records a link to '{entry.Symlink}'", null, null, item.FullPath));
                            break;
                        }
                        var (sha1, sha256) = BundleResourceScanner.HashFile(item.FullPath);
                        var match = entry.Hash2 is { } h2 ? h2.AsSpan().SequenceEqual(sha256)
                            : entry.Hash is { } h1 && h1.AsSpan().SequenceEqual(sha1);
                        if (!match)
                        {
                            problems.Add(new(KextSignatureProblemCode.ResourceChanged,
                                $"'{item.RelativePath}' does not match its {(entry.Hash2 is not null ? "SHA-256 hash2" : "SHA-1 hash")} in the seal", null, null, item.FullPath));
                        }
                        break;
                    }
                }
            }
            foreach (var (rel, entry) in files)
            {
                if (!seen.Contains(rel) && !entry.Optional)
                {
                    var full = System.IO.Path.Combine(contents, rel.Replace('/', System.IO.Path.DirectorySeparatorChar));
                    var exists = System.IO.File.Exists(full) || Directory.Exists(full);
                    if (!exists)
                    {
                        problems.Add(new(KextSignatureProblemCode.ResourceMissing, $"'{rel}' is sealed but missing", null, null, full));
                    }
                }
            }
        }

        public void Dispose()
        {
            File?.Dispose();
            _pages?.Dispose();
            foreach (var n in Nested)
            {
                n.Dispose();
            }
        }
    }
}

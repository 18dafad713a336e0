using System.Collections.Immutable;
using KextTrust.Formats;
using KextTrust.Formats.Image4;
using KextTrust.Formats.MachO;
using KextTrust.Formats.PropertyLists;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;

namespace KextTrust.Boot.KernelManagement;

/// <summary>
/// Bytes are not a well-formed Auxiliary Kernel Collection: names the file, the file offset where the rule was broken
/// (a Mach-O structure, a fileset entry's load command, or the prelink info value) and the rule.
/// </summary>
public sealed class AuxKcFormatException : KextTrustFormatException
{
    /// <inheritdoc/>
    public override string ErrorCode => "AuxKcMalformed";

    /// <summary>Creates the exception for <paramref name="source"/> at file offset <paramref name="offset"/> (−1 when not applicable).</summary>
    public AuxKcFormatException(string? source, long offset, string rule, Exception? inner = null)
        : base("auxiliary kernel collection", source, offset, rule, inner)
    {
    }
}

/// <summary>One kext of an AuxKC as its prelink info and fileset entry describe it.</summary>
/// <param name="BundleId">CFBundleIdentifier (and LC_FILESET_ENTRY id when it has code).</param>
/// <param name="Version">CFBundleVersion.</param>
/// <param name="BundlePath"><c>_PrelinkBundlePath</c>.</param>
/// <param name="ExecutableRelativePath"><c>_PrelinkExecutableRelativePath</c>; null for a codeless kext.</param>
/// <param name="Libraries">OSBundleLibraries: bundle id → requested version.</param>
/// <param name="InfoDictionary">The whole prelink info dictionary of the kext.</param>
/// <param name="FilesetEntry">The LC_FILESET_ENTRY, or null for a codeless kext.</param>
/// <param name="Executable">The parsed entry (its load commands, symbols), or null for a codeless kext.</param>
public sealed record AuxKcKext(string BundleId, string Version, string BundlePath, string? ExecutableRelativePath,
    IReadOnlyDictionary<string, string> Libraries, PlistDictionary InfoDictionary, MachOFilesetEntry? FilesetEntry, MachOSlice? Executable);

/// <summary>
/// An Auxiliary Kernel Collection: an <c>MH_FILESET</c> Mach-O for the Mac's architecture (arm64e or x86_64) with
/// one <c>LC_FILESET_ENTRY</c> per kext with code (entry id = bundle id, the kext's own slice embedded and relocated
/// to a page-aligned offset) in load order, and <c>__PRELINK_INFO,__info</c> holding an XML plist whose
/// <c>_PrelinkInfoDictionary</c> is the array of the kexts' Info.plist dictionaries (load order, codeless kexts too),
/// each with <c>_PrelinkBundlePath</c>, <c>_PrelinkExecutableRelativePath</c>, <c>_PrelinkExecutableLoadAddr</c>,
/// <c>_PrelinkExecutableSize</c> (kexts with code) and <c>_PrelinkKCID</c> = 3 (kc_kind Auxiliary) added.
/// </summary>
public sealed record AuxiliaryKernelCollection
{
    /// <summary>xnu <c>kc_kind_t</c> KCKindAuxiliary.</summary>
    public const int KcKindAuxiliary = 3;

    /// <summary>Prelink info keys (xnu <c>libkern/prelink.h</c>).</summary>
    public const string InfoDictionaryKey = "_PrelinkInfoDictionary", BundlePathKey = "_PrelinkBundlePath",
        ExecutableRelativePathKey = "_PrelinkExecutableRelativePath", ExecutableLoadAddrKey = "_PrelinkExecutableLoadAddr",
        ExecutableSizeKey = "_PrelinkExecutableSize", KcIdKey = "_PrelinkKCID";

    /// <summary>Virtual address of the AuxKC header on Apple silicon.</summary>
    public const ulong Arm64VmBase = 0xFFFFFE0010000000;

    /// <summary>Virtual address of the AuxKC header on Intel.</summary>
    public const ulong X86_64VmBase = 0xFFFFFF8010000000;

    private readonly ReadOnlyMemory<byte> _bytes;

    private AuxiliaryKernelCollection(ReadOnlyMemory<byte> bytes, KextArchitecture architecture, ImmutableArray<AuxKcKext> kexts)
    {
        _bytes = bytes;
        Architecture = architecture;
        Kexts = kexts;
    }

    /// <summary>The file bytes.</summary>
    public ReadOnlyMemory<byte> Bytes => _bytes;

    /// <summary>The architecture of the collection.</summary>
    public KextArchitecture Architecture { get; }

    /// <summary>The kexts in load order.</summary>
    public ImmutableArray<AuxKcKext> Kexts { get; }

    /// <summary>The AuxKC header's virtual address for an architecture.</summary>
    internal static ulong VmBaseFor(KextArchitecture architecture) => architecture == KextArchitecture.Arm64 ? Arm64VmBase : X86_64VmBase;

    /// <summary>SHA-384 of the file: the measurement the Secure Enclave signs (one pass over the bytes).</summary>
    internal Sha384Digest ComputeMeasurement() => Sha384Digest.Compute(_bytes.Span);

    /// <summary>
    /// Reads and checks an AuxKC (copying the bytes): a thin MH_FILESET for arm64e or x86_64; a prelink info plist whose
    /// every dictionary has a bundle id, version, bundle path and <c>_PrelinkKCID</c> 3; bundle ids unique; every fileset
    /// entry described by exactly one dictionary with code, at the <c>_PrelinkExecutableLoadAddr</c> it records, and
    /// parsing as an MH_KEXT_BUNDLE of the collection's architecture. <paramref name="source"/> (the file's path, or a
    /// label for bytes that have none) is named by every error.
    /// </summary>
    /// <exception cref="AuxKcFormatException">Any defect, with the file offset where it was found.</exception>
    public static AuxiliaryKernelCollection Read(ReadOnlySpan<byte> bytes, string source) => ReadInPlace(bytes.ToArray(), source);

    /// <summary>
    /// Reads and checks an AuxKC as <see cref="Read"/> does, without copying: the collection refers to
    /// <paramref name="bytes"/>, which must stay valid and unchanged while it is used (iBoot's verified payload).
    /// </summary>
    /// <exception cref="AuxKcFormatException">Any defect, with the file offset where it was found.</exception>
    internal static AuxiliaryKernelCollection ReadInPlace(ReadOnlyMemory<byte> bytes, string source)
    {
        ArgumentNullException.ThrowIfNull(source);
        MachOSlice fileset;
        try
        {
            var file = MachOFile.FromBytes(bytes, source);
            if (file.IsFat)
            {
                throw new AuxKcFormatException(source, 0, "a fat file, not a kernel collection");
            }
            fileset = file.Slices[0];
        }
        catch (MachOFormatException e)
        {
            throw new AuxKcFormatException(source, e.Offset, e.Rule, e);
        }
        if (fileset.FileType != MachOFileType.Fileset)
        {
            throw new AuxKcFormatException(source, fileset.FileOffset + fileset.HeaderOffset + FileTypeField, $"filetype is {fileset.FileType}, not MH_FILESET");
        }
        if (!KextArchitectures.TryParseSliceName(fileset.Architecture, out var architecture))
        {
            throw new AuxKcFormatException(source, fileset.FileOffset + fileset.HeaderOffset + CpuTypeField, $"architecture {fileset.Architecture} is not arm64e or x86_64");
        }
        var info = fileset.Segments.Where(s => s.Name == "__PRELINK_INFO").SelectMany(s => s.Sections).Where(s => s.SectionName == "__info").ToList();
        if (info.Count != 1)
        {
            throw new AuxKcFormatException(source, info.Count == 0 ? fileset.FileOffset + fileset.HeaderOffset : fileset.FileOffset + info[1].Offset,
                $"there must be exactly one __PRELINK_INFO,__info section, there are {info.Count}");
        }
        // Offsets of the prelink info's values are relative to the section: the file offset is infoAt + that.
        var infoAt = fileset.FileOffset + info[0].Offset;
        PlistNode root;
        PlistOffsets at;
        try
        {
            root = PropertyList.ParseXml(fileset.Data.Span.Slice((int)info[0].Offset, (int)info[0].Size), source, out at);
        }
        catch (KextTrustFormatException e)
        {
            throw new AuxKcFormatException(source, e.Offset >= 0 ? infoAt + e.Offset : infoAt, $"prelink info: {e.Rule}", e);
        }
        AuxKcFormatException Fail(long offsetInInfo, string rule) => new(source, offsetInInfo >= 0 ? infoAt + offsetInInfo : infoAt, rule);
        if (root is not PlistDictionary top || top.GetArray(InfoDictionaryKey) is not { } dicts)
        {
            throw Fail(root is PlistDictionary d0 ? at.Of(d0, InfoDictionaryKey) : at.Root, $"prelink info has no {InfoDictionaryKey} array");
        }
        var entries = new Dictionary<string, MachOFilesetEntry>(StringComparer.Ordinal);
        foreach (var e in fileset.FilesetEntries)
        {
            if (!entries.TryAdd(e.EntryId, e))
            {
                throw new AuxKcFormatException(source, e.CommandFileOffset, $"two fileset entries have the id {e.EntryId}");
            }
        }
        var used = new HashSet<string>(StringComparer.Ordinal);
        var kexts = ImmutableArray.CreateBuilder<AuxKcKext>(dicts.Count);
        var target = architecture.MachOTarget();
        for (var i = 0; i < dicts.Count; i++)
        {
            if (dicts[i] is not PlistDictionary d)
            {
                throw Fail(at.Of(dicts, i), $"an {InfoDictionaryKey} item is not a dictionary");
            }
            var id = d.GetString("CFBundleIdentifier") ?? throw Fail(at.Of(d, "CFBundleIdentifier"), "a kext has no CFBundleIdentifier string");
            var version = d.GetString("CFBundleVersion") ?? throw Fail(at.Of(d, "CFBundleVersion"), $"{id} has no CFBundleVersion string");
            var path = d.GetString(BundlePathKey) ?? throw Fail(at.Of(d, BundlePathKey), $"{id} has no {BundlePathKey} string");
            if (d.GetInt64(KcIdKey) != KcKindAuxiliary)
            {
                throw Fail(at.Of(d, KcIdKey), $"{id}: {KcIdKey} is not {KcKindAuxiliary} (Auxiliary)");
            }
            if (!used.Add(id))
            {
                throw Fail(at.Of(d), $"{id} is described twice");
            }
            var libraries = new Dictionary<string, string>(StringComparer.Ordinal);
            if (d.TryGetValue("OSBundleLibraries", out var libs))
            {
                if (libs is not PlistDictionary ld || ld.Any(kv => kv.Value is not PlistString))
                {
                    throw Fail(at.Of(d, "OSBundleLibraries"), $"{id}: OSBundleLibraries is not a dictionary of version strings");
                }
                foreach (var (k, v) in ld)
                {
                    libraries[k] = ((PlistString)v).Value;
                }
            }
            var relative = d.GetString(ExecutableRelativePathKey);
            MachOFilesetEntry? entry = null;
            MachOSlice? executable = null;
            if (relative is not null)
            {
                if (!entries.TryGetValue(id, out entry))
                {
                    throw Fail(at.Of(d, ExecutableRelativePathKey), $"{id} has an executable but no fileset entry");
                }
                if (d.Get<PlistInteger>(ExecutableLoadAddrKey)?.AsUInt64 != entry.VmAddress)
                {
                    throw Fail(at.Of(d, ExecutableLoadAddrKey), $"{id}: {ExecutableLoadAddrKey} does not match its fileset entry's vmaddr");
                }
                try
                {
                    executable = fileset.OpenFilesetEntry(entry);
                }
                catch (MachOFormatException e)
                {
                    throw new AuxKcFormatException(source, e.Offset, $"{id}: {e.Rule}", e);
                }
                if (executable.FileType != MachOFileType.KextBundle || executable.Architecture != fileset.Architecture)
                {
                    throw new AuxKcFormatException(source, executable.FileOffset + executable.HeaderOffset,
                        $"{id}: fileset entry is a {executable.Architecture} {executable.FileType}, not a {target} kext");
                }
            }
            kexts.Add(new AuxKcKext(id, version, path, relative, libraries, d, entry, executable));
        }
        var described = kexts.Where(k => k.FilesetEntry is not null).Select(k => k.BundleId).ToHashSet(StringComparer.Ordinal);
        var orphan = entries.Values.FirstOrDefault(e => !described.Contains(e.EntryId));
        if (orphan is not null)
        {
            throw new AuxKcFormatException(source, orphan.CommandFileOffset, $"fileset entry {orphan.EntryId} is not described by the prelink info");
        }
        return new AuxiliaryKernelCollection(bytes, architecture, kexts.MoveToImmutable());
    }

    /// <summary>Offsets in <c>mach_header_64</c> of cputype and filetype.</summary>
    private const int CpuTypeField = 4, FileTypeField = 12;

    /// <summary>Equal when the bytes are equal.</summary>
    public bool Equals(AuxiliaryKernelCollection? other) => other is not null && _bytes.Span.SequenceEqual(other._bytes.Span);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(_bytes.Length, Kexts.Length);
}

using System.Collections.Immutable;
using KextTrust.Formats;
using KextTrust.Formats.Image4;
using KextTrust.Formats.MachO;
using KextTrust.Formats.PropertyLists;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;

namespace KextTrust.Boot.KernelManagement;

/// <summary>Thrown when bytes are not a well-formed Auxiliary Kernel Collection.</summary>
public sealed class AuxKcFormatException(string message, Exception? inner = null) : Exception("AuxKC: " + message, inner);

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
    public static ulong VmBaseFor(KextArchitecture architecture) => architecture == KextArchitecture.Arm64 ? Arm64VmBase : X86_64VmBase;

    /// <summary>The builder architecture for a Mac: arm64e on Apple silicon, x86_64 on Intel.</summary>
    public static MachOTargetArchitecture TargetFor(KextArchitecture architecture) =>
        architecture == KextArchitecture.Arm64 ? MachOTargetArchitecture.Arm64e : MachOTargetArchitecture.X86_64;

    /// <summary>SHA-384 of the file: the measurement the Secure Enclave signs (one pass over the bytes).</summary>
    public Sha384Digest ComputeMeasurement() => Sha384Digest.Compute(_bytes.Span);

    /// <summary>
    /// Reads and checks an AuxKC (copying the bytes): a thin MH_FILESET for arm64e or x86_64; a prelink info plist whose
    /// every dictionary has a bundle id, version, bundle path and <c>_PrelinkKCID</c> 3; bundle ids unique; every fileset
    /// entry described by exactly one dictionary with code, at the <c>_PrelinkExecutableLoadAddr</c> it records, and
    /// parsing as an MH_KEXT_BUNDLE of the collection's architecture.
    /// </summary>
    /// <exception cref="AuxKcFormatException">Any defect.</exception>
    public static AuxiliaryKernelCollection Read(ReadOnlySpan<byte> bytes) => ReadInPlace(bytes.ToArray());

    /// <summary>
    /// Reads and checks an AuxKC as <see cref="Read"/> does, without copying: the collection refers to
    /// <paramref name="bytes"/>, which must stay valid and unchanged while it is used (iBoot's verified payload).
    /// </summary>
    /// <exception cref="AuxKcFormatException">Any defect.</exception>
    public static AuxiliaryKernelCollection ReadInPlace(ReadOnlyMemory<byte> bytes)
    {
        var copy = bytes;
        MachOSlice fileset;
        try
        {
            var file = MachOFile.FromBytes(copy, "AuxKC");
            if (file.IsFat)
            {
                throw new AuxKcFormatException("a fat file, not a kernel collection");
            }
            fileset = file.Slices[0];
        }
        catch (MachOFormatException e)
        {
            throw new AuxKcFormatException(e.Message, e);
        }
        if (fileset.FileType != MachOFileType.Fileset)
        {
            throw new AuxKcFormatException($"filetype is {fileset.FileType}, not MH_FILESET");
        }
        var architecture = fileset.Architecture switch
        {
            "arm64e" => KextArchitecture.Arm64,
            "x86_64" => KextArchitecture.X86_64,
            var other => throw new AuxKcFormatException($"architecture {other} is not arm64e or x86_64"),
        };
        var info = fileset.Segments.Where(s => s.Name == "__PRELINK_INFO").SelectMany(s => s.Sections).Where(s => s.SectionName == "__info").ToList();
        if (info.Count != 1)
        {
            throw new AuxKcFormatException("there must be exactly one __PRELINK_INFO,__info section");
        }
        PlistNode root;
        try
        {
            root = PropertyList.ParseXml(fileset.Data.Span.Slice((int)info[0].Offset, (int)info[0].Size), "AuxKC prelink info");
        }
        catch (KextTrustFormatException e)
        {
            throw new AuxKcFormatException($"prelink info: {e.Message}", e);
        }
        if (root is not PlistDictionary top || top.GetArray(InfoDictionaryKey) is not { } dicts)
        {
            throw new AuxKcFormatException($"prelink info has no {InfoDictionaryKey} array");
        }
        var entries = new Dictionary<string, MachOFilesetEntry>(StringComparer.Ordinal);
        foreach (var e in fileset.FilesetEntries)
        {
            if (!entries.TryAdd(e.EntryId, e))
            {
                throw new AuxKcFormatException($"two fileset entries have the id {e.EntryId}");
            }
        }
        var used = new HashSet<string>(StringComparer.Ordinal);
        var kexts = ImmutableArray.CreateBuilder<AuxKcKext>(dicts.Count);
        var target = TargetFor(architecture);
        foreach (var node in dicts)
        {
            if (node is not PlistDictionary d)
            {
                throw new AuxKcFormatException($"an {InfoDictionaryKey} item is not a dictionary");
            }
            var id = d.GetString("CFBundleIdentifier") ?? throw new AuxKcFormatException("a kext has no CFBundleIdentifier");
            var version = d.GetString("CFBundleVersion") ?? throw new AuxKcFormatException($"{id} has no CFBundleVersion");
            var path = d.GetString(BundlePathKey) ?? throw new AuxKcFormatException($"{id} has no {BundlePathKey}");
            if (d.GetInt64(KcIdKey) != KcKindAuxiliary)
            {
                throw new AuxKcFormatException($"{id}: {KcIdKey} is not {KcKindAuxiliary} (Auxiliary)");
            }
            if (!used.Add(id))
            {
                throw new AuxKcFormatException($"{id} is described twice");
            }
            var libraries = new Dictionary<string, string>(StringComparer.Ordinal);
            if (d.TryGetValue("OSBundleLibraries", out var libs))
            {
                if (libs is not PlistDictionary ld || ld.Any(kv => kv.Value is not PlistString))
                {
                    throw new AuxKcFormatException($"{id}: OSBundleLibraries is not a dictionary of version strings");
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
                    throw new AuxKcFormatException($"{id} has an executable but no fileset entry");
                }
                if (d.Get<PlistInteger>(ExecutableLoadAddrKey)?.AsUInt64 != entry.VmAddress)
                {
                    throw new AuxKcFormatException($"{id}: {ExecutableLoadAddrKey} does not match its fileset entry's vmaddr");
                }
                try
                {
                    executable = fileset.OpenFilesetEntry(entry);
                }
                catch (MachOFormatException e)
                {
                    throw new AuxKcFormatException($"{id}: {e.Message}", e);
                }
                if (executable.FileType != MachOFileType.KextBundle || executable.Architecture != fileset.Architecture)
                {
                    throw new AuxKcFormatException($"{id}: fileset entry is a {executable.Architecture} {executable.FileType}, not a {target} kext");
                }
            }
            kexts.Add(new AuxKcKext(id, version, path, relative, libraries, d, entry, executable));
        }
        var described = kexts.Where(k => k.FilesetEntry is not null).Select(k => k.BundleId).ToHashSet(StringComparer.Ordinal);
        var orphan = entries.Keys.FirstOrDefault(k => !described.Contains(k));
        if (orphan is not null)
        {
            throw new AuxKcFormatException($"fileset entry {orphan} is not described by the prelink info");
        }
        return new AuxiliaryKernelCollection(copy, architecture, kexts.MoveToImmutable());
    }

    /// <summary>Equal when the bytes are equal.</summary>
    public bool Equals(AuxiliaryKernelCollection? other) => other is not null && _bytes.Span.SequenceEqual(other._bytes.Span);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(_bytes.Length, Kexts.Length);
}

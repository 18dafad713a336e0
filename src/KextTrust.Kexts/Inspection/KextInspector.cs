using KextTrust.Formats;
using KextTrust.Formats.CodeSigning;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Bundles;

namespace KextTrust.Kexts.Inspection;

/// <summary>What the embedded code signature of one slice says about itself (not a verification).</summary>
public sealed record CodeSignatureSummary(
    bool Present,
    string? CodeDirectoryVersion,
    string? HashType,
    string? Identifier,
    string? TeamId,
    string? CdHash,
    int AlternateCodeDirectories,
    bool HasCms,
    string? Error);

/// <summary>One architecture slice of an executable.</summary>
public sealed record SliceReport(
    string Arch,
    string FileType,
    string? Uuid,
    string? Platform,
    string? MinOS,
    string? Sdk,
    IReadOnlyList<string> UndefinedSymbols,
    int DefinedExternalSymbols,
    CodeSignatureSummary CodeSignature);

/// <summary>
/// A kext bundle (<see cref="Kind"/> <c>kext</c>), a bare Mach-O file (<c>macho</c>: it starts with a Mach-O or fat
/// magic, even when malformed further on), or a file that is not Mach-O at all (<c>not-macho</c>, with <see cref="Error"/>).
/// </summary>
public sealed record InspectReport(
    string Path,
    string Kind,
    string? BundleId,
    string? Version,
    string? CompatibleVersion,
    string? Executable,
    string? OSBundleRequired,
    IReadOnlyDictionary<string, string> Libraries,
    IReadOnlyList<string> Personalities,
    IReadOnlyList<InspectReport> Plugins,
    IReadOnlyList<SliceReport> Slices,
    IReadOnlyList<string> Problems,
    string? Error);

/// <summary>
/// Reads kexts and Mach-O files into <see cref="InspectReport"/>s: the identity, libraries and plug-ins of
/// a bundle, and per slice the architecture, file type, UUID, deployment target, imported symbols and what
/// the code signature claims. Malformed executables are reported on the item (<see cref="InspectReport.Error"/>).
/// </summary>
public static class KextInspector
{
    /// <summary>Inspects a kext bundle, a bare Mach-O file, or every kext under a folder.</summary>
    /// <exception cref="KextBundleException">The path does not exist.</exception>
    public static IReadOnlyList<InspectReport> InspectPath(string path)
    {
        var reports = new List<InspectReport>();
        InspectPath(path, reports.Add);
        return reports;
    }

    /// <summary>
    /// Inspects a kext bundle, a bare Mach-O file, or every kext under a folder (read on all cores), handing each
    /// report to <paramref name="inOrder"/> on the calling thread, in discovery order, as soon as it is next in line.
    /// </summary>
    /// <exception cref="KextBundleException">The path does not exist (thrown before any report is passed on).</exception>
    public static void InspectPath(string path, Action<InspectReport> inOrder)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(inOrder);
        if (File.Exists(path))
        {
            inOrder(InspectMachO(path));
            return;
        }
        if (!Directory.Exists(path))
        {
            throw new KextBundleException(path, "no such file or folder");
        }
        if (LooksLikeBundle(path))
        {
            inOrder(InspectBundle(KextBundle.Open(path)));
            return;
        }
        // Bundles are independent: read them on all cores, pass them on in discovery order.
        OrderedParallel.Run(KextDiscovery.FindKexts(path), p => InspectBundle(KextBundle.Open(p)), (_, r) => inOrder(r));
    }

    private static bool LooksLikeBundle(string path) =>
        path.TrimEnd('/', '\\').EndsWith(KextDiscovery.KextExtension, StringComparison.OrdinalIgnoreCase)
        || File.Exists(Path.Combine(path, "Contents", "Info.plist"))
        || File.Exists(Path.Combine(path, "Info.plist"));

    public static InspectReport InspectBundle(KextBundle bundle)
    {
        IReadOnlyList<SliceReport> slices = [];
        string? error = null;
        if (bundle.HasExecutable && bundle.ExecutablePath is { } exe)
        {
            (slices, error) = ReadSlices(exe);
        }
        return new InspectReport(
            bundle.Path,
            "kext",
            bundle.BundleId,
            bundle.VersionString,
            bundle.CompatibleVersionString,
            bundle.ExecutablePath is null ? null : Path.GetRelativePath(bundle.Path, bundle.ExecutablePath),
            bundle.OSBundleRequired,
            bundle.Libraries.ToDictionary(l => l.BundleId, l => l.RequestedVersion, StringComparer.Ordinal),
            bundle.PersonalityNames,
            bundle.PlugIns.Select(InspectBundle).ToArray(),
            slices,
            bundle.Problems.Select(p => p.ToString()).ToArray(),
            error);
    }

    public static InspectReport InspectMachO(string path)
    {
        var (slices, error) = ReadSlices(path);
        var kind = error is null || HasMachOMagic(path) ? "macho" : "not-macho";
        return new InspectReport(Path.GetFullPath(path), kind, null, null, null, null, null,
            new Dictionary<string, string>(), [], [], slices, [], error);
    }

    /// <summary>True when the file starts with a thin (32/64-bit, either byte order) or fat (32/64-bit) Mach-O magic.</summary>
    private static bool HasMachOMagic(string path)
    {
        Span<byte> head = stackalloc byte[4];
        try
        {
            using var f = File.OpenRead(path);
            if (f.ReadAtLeast(head, 4, throwOnEndOfStream: false) < 4)
            {
                return false;
            }
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(head) is 0xFEEDFACE or 0xFEEDFACF or 0xCEFAEDFE or 0xCFFAEDFE
            or 0xCAFEBABE or 0xBEBAFECA or 0xCAFEBABF or 0xBFBAFECA;
    }

    private static (IReadOnlyList<SliceReport>, string?) ReadSlices(string path)
    {
        try
        {
            using var file = MachOFile.OpenPooled(path);
            return (file.Slices.Select(s => ToReport(s, path)).ToArray(), null);
        }
        catch (KextTrustFormatException ex)
        {
            return ([], ex.Message);
        }
        catch (IOException ex)
        {
            return ([], $"{path}: {ex.Message}");
        }
        catch (UnauthorizedAccessException ex)
        {
            return ([], $"{path}: {ex.Message}");
        }
    }

    private static SliceReport ToReport(MachOSlice slice, string path)
    {
        string? platform = null, minOS = null, sdk = null;
        if (slice.BuildVersion is { } bv)
        {
            platform = bv.Platform.ToString();
            minOS = bv.MinOS.ToString();
            sdk = bv.Sdk.ToString();
        }
        else if (slice.VersionMins.Count > 0)
        {
            var vm = slice.VersionMins[0];
            platform = vm.Platform.ToString();
            minOS = vm.Version.ToString();
            sdk = vm.Sdk.ToString();
        }
        return new SliceReport(
            slice.Architecture,
            slice.FileType.ToString(),
            slice.UuidString,
            platform,
            minOS,
            sdk,
            slice.UndefinedSymbolNames.ToList(), // one buffer, not a string per symbol (JSON writes the bytes)
            slice.DefinedExternalSymbols.Count,
            SummarizeSignature(slice, path));
    }

    /// <summary>Reads what a slice's signature claims about itself (identifier, team, cdhash).</summary>
    internal static CodeSignatureSummary SummarizeSignature(MachOSlice slice, string? sourceName)
    {
        if (slice.CodeSignature is null)
        {
            return new CodeSignatureSummary(false, null, null, null, null, null, 0, false, null);
        }
        try
        {
            var sig = EmbeddedSignature.Parse(slice.CodeSignatureData, sourceName);
            var cd = sig.CodeDirectory;
            var strongest = sig.AllCodeDirectories.MaxBy(c => (int)c.HashType == 3 ? 1 : (int)c.HashType) ?? cd;
            return new CodeSignatureSummary(
                true,
                $"0x{cd.Version:x}",
                cd.HashType.ToString(),
                cd.Identifier,
                cd.TeamId,
                Convert.ToHexStringLower(strongest.ComputeCdHash()),
                sig.AlternateCodeDirectories.Count,
                sig.Signature is not null,
                null);
        }
        catch (KextTrustFormatException ex)
        {
            return new CodeSignatureSummary(true, null, null, null, null, null, 0, false, ex.Message);
        }
    }
}

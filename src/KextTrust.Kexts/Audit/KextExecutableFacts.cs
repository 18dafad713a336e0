using System.Collections.Frozen;
using System.Collections.Immutable;
using System.Runtime.InteropServices;
using KextTrust.Formats;
using KextTrust.Formats.MachO;
using KextTrust.Kexts.Kpi;

namespace KextTrust.Kexts.Audit;

/// <summary>What the audit needs of one Mach-O slice, read once.</summary>
/// <param name="Architecture">Mach-O architecture name: x86_64, x86_64h, arm64, arm64e, …</param>
/// <param name="KextArchitecture">X86_64 or Arm64; null for architectures no Mac kext runs on (i386, arm64_32, …).</param>
/// <param name="FileType">MH_KEXT_BUNDLE for a kext.</param>
/// <param name="UndefinedSymbols">Imported symbols, mangled.</param>
/// <param name="DefinedExternalSymbols">Exported symbol names (what a kext linking against this one can use).</param>
/// <param name="Signature">Presence of the slice's embedded signature (not verified).</param>
internal sealed record KextSliceFacts(
    string Architecture,
    KextArchitecture? KextArchitecture,
    MachOFileType FileType,
    ImmutableArray<string> UndefinedSymbols,
    IReadOnlySet<string> DefinedExternalSymbols,
    KextSignatureFacts Signature)
{
    /// <summary>True for an arm64e slice: the only arm64 flavour Apple silicon loads as a kext.</summary>
    public bool IsArm64e => Architecture == Kpi.KextArchitecture.Arm64.SliceName();

    /// <summary>True for a slice an Intel Mac loads (x86_64 or x86_64h).</summary>
    public bool IsIntel => KextArchitecture == Kpi.KextArchitecture.X86_64;

    /// <summary>True for MH_KEXT_BUNDLE.</summary>
    public bool IsKextBundle => FileType == MachOFileType.KextBundle;

    /// <summary>The facts of each of <see cref="UndefinedSymbols"/> in <see cref="ImportIndex"/>, when the slice was read with one.</summary>
    internal KextImportFacts[]? Imports { get; init; }

    /// <summary>The index <see cref="Imports"/> come from.</summary>
    internal KextImportIndex? ImportIndex { get; init; }
}

/// <summary>A parsed executable: its slices, or why it could not be read.</summary>
/// <param name="Path">Full path of the file.</param>
/// <param name="Slices">The slices in file order; empty when <paramref name="Error"/> is set.</param>
/// <param name="Error">Why the file is unreadable (malformed Mach-O, I/O error), else null.</param>
internal sealed record KextExecutableFacts(string Path, ImmutableArray<KextSliceFacts> Slices, string? Error)
{
    /// <summary>Reads a file: one pass over the Mach-O, no exception for malformed input.</summary>
    public static KextExecutableFacts Read(string path) => Read(path, null);

    /// <summary>
    /// Reads a file: one pass over the Mach-O, no exception for malformed input. With an index, each import is looked
    /// up there from its bytes in the file and <see cref="KextSliceFacts.UndefinedSymbols"/> are the index's strings
    /// (no string per import).
    /// </summary>
    public static KextExecutableFacts Read(string path, KextImportIndex? imports)
    {
        ArgumentNullException.ThrowIfNull(path);
        var full = System.IO.Path.GetFullPath(path);
        try
        {
            using var file = MachOFile.OpenPooled(full);
            var slices = ImmutableArray.CreateBuilder<KextSliceFacts>(file.Slices.Count);
            foreach (var s in file.Slices)
            {
                KextArchitecture? arch = KextArchitectures.TryParse(s.Architecture, out var a) ? a : null;
                var defined = new HashSet<string>(s.DefinedExternalSymbols.Count, StringComparer.Ordinal);
                foreach (var d in s.DefinedExternalSymbols)
                {
                    defined.Add(d.Name);
                }
                ImmutableArray<string> undefined;
                KextImportFacts[]? facts = null;
                if (imports is null)
                {
                    undefined = [.. s.UndefinedSymbols];
                }
                else
                {
                    facts = imports.Lookup(s.UndefinedSymbolNames);
                    var names = new string[facts.Length];
                    for (var i = 0; i < names.Length; i++)
                    {
                        names[i] = facts[i].Symbol;
                    }
                    undefined = ImmutableCollectionsMarshal.AsImmutableArray(names);
                }
                slices.Add(new KextSliceFacts(s.Architecture, arch, s.FileType, undefined, defined, KextSignaturePresence.Read(s, full))
                {
                    Imports = facts,
                    ImportIndex = facts is null ? null : imports,
                });
            }
            return new KextExecutableFacts(full, slices.MoveToImmutable(), null);
        }
        catch (KextTrustFormatException ex)
        {
            return new KextExecutableFacts(full, [], ex.Message);
        }
        catch (IOException ex)
        {
            return new KextExecutableFacts(full, [], $"{full}: {ex.Message}");
        }
        catch (UnauthorizedAccessException ex)
        {
            return new KextExecutableFacts(full, [], $"{full}: {ex.Message}");
        }
    }

    /// <summary>The names a kext linking against this one can use on an architecture (all slices of that architecture).</summary>
    public IReadOnlySet<string> ExportsFor(KextArchitecture architecture)
    {
        var matching = Slices.Where(s => s.KextArchitecture == architecture).ToArray();
        return matching.Length switch
        {
            0 => FrozenSet<string>.Empty,
            1 => matching[0].DefinedExternalSymbols,
            _ => matching.SelectMany(s => s.DefinedExternalSymbols).ToHashSet(StringComparer.Ordinal),
        };
    }
}

using System.Buffers.Binary;
using System.Text;
using KextTrust.Formats.MachO;
using KextTrust.TestSupport;

namespace KextTrust.Formats.Tests.MachO;

/// <summary>Undefined symbols as UTF-8 bytes (<see cref="MachOSlice.UndefinedSymbolNames"/>) agree with the strings.</summary>
public sealed class MachOSymbolNamesTests
{
    /// <summary>llvm-nm's order: by UTF-8 bytes.</summary>
    private static readonly IComparer<string> ByUtf8Bytes =
        Comparer<string>.Create((a, b) => Encoding.UTF8.GetBytes(a).AsSpan().SequenceCompareTo(Encoding.UTF8.GetBytes(b)));

    private static byte[] KextImporting(params string[] imports)
    {
        var b = new KextBinaryBuilder(MachOTargetArchitecture.X86_64, new byte[] { 0xC3 }).AddDefinedSymbol("_f", KextSymbolSection.Text);
        foreach (var i in imports)
        {
            b.AddUndefinedSymbol(i);
        }
        return b.Build();
    }

    private static void AssertAgree(MachOSlice slice)
    {
        var names = slice.UndefinedSymbolNames;
        Assert.Equal(slice.UndefinedSymbols.Count, names.Count);
        for (var i = 0; i < names.Count; i++)
        {
            Assert.Equal(slice.UndefinedSymbols[i], Encoding.UTF8.GetString(names[i]));
        }
        var copy = names.ToList();
        Assert.Equal(slice.UndefinedSymbols, copy);
        Assert.Equal(names.IsValidUtf8, copy.IsValidUtf8);
    }

    /// <summary>Replaces the first occurrence of <paramref name="find"/> in the file (a name in the string table).</summary>
    private static void Patch(byte[] bytes, string find, byte[] replacement)
    {
        var at = bytes.AsSpan().IndexOf(Encoding.UTF8.GetBytes(find));
        Assert.True(at >= 0, find);
        replacement.CopyTo(bytes, at);
    }

    [Fact]
    public void Names_are_the_bytes_of_the_strings_in_llvm_nm_order()
    {
        string[] imports = ["_z", "_caf\u00e9", "__ZN9IOService5startEPS_", "_\U0001F600", "_\uFFFD", "_\uE000", "_a\"b\\c", "_IOLog"];
        var bytes = KextImporting(imports);
        var slice = MachOFile.FromBytes(bytes, "kext").Slices[0];

        Assert.Equal(imports.Order(ByUtf8Bytes), slice.UndefinedSymbols);
        Assert.True(slice.UndefinedSymbolNames.IsValidUtf8);
        AssertAgree(slice);

        using var dir = new TempDir();
        File.WriteAllBytes(dir.Combine("kext"), bytes);
        var nm = ExternalTool.RunChecked(ExternalTool.LlvmNm, "-u", dir.Combine("kext")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(nm, slice.UndefinedSymbols);
    }

    [Fact]
    public void A_symbol_table_out_of_name_order_is_sorted()
    {
        var bytes = KextImporting("_a", "_b", "_c");
        var st = MachOFile.FromBytes(bytes).Slices[0].SymbolTable!;
        // Swap n_strx of the first and last undefined entries: the table now lists _c, _b, _a.
        var undefinedAt = Enumerable.Range(0, (int)st.SymbolCount).Select(i => (int)st.SymbolOffset + i * 16)
            .Where(at => bytes[at + 4] == 0x01).ToArray();
        Assert.Equal(3, undefinedAt.Length);
        var first = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(undefinedAt[0]));
        var last = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(undefinedAt[2]));
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(undefinedAt[0]), last);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(undefinedAt[2]), first);

        var slice = MachOFile.FromBytes(bytes).Slices[0];
        Assert.Equal(["_c", "_b", "_a"], slice.SymbolTable!.Symbols.Where(s => s.IsUndefined).Select(s => s.Name));
        Assert.Equal(["_a", "_b", "_c"], slice.UndefinedSymbols);
        AssertAgree(slice);
    }

    [Fact]
    public void Ill_formed_utf8_reads_as_U_FFFD_and_sorts_by_the_decoded_strings()
    {
        // "_x" becomes "_\x80" (a lone continuation byte): before "_é" by its bytes, after it once decoded to U+FFFD.
        var bytes = KextImporting("_x", "_\u00e9", "_q");
        Patch(bytes, "_x\0", [(byte)'_', 0x80]);
        var slice = MachOFile.FromBytes(bytes).Slices[0];

        Assert.Equal(["_q", "_\u00e9", "_\uFFFD"], slice.UndefinedSymbols);
        Assert.False(slice.UndefinedSymbolNames.IsValidUtf8);
        Assert.Equal(new byte[] { (byte)'_', 0x80 }, slice.UndefinedSymbolNames[2].ToArray());
        AssertAgree(slice);
    }

    [Fact]
    public void Names_are_not_read_from_a_pooled_buffer_after_dispose()
    {
        using var dir = new TempDir();
        var path = dir.Combine("kext");
        File.WriteAllBytes(path, KextImporting("_IOLog", "_kprintf"));

        var file = MachOFile.OpenPooled(path);
        var slice = file.Slices[0];
        var copy = slice.UndefinedSymbolNames.ToList();
        file.Dispose();
        Assert.Throws<ObjectDisposedException>(() => slice.UndefinedSymbolNames.Count);
        Assert.Throws<ObjectDisposedException>(() => slice.UndefinedSymbols);
        Assert.Throws<ObjectDisposedException>(() => slice.DefinedExternalSymbols);
        Assert.Equal(["_IOLog", "_kprintf"], copy);

        var read = MachOFile.OpenPooled(path);
        var strings = read.Slices[0].UndefinedSymbols;
        read.Dispose();
        Assert.Equal(["_IOLog", "_kprintf"], strings);
        Assert.Same(strings, read.Slices[0].UndefinedSymbols);
    }

    [Fact]
    public void Chained_fixup_imports_stand_in_when_the_symbol_table_has_no_undefined_symbol()
    {
        var path = Corpus.RuntimePackMachOFiles().First(f =>
        {
            using var file = MachOFile.Open(f);
            return file.Slices.Count == 1 && file.Slices[0].ChainedFixups is { ImportsCount: > 1 };
        });
        var bytes = File.ReadAllBytes(path);
        var original = MachOFile.FromBytes(bytes.ToArray()).Slices[0];
        AssertAgree(original);
        // Make every undefined nlist entry an absolute one: the imports are then known only from the fixups.
        var st = original.SymbolTable!;
        for (var i = 0; i < st.SymbolCount; i++)
        {
            var at = (int)st.SymbolOffset + i * 16;
            if (st.Symbols[i].IsUndefined)
            {
                bytes[at + 4] = 0x03; // N_ABS | N_EXT
            }
        }

        var slice = MachOFile.FromBytes(bytes, "patched").Slices[0];
        var expected = slice.ChainedFixups!.Imports.Select(i => i.Name).Distinct().Order(ByUtf8Bytes);
        Assert.Equal(expected, slice.UndefinedSymbols);
        Assert.NotEmpty(slice.UndefinedSymbols);
        AssertAgree(slice);
    }
}

using System.Text;
using KextTrust.Formats.MachO;

namespace KextTrust.Formats.Tests.MachO;

/// <summary>Deterministic kext, fat and fileset fixtures written by our builders.</summary>
internal static class MachOFixtures
{
    public static readonly string[] Imports = ["_IOLog", "_OSKextGetCurrentIdentifier", "__ZN8OSObject4freeEv", "_kprintf"];

    public static Guid UuidFor(string seed) => new(System.Security.Cryptography.MD5.HashData(Encoding.UTF8.GetBytes(seed)));

    public static KextBinaryBuilder Kext(MachOTargetArchitecture arch, string seed = "kext")
    {
        var text = arch == MachOTargetArchitecture.X86_64
            ? new byte[] { 0x55, 0x48, 0x89, 0xE5, 0x31, 0xC0, 0x5D, 0xC3 } // push rbp; mov rbp,rsp; xor eax,eax; pop rbp; ret
            : new byte[] { 0x00, 0x00, 0x80, 0x52, 0xC0, 0x03, 0x5F, 0xD6 }; // mov w0,#0; ret
        var b = new KextBinaryBuilder(arch, text)
        {
            Data = Encoding.ASCII.GetBytes("com.example." + seed + "\0"),
            Uuid = UuidFor(seed + arch),
            MinOS = MachOVersion.Create(11, 0),
            Sdk = MachOVersion.Create(14, 2, 1),
        };
        b.AddDefinedSymbol("_" + seed + "_start", KextSymbolSection.Text, 0)
            .AddDefinedSymbol("_" + seed + "_stop", KextSymbolSection.Text, 4)
            .AddDefinedSymbol("_kmod_info", KextSymbolSection.Data, 0);
        foreach (var i in Imports)
        {
            b.AddUndefinedSymbol(i);
        }
        return b;
    }

    public static byte[] Fat() => MachOFatBuilder.Build([Kext(MachOTargetArchitecture.X86_64).Build(), Kext(MachOTargetArchitecture.Arm64e).Build()]);

    public static readonly string[] FilesetIds = ["com.example.driver", "com.example.family", "com.example.helper"];

    public static byte[] PrelinkPlist => Encoding.UTF8.GetBytes(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\">\n<dict>\n\t<key>_PrelinkInfoDictionary</key>\n\t<array/>\n</dict>\n</plist>\n");

    public static byte[] Fileset(MachOTargetArchitecture arch = MachOTargetArchitecture.Arm64e)
    {
        var f = new FilesetBuilder(arch) { PrelinkInfo = PrelinkPlist };
        foreach (var id in FilesetIds)
        {
            f.AddEntry(id, Kext(arch, id.Split('.')[^1]));
        }
        return f.Build();
    }
}

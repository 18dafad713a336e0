using KextTrust.KpiCatalogGen;

// Usage: KextTrust.KpiCatalogGen <xnu-kpi data folder> <apple-families data folder> <output .txt.gz>
// Regenerate the committed catalog from the repository root:
//   dotnet run --project tools/KextTrust.KpiCatalogGen -- tools/KextTrust.KpiCatalogGen/data/xnu-kpi tools/KextTrust.KpiCatalogGen/data/apple-families src/KextTrust.Kexts/Kpi/kpi-catalog.txt.gz
if (args.Length != 3)
{
    Console.Error.WriteLine("usage: KextTrust.KpiCatalogGen <xnu-kpi data folder> <apple-families data folder> <output .txt.gz>");
    return 2;
}
try
{
    var bytes = KpiCatalogGenerator.Generate(args[0], args[1]);
    File.WriteAllBytes(args[2], bytes);
    Console.WriteLine($"wrote {args[2]} ({bytes.Length} bytes)");
    return 0;
}
catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}

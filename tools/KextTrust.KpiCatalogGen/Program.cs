using KextTrust.KpiCatalogGen;

// Usage: KextTrust.KpiCatalogGen <xnu-kpi data folder> <output .txt.gz>
// Regenerate the committed catalog from the repository root:
//   dotnet run --project tools/KextTrust.KpiCatalogGen -- ../shared/data/xnu-kpi src/KextTrust.Kexts/Kpi/kpi-catalog.txt.gz
if (args.Length != 2)
{
    Console.Error.WriteLine("usage: KextTrust.KpiCatalogGen <xnu-kpi data folder> <output .txt.gz>");
    return 2;
}
try
{
    var bytes = KpiCatalogGenerator.Generate(args[0]);
    File.WriteAllBytes(args[1], bytes);
    Console.WriteLine($"wrote {args[1]} ({bytes.Length} bytes)");
    return 0;
}
catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}

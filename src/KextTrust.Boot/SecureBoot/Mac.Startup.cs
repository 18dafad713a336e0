using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using KextTrust.Boot.Enclave;
using KextTrust.Boot.Kernel;
using KextTrust.Boot.KernelManagement;
using KextTrust.Boot.Policy;
using KextTrust.Boot.Receipt;
using KextTrust.Boot.Startup;
using KextTrust.Consent;
using KextTrust.Consent.Policy;
using KextTrust.Formats;
using KextTrust.Formats.Image4;
using KextTrust.Kexts.Bundles;
using KextTrust.Kexts.Kpi;
using KextTrust.Kexts.Signing;
using KextTrust.Kexts.Trust;
using KextTrust.Machine;
using LocalPolicyRecord = KextTrust.Boot.Policy.LocalPolicy;

namespace KextTrust.Boot.SecureBoot;

// Startup: iBoot, then the kernel.
public sealed partial class Mac
{
    /// <summary>The last startup's report, if any.</summary>
    public StartupReport? LastStartup()
    {
        var path = Store.PathOf(SecureBootLayout.LastStartup);
        if (!File.Exists(path))
        {
            return null;
        }
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(path), ReportJson);
        }
        catch (JsonException)
        {
            // A report of an older KextTrust (its trace was text): like /var/run, it describes a past boot only and is
            // replaced at the next startup, so it reads as no startup yet.
            return null;
        }
    }

    /// <summary>The receipt on disk, if any.</summary>
    public KextReceipt? ReadReceipt()
    {
        var path = Store.PathOf(SecureBootLayout.Receipt(Description.Platform));
        return File.Exists(path) ? KextReceipt.FromBytes(File.ReadAllBytes(path), path) : null;
    }

    /// <summary>
    /// Starts the Mac up into macOS or recoveryOS (One True Recovery on Apple silicon). Every startup goes through here: on
    /// Apple silicon iBoot verifies the LocalPolicy and, with third-party kexts allowed, the AuxKC, its Image4, the receipt and
    /// the UAKL; then the kernel loads the AuxKC and records the loads. Returns what happened (also written as the last
    /// startup's report).
    /// </summary>
    public StartupReport Startup(bool recovery)
    {
        StartupReport? report = null;
        _policy.Startup(recovery, (next, transaction) =>
        {
            var mapped = new List<MappedFile>();
            try
            {
                report = Boot(next, transaction, mapped);
            }
            finally
            {
                // The kernel's view of the AuxKC ends with the startup: nothing in the report refers to its bytes.
                mapped.ForEach(m => m.Dispose());
            }
        });
        return report!;
    }

    private StartupReport Boot(MachineDescription next, MachineTransaction transaction, List<MappedFile> mapped)
    {
        var trace = new List<TrustCheck>();
        TrustCheck? refusal = null;
        AuxiliaryKernelCollection? auxKc = null;
        KextReceipt? receipt = null;
        var p = next.Platform;
        if (next.RunningOS != RunningOS.MacOS)
        {
            trace.Add(new(TrustStep.ThirdPartyKexts, TrustOutcome.Skipped, null, "recoveryOS: no third-party kexts are loaded"));
        }
        else if (p == MacPlatform.AppleSilicon && !File.Exists(Store.PathOf(SecureBootLayout.LocalPolicy)))
        {
            trace.Add(new(TrustStep.ThirdPartyKexts, TrustOutcome.Skipped, null, "no LocalPolicy (secure boot not initialized): no third-party kexts are loaded"));
        }
        else if (p == MacPlatform.AppleSilicon)
        {
            using var sep = OpenEnclave();
            var policyBytes = ReadOptional(SecureBootLayout.LocalPolicy)
                ?? throw new SecureBootException(SecureBootCode.NoLocalPolicy, "no LocalPolicy on the Preboot volume");
            // The AuxKC and its Image4 are read in place (memory-mapped): iBoot hashes the IM4P and compares the AuxKC
            // file with the signed payload without copying either, and the kernel loads the verified payload. iBoot also
            // checks the user-approved kext list as it is now against the policy's auxp.
            var image4File = Map(SecureBootLayout.AuxKcImage4(p), mapped);
            var auxKcFile = Map(SecureBootLayout.AuxKc(p), mapped);
            var inputs = IbootInputs.For(sep, policyBytes) with
            {
                AuxKcImage4 = image4File?.Memory,
                AuxKc = auxKcFile?.Memory,
                Receipt = ReadOptional(SecureBootLayout.Receipt(p)),
                AuxKcName = Store.PathOf(SecureBootLayout.AuxKc(p)),
                ReceiptName = Store.PathOf(SecureBootLayout.Receipt(p)),
                // Derived only if iBoot gets that far. With consent not in force (csrutil disable sets
                // CSR_ALLOW_UNAPPROVED_KEXTS) the list names every installed kext, which is no tampering: say so.
                Uakl = () => new UaklInput(BuildUakl().ToBytes(), UserConsentNotInForce is { } off
                    ? $"user consent is not in force ({off}), so the list now names every installed kext"
                    : null),
            };
            var boot = Iboot.Boot(inputs);
            trace.AddRange(boot.Trace);
            refusal = boot.Failures.FirstOrDefault();
            if (boot.ThirdPartyKextsLoaded)
            {
                auxKc = boot.AuxKc;
                receipt = boot.Receipt;
            }
        }
        else
        {
            var bytes = ReadOptional(SecureBootLayout.AuxKc(p));
            var r = ReadOptional(SecureBootLayout.Receipt(p));
            if (bytes is not null && r is not null)
            {
                auxKc = AuxiliaryKernelCollection.Read(bytes, Store.PathOf(SecureBootLayout.AuxKc(p)));
                receipt = KextReceipt.FromBytes(r, Store.PathOf(SecureBootLayout.Receipt(p)));
                trace.Add(TrustCheck.Pass(TrustStep.ThirdPartyKexts, "Intel: AuxKC read from the data volume (no LocalPolicy)"));
            }
        }
        var loaded = ImmutableArray<LoadedKextInfo>.Empty;
        var notLoaded = ImmutableArray<KextNotLoaded>.Empty;
        if (auxKc is not null && receipt is not null)
        {
            var result = KernelLinker.LoadAuxKc(auxKc, receipt, KpiCatalog, Release(next), next.KextArchitecture,
                Guid.Parse(next.BootSessionUuid), next.Clock);
            var tags = result.Loaded.ToDictionary(k => k.BundleId, k => k.LoadTag, StringComparer.Ordinal);
            loaded = [.. result.Loaded.Select(k => new LoadedKextInfo(k.LoadTag, k.BundleId, k.Version, k.TeamId, k.CdHash)
            {
                Address = k.LoadAddress, Size = k.Size, Uuid = k.Uuid,
                LinkedAgainst = [.. k.Dependencies.Select(d => tags[d]).OrderDescending()],
            })];
            notLoaded = result.NotLoaded;
            var history = result.LoadHistory;
            if (history.Length > 0)
            {
                transaction.StageDatabase(db => db.RecordLoads(history.Select(h => (h.Path, h.TeamId, h.BundleId, h.BootUuid, h.CreatedAt, h.LastSeen, h.Flags, h.CdHash))));
            }
        }
        var report = new StartupReport(next.RunningOS.ToString(), next.BootSessionUuid, loaded.Length > 0, refusal, [.. trace], loaded, notLoaded,
            receipt?.Excluded ?? []);
        transaction.StageFile(SecureBootLayout.LastStartup, JsonSerializer.SerializeToUtf8Bytes(report, ReportJson));
        return report;
    }

    private MappedFile? Map(string relative, List<MappedFile> mapped)
    {
        var file = MappedFile.OpenOptional(Store.PathOf(relative));
        if (file is not null)
        {
            mapped.Add(file);
        }
        return file;
    }
}

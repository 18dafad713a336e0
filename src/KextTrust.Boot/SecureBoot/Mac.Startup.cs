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
        return File.Exists(path) ? JsonSerializer.Deserialize(File.ReadAllBytes(path), ReportJson) : null;
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
        var trace = new List<string>();
        StartupRefusal? refusal = null;
        AuxiliaryKernelCollection? auxKc = null;
        KextReceipt? receipt = null;
        var p = next.Platform;
        if (next.RunningOS != RunningOS.MacOS)
        {
            trace.Add("recoveryOS: no third-party kexts are loaded");
        }
        else if (p == MacPlatform.AppleSilicon && !File.Exists(Store.PathOf(SecureBootLayout.LocalPolicy)))
        {
            trace.Add("no LocalPolicy (secure boot not initialized): no third-party kexts are loaded");
        }
        else if (p == MacPlatform.AppleSilicon)
        {
            using var sep = OpenEnclave();
            var policyBytes = ReadOptional(SecureBootLayout.LocalPolicy)
                ?? throw new SecureBootException(SecureBootCode.NoLocalPolicy, "no LocalPolicy on the Preboot volume");
            // The AuxKC and its Image4 are read in place (memory-mapped): iBoot hashes the IM4P and compares the AuxKC
            // file with the signed payload without copying either, and the kernel loads the verified payload.
            var image4File = Map(SecureBootLayout.AuxKcImage4(p), mapped);
            var auxKcFile = Map(SecureBootLayout.AuxKc(p), mapped);
            var inputs = IbootInputs.For(sep, policyBytes) with
            {
                AuxKcImage4 = image4File?.Memory,
                AuxKc = auxKcFile?.Memory,
                Receipt = ReadOptional(SecureBootLayout.Receipt(p)),
                AuxKcName = Store.PathOf(SecureBootLayout.AuxKc(p)),
                ReceiptName = Store.PathOf(SecureBootLayout.Receipt(p)),
            };
            var boot = Iboot.Boot(inputs);
            trace.AddRange(boot.Trace.Select(c => c.ToString()));
            if (boot.Refusal is { } code)
            {
                refusal = new StartupRefusal(code.ToString(), boot.Failures.First().Detail);
            }
            else if (boot.ThirdPartyKextsLoaded)
            {
                var uaklHash = BuildUakl().Hash;
                if (boot.Policy?.AuxKextPolicyHash is { } auxp && auxp != uaklHash)
                {
                    // Say what most likely changed: with consent not in force (csrutil disable sets
                    // CSR_ALLOW_UNAPPROVED_KEXTS) the list names every installed kext, which is no tampering.
                    var cause = UserConsentNotInForce is { } off
                        ? $"user consent is not in force ({off}), so the list now names every installed kext"
                        : "it changed since the last authorized kmd rebuild: an approval or removal, a change of SIP or kext consent, or an edit by hand";
                    refusal = new StartupRefusal("UaklModified",
                        $"auxp mismatch: the user-authorized kext list on disk (SHA-384 {uaklHash}) is not the one the LocalPolicy names ({auxp}): {cause}; no third-party kext loads until an administrator runs kmutil create");
                    trace.Add($"user-approved-kext-list: failed (uakl-modified) {refusal.Detail}");
                }
                else
                {
                    trace.Add("user-approved-kext-list: passed auxp matches the UAKL");
                    auxKc = boot.AuxKc;
                    receipt = boot.Receipt;
                }
            }
            if (refusal is not null)
            {
                trace.Add("booting without third-party kexts");
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
                trace.Add("Intel: AuxKC read from the data volume (no LocalPolicy)");
            }
        }
        var loaded = ImmutableArray<LoadedKextInfo>.Empty;
        var notLoaded = ImmutableArray<string>.Empty;
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
            notLoaded = [.. result.NotLoaded.Select(n => $"{n.BundleId}: {System.Text.Json.JsonNamingPolicy.KebabCaseLower.ConvertName(n.Code.ToString())}: {n.Detail}")];
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

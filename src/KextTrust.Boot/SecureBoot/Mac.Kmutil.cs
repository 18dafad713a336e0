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

// kmd: kmutil create builds, signs and records the AuxKC.
public sealed partial class Mac
{
    /// <summary>
    /// kmd (<c>kmutil create</c>): with an administrator's approval, builds the AuxKC from the kexts in the UAKL only,
    /// writes it with its receipt, has the Secure Enclave sign it and records <c>auxp</c>/<c>auxi</c>/<c>auxr</c> in a new
    /// LocalPolicy. Takes effect at the next startup.
    /// </summary>
    public KmutilCreateResult KmutilCreate(string user, string password)
    {
        AuthorizeAdmin(user, password);
        var d = Description;
        var asi = d.Platform == MacPlatform.AppleSilicon;
        var policy = asi ? ReadLocalPolicy() : null;
        if (policy is { ThirdPartyKextsEnabled: false })
        {
            throw new SecureBootException(SecureBootCode.ThirdPartyKextsDisabled,
                "third-party kexts are not enabled: start up in One True Recovery, choose Reduced Security and allow kexts (bputil -g -k)");
        }
        var uakl = BuildUakl();
        var root = TrustRoot();
        var verifyOptions = new KextSignatureVerifierOptions { TrustedTestRoot = root };
        var exclude = ReadExcludeList();
        KextBundle[] candidates = [.. KextDiscovery.FindKexts(Store.PathOf(MachineLayout.LibraryExtensions)).Select(KextBundle.Open)];
        var request = new AuxKcBuildRequest
        {
            Candidates = candidates,
            Uakl = uakl,
            Architecture = d.KextArchitecture,
            Release = Release(d),
            Sip = d.CsrActiveConfig.Sip0(),
            IsBanned = (id, v) => exclude.Match(id, v) is not null,
            VerifySignature = VerifySignatures(candidates, verifyOptions),
            Catalog = Catalog.Value,
            VolumeRoot = Store.Root,
        };
        var build = Kmd.BuildAuxKc(request);
        var tx = Store.Begin();
        tx.StageFile(MachineLayout.Uakl, uakl.ToBytes());
        tx.StageFile(SecureBootLayout.AuxKc(d.Platform), build.AuxKc.Bytes.Span);
        tx.StageFile(SecureBootLayout.Receipt(d.Platform), build.ReceiptBytes());
        SignedAuxKc? signed = null;
        LocalPolicyRecord? updated = null;
        if (asi)
        {
            using var sep = OpenEnclave();
            signed = Kmd.SignAuxKc(build, sep);
            var update = Kmd.UpdateLocalPolicy(policy!, sep, signed);
            updated = update.Policy;
            tx.StageFile(SecureBootLayout.AuxKcImage4(d.Platform), signed.Image4Bytes.Span);
            StageSigned(tx, update.ToBytes(), update.Nonce);
        }
        tx.Commit();
        return new KmutilCreateResult(build, signed, updated, uakl.Hash);
    }

    /// <summary>
    /// kmd's signature verdicts for <paramref name="bundles"/> (and their plug-ins). With <paramref name="parallel"/> every
    /// signature is checked up front across all cores in one <see cref="KextSignatureVerifier.VerifyMany"/> pass, which
    /// shares chain verdicts between kexts signed by the same certificates; the returned function then looks a bundle's
    /// verdict up (throwing what verifying it alone throws), so kmd's decisions, the AuxKC and the receipt are those of
    /// the sequential check (<paramref name="parallel"/> false: each bundle verified when kmd asks, one at a time).
    /// </summary>
    internal static Func<KextBundle, KextSignatureVerification> VerifySignatures(IReadOnlyList<KextBundle> bundles, KextSignatureVerifierOptions options,
        bool parallel = true)
    {
        ArgumentNullException.ThrowIfNull(bundles);
        ArgumentNullException.ThrowIfNull(options);
        KextSignatureVerification One(string path) => KextSignatureVerifier.Verify(path, options);
        if (!parallel)
        {
            return b => One(b.Path);
        }
        string[] paths = [.. bundles.SelectMany(b => b.SelfAndPlugIns()).Select(b => b.Path).Distinct(StringComparer.Ordinal)];
        IReadOnlyList<KextVerifyItem> items;
        try
        {
            items = KextSignatureVerifier.VerifyMany(paths, options);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Something no single verification reports as its own verdict: ask per bundle, as kmd would.
            return b => One(b.Path);
        }
        var byPath = new Dictionary<string, KextVerifyItem>(paths.Length, StringComparer.Ordinal);
        for (var i = 0; i < paths.Length; i++)
        {
            byPath[paths[i]] = items[i];
        }
        return b => byPath.TryGetValue(b.Path, out var item) ? item.Result ?? throw item.Error! : One(b.Path);
    }
}

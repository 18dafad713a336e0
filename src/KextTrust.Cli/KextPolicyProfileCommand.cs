using System.CommandLine;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using KextTrust.Consent;
using KextTrust.Consent.Mdm;
using KextTrust.Kexts.Signing;

namespace KextTrust.Cli;

/// <summary>A kext a generated profile lists.</summary>
internal sealed record ProfileKextJson(string BundleId, string Path, string TeamId, string Signature, string? DeveloperName);

/// <summary><c>kextrust mdm profile --json</c>.</summary>
internal sealed record KextPolicyProfileJson(
    string Output,
    string PayloadIdentifier,
    string PayloadUuid,
    string KextPolicyPayloadIdentifier,
    string KextPolicyPayloadUuid,
    bool Signed,
    string? Signer,
    IReadOnlyList<string> AllowedTeamIdentifiers,
    IReadOnlyDictionary<string, IReadOnlyList<string>> AllowedKernelExtensions,
    bool AllowUserOverrides,
    bool AllowNonAdminUserApprovals,
    IReadOnlyList<ProfileKextJson> Kexts,
    string? TrustRootNote);

/// <summary>
/// <c>kextrust mdm profile KEXT_OR_FOLDER… [--team-only] [--allow-user-overrides] [--non-admin-approvals] -o FILE
/// [--sign P12 [--password PW]] [--identifier ID] [--name NAME] [--organization ORG] [--trust-root PEM] [--json]</c>.
/// </summary>
internal static class KextPolicyProfileCommand
{
    /// <summary>The <c>profile</c> subcommand of <c>mdm</c>.</summary>
    public static Command Create(CliOutput output)
    {
        var paths = new Argument<string[]>("KEXT_OR_FOLDER") { Description = "Kext bundles, or folders searched for them (plug-in kexts are listed with their own bundle ids).", Arity = ArgumentArity.OneOrMore };
        var outFile = new Option<string>("--output", "-o") { Description = "The .mobileconfig to write.", Required = true, HelpName = "FILE" };
        var teamOnly = new Option<bool>("--team-only") { Description = "Allow every kext of each signing team (AllowedTeamIdentifiers) instead of exactly these bundle ids (AllowedKernelExtensions). Unsigned kexts stay listed by bundle id under the empty team key." };
        var overrides = new Option<bool>("--allow-user-overrides") { Description = "AllowUserOverrides: users may still approve kexts the profile does not list." };
        var nonAdmin = new Option<bool>("--non-admin-approvals") { Description = "AllowNonAdminUserApprovals (macOS 11+): standard users may approve kexts." };
        var identifier = new Option<string>("--identifier") { Description = "The profile's PayloadIdentifier; keep it when regenerating so the new profile replaces the installed one.", HelpName = "ID", DefaultValueFactory = _ => new KextPolicyProfileOptions().Identifier };
        var name = new Option<string>("--name") { Description = "PayloadDisplayName.", HelpName = "NAME", DefaultValueFactory = _ => new KextPolicyProfileOptions().DisplayName };
        var organization = new Option<string?>("--organization") { Description = "PayloadOrganization.", HelpName = "ORG" };
        var sign = new Option<string?>("--sign") { Description = "Sign the profile (CMS SignedData) with this PKCS #12 identity.", HelpName = "P12" };
        var password = new Option<string?>("--password") { Description = "The PKCS #12 password.", HelpName = "PW" };
        var trustRoot = new Option<string?>("--trust-root") { Description = "Also trust this root certificate (PEM or DER) when verifying the kexts' signatures, e.g. from 'kextrust pki init'.", HelpName = "FILE" };
        var json = new Option<bool>("--json") { Description = "Write one JSON object describing the profile instead of text." };
        var cmd = new Command("profile", "Write a com.apple.syspolicy.kernel-extension-policy .mobileconfig for these kexts from their verified signatures: which team ids and bundle ids to allow (unsigned kexts under the empty team key, as Apple documents). Stable UUIDs; optionally CMS-signed.")
        {
            paths, outFile, teamOnly, overrides, nonAdmin, identifier, name, organization, sign, password, trustRoot, json,
        };
        cmd.SetAction(r => MachineOption.Run(output, r.GetValue(json), () =>
        {
            using var root = r.GetValue(trustRoot) is { } rootPath ? LoadCertificate(rootPath) : null;
            var verifier = MachineOption.Verifier ?? KextSignatureVerifier.Using(new KextSignatureVerifierOptions { TrustedTestRoot = root });
            X509Certificate2Collection? identity = null;
            if (r.GetValue(sign) is { } p12)
            {
                identity = LoadIdentity(p12, r.GetValue(password));
            }
            var options = new KextPolicyProfileOptions
            {
                Identifier = r.GetValue(identifier)!,
                DisplayName = r.GetValue(name)!,
                Organization = r.GetValue(organization),
                TeamOnly = r.GetValue(teamOnly),
                AllowUserOverrides = r.GetValue(overrides),
                AllowNonAdminUserApprovals = r.GetValue(nonAdmin),
            };
            var profile = KextPolicyProfileGenerator.Generate(r.GetValue(paths)!, verifier, options, identity);
            var target = Path.GetFullPath(r.GetValue(outFile)!);
            var temp = target + ".kextrust-new";
            File.WriteAllBytes(temp, profile.Bytes);
            File.Move(temp, target, overwrite: true);
            var note = root is null ? null : $"the root '{root.Subject}' was trusted by request (--trust-root); it is not Apple's";
            if (r.GetValue(json))
            {
                output.WriteJson(new KextPolicyProfileJson(target, profile.Identifier, profile.ProfileUuid, profile.PayloadIdentifier, profile.PayloadUuid,
                    profile.SignerSubject is not null, profile.SignerSubject, profile.AllowedTeamIdentifiers, profile.AllowedKernelExtensions,
                    options.AllowUserOverrides, options.AllowNonAdminUserApprovals,
                    profile.Kexts.Select(k => new ProfileKextJson(k.BundleId, k.Path, k.TeamId, k.Signature, k.DeveloperName)).ToArray(), note));
                return ExitCodes.Ok;
            }
            output.Out.WriteLine($"wrote {target} ({(profile.SignerSubject is { } s ? "CMS-signed by " + s : "unsigned XML")}): profile {profile.Identifier} {profile.ProfileUuid}, payload {MdmProfile.KernelExtensionPolicyType} {profile.PayloadUuid}");
            if (profile.AllowedTeamIdentifiers.Count > 0)
            {
                output.Out.WriteLine($"AllowedTeamIdentifiers: {string.Join(", ", profile.AllowedTeamIdentifiers)}");
            }
            foreach (var (team, ids) in profile.AllowedKernelExtensions)
            {
                output.Out.WriteLine($"AllowedKernelExtensions[{(team.Length == 0 ? "'' (unsigned)" : team)}]: {string.Join(", ", ids)}");
            }
            foreach (var k in profile.Kexts)
            {
                output.Out.WriteLine($"  {k.BundleId}: {(k.TeamId.Length == 0 ? $"{k.Signature}, listed under ''" : $"team {k.TeamId}{(k.DeveloperName is { } dn ? $" ({dn})" : "")}")} — {k.Path}");
            }
            if (note is not null)
            {
                output.Out.WriteLine("note: " + note);
            }
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static X509Certificate2 LoadCertificate(string path)
    {
        try
        {
            var bytes = File.ReadAllBytes(path);
            return bytes.AsSpan().StartsWith("-----"u8) ? X509Certificate2.CreateFromPem(System.Text.Encoding.ASCII.GetString(bytes)) : X509CertificateLoader.LoadCertificate(bytes);
        }
        catch (CryptographicException e)
        {
            throw new ConsentException(ConsentCode.InvalidArgument, path, "not a certificate (PEM or DER): " + e.Message);
        }
    }

    private static X509Certificate2Collection LoadIdentity(string path, string? password)
    {
        try
        {
            return X509CertificateLoader.LoadPkcs12Collection(File.ReadAllBytes(path), password, X509KeyStorageFlags.EphemeralKeySet);
        }
        catch (CryptographicException e)
        {
            throw new ConsentException(ConsentCode.InvalidArgument, path, "not a PKCS #12 identity, or the password is wrong: " + e.Message);
        }
    }
}

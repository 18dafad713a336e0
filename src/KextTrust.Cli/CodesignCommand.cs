using System.CommandLine;
using KextTrust.Kexts.Signing;

namespace KextTrust.Cli;

/// <summary><c>kextrust codesign BUNDLE… (--p12 FILE [--password PW] | --cert PEM --key PEM [--chain PEM] | --adhoc) [--sha1] [--json]</c>.</summary>
internal static class CodesignCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(CliOutput output)
    {
        var bundles = new Argument<string[]>("BUNDLE") { Description = "Kext bundles to sign in place (nested plug-ins are signed first).", Arity = ArgumentArity.OneOrMore };
        var p12 = new Option<string?>("--p12") { Description = "PKCS#12 holding the signing certificate with its key and the chain." };
        var password = new Option<string?>("--password") { Description = "Password of the PKCS#12." };
        var cert = new Option<string?>("--cert") { Description = "PEM signing certificate (with --key)." };
        var key = new Option<string?>("--key") { Description = "PEM private key of --cert." };
        var chain = new Option<string?>("--chain") { Description = "PEM file of chain certificates to embed (intermediate, root)." };
        var adhoc = new Option<bool>("--adhoc") { Description = "Sign ad-hoc: CS_ADHOC, no CMS, no identity." };
        var sha1 = new Option<bool>("--sha1") { Description = "Also write a SHA-1 CodeDirectory (primary) beside the SHA-256 one, for older macOS." };
        var json = new Option<bool>("--json") { Description = "Write JSON." };
        var cmd = new Command("codesign", "Write a real embedded code signature into kext bundles: CodeDirectory, requirements, CodeResources and a CMS with your certificate chain, or ad-hoc.")
        {
            bundles, p12, password, cert, key, chain, adhoc, sha1, json,
        };
        cmd.SetAction(r => Run(output, r.GetValue(bundles)!, r.GetValue(p12), r.GetValue(password), r.GetValue(cert), r.GetValue(key), r.GetValue(chain),
            r.GetValue(adhoc), r.GetValue(sha1), r.GetValue(json)));
        return cmd;
    }

    private static int Run(CliOutput output, string[] bundles, string? p12, string? password, string? cert, string? key, string? chain, bool adhoc, bool sha1, bool json)
    {
        var modes = (p12 is not null ? 1 : 0) + (cert is not null || key is not null ? 1 : 0) + (adhoc ? 1 : 0);
        if (modes != 1)
        {
            return output.InputError("give exactly one of --p12 FILE, --cert PEM --key PEM, or --adhoc");
        }
        if ((cert is null) != (key is null))
        {
            return output.InputError("--cert and --key go together");
        }
        KextSigningIdentity? identity = null;
        try
        {
            identity = p12 is not null ? KextSigningIdentity.FromPkcs12(p12, password)
                : cert is not null ? KextSigningIdentity.FromPem(cert, key!, chain)
                : null;
            var results = new List<KextSigningResult>();
            foreach (var b in bundles)
            {
                results.Add(KextSigner.Sign(b, new KextSigningOptions { Identity = identity, IncludeSha1 = sha1 }));
            }
            if (json)
            {
                output.WriteJson(results);
            }
            else
            {
                foreach (var r in results)
                {
                    Print(output, r, identity is null ? "ad-hoc" : identity.Leaf.GetNameInfo(System.Security.Cryptography.X509Certificates.X509NameType.SimpleName, false));
                }
            }
            return ExitCodes.Ok;
        }
        catch (KextSigningException e)
        {
            return output.InputError(e.Message);
        }
        catch (IOException e)
        {
            return output.InputError(e.Message);
        }
        finally
        {
            identity?.Dispose();
        }
    }

    private static void Print(CliOutput output, KextSigningResult r, string signer)
    {
        foreach (var n in r.Nested)
        {
            Print(output, n, signer);
        }
        output.Out.WriteLine($"signed {r.BundlePath} ({r.Identifier}) by {signer}: cdhash {string.Join(", ", r.CdHashes)}");
        if (r.DesignatedRequirement is not null)
        {
            output.Out.WriteLine($"  designated => {r.DesignatedRequirement}");
        }
    }
}

using System.Security.Cryptography.X509Certificates;
using KextTrust.Kexts.Signing;
using KextTrust.TestSupport;

namespace KextTrust.Cli.Tests;

public class PkiCommandTests
{
    [Fact]
    public void Init_writes_an_Apple_shaped_hierarchy_with_the_team_in_OU()
    {
        using var tmp = new TempDir();
        var dir = tmp.Combine("pki");
        var r = CliRunner.Run("pki", "init", dir, "--team", "ABCDE12345", "--name", "Acme");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("--trust-root", r.StdOut);
        using var leaf = X509CertificateLoader.LoadCertificateFromFile(Path.Combine(dir, TestPki.Files.LeafCert));
        Assert.Equal("Developer ID Application: Acme (ABCDE12345)", leaf.GetNameInfo(X509NameType.SimpleName, false));
        Assert.Contains("OU=ABCDE12345", leaf.Subject);
        Assert.NotNull(leaf.Extensions[AppleOids.DeveloperIdApplication]);
        Assert.NotNull(leaf.Extensions[AppleOids.DeveloperIdKernel]);
        using var inter = X509CertificateLoader.LoadCertificateFromFile(Path.Combine(dir, TestPki.Files.IntermediateCert));
        Assert.NotNull(inter.Extensions[AppleOids.DeveloperIdCa]);
        Assert.True(File.Exists(Path.Combine(dir, TestPki.Files.LeafPkcs12)));
        // openssl agrees the leaf chains to the root written beside it.
        var v = ExternalTool.Run(ExternalTool.OpenSsl, ["verify", "-CAfile", Path.Combine(dir, TestPki.Files.RootCert), "-untrusted",
            Path.Combine(dir, TestPki.Files.IntermediateCert), "-ignore_critical", Path.Combine(dir, TestPki.Files.LeafCert)], stdin: null);
        Assert.Equal(0, v.ExitCode);

        // A second init into the same folder refuses to overwrite.
        Assert.Equal(2, CliRunner.Run("pki", "init", dir).ExitCode);
    }

    [Fact]
    public void No_kext_signing_leaves_out_the_kext_extension()
    {
        using var tmp = new TempDir();
        var r = CliRunner.Run("pki", "init", tmp.Path, "--no-kext-signing");
        Assert.Equal(0, r.ExitCode);
        using var leaf = X509CertificateLoader.LoadCertificateFromFile(tmp.Combine(TestPki.Files.LeafCert));
        Assert.Null(leaf.Extensions[AppleOids.DeveloperIdKernel]);
        Assert.NotNull(leaf.Extensions[AppleOids.DeveloperIdApplication]);
        Assert.Contains("OU=KT4TEST001", leaf.Subject);
    }
}

using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using KextTrust.Boot.Enclave;
using KextTrust.Formats.Image4;
using KextTrust.TestSupport;

namespace KextTrust.Boot.Tests.Enclave;

internal sealed class Mac : IDisposable
{
    public const ulong DefaultEcid = 0x0011_2233_4455_6677;

    public Mac(ulong ecid = DefaultEcid)
    {
        Dir = new TempDir("kextrust-sep");
        Uid = RandomNumberGenerator.GetBytes(32);
        Ecid = ecid;
        SecureEnclave = SecureEnclave.Create(Dir.Path, Uid, ecid);
    }

    public TempDir Dir { get; }
    public byte[] Uid { get; }
    public ulong Ecid { get; }
    public SecureEnclave SecureEnclave { get; private set; }

    public string KeyFile => Dir.Combine(SecureEnclave.KeyFileName);
    public string NonceFile => Dir.Combine(SecureEnclave.NonceFileName);

    /// <summary>Installs a new nonce the way a committed machine transaction does: its sealed bytes become the nonce file.</summary>
    public Sha384Digest RotateNonce() => Install(SecureEnclave.PrepareLocalPolicyNonce());

    public Sha384Digest Install(PendingLocalPolicyNonce nonce)
    {
        File.WriteAllBytes(NonceFile, nonce.SealedBytes.ToArray());
        return SecureEnclave.ReloadLocalPolicyNonce();
    }

    public void Reopen()
    {
        SecureEnclave.Dispose();
        SecureEnclave = SecureEnclave.Open(Dir.Path, Uid, Ecid);
    }

    public static Im4ManifestBody Body(ulong ecid, params Im4Property[] extra) =>
        new(new Im4PropertySet([new Im4Property("ECID", new Im4Integer(ecid)), .. extra]),
            [new Im4ObjectProperties("auxk", new Im4PropertySet(new Im4Property("DGST", new Im4OctetString(new byte[48]))))]);

    public void Dispose()
    {
        SecureEnclave.Dispose();
        Dir.Dispose();
    }
}

public sealed class SecureEnclaveTests
{
    [Fact]
    public void Open_restores_the_same_key_certificate_and_nonce_hash()
    {
        using var mac = new Mac();
        var publicKey = mac.SecureEnclave.PublicKey.ToArray();
        var certificate = mac.SecureEnclave.Certificate.ToArray();
        var lpnh = mac.SecureEnclave.CurrentLocalPolicyNonceHash;
        mac.Reopen();
        Assert.Equal(publicKey, mac.SecureEnclave.PublicKey.ToArray());
        Assert.Equal(certificate, mac.SecureEnclave.Certificate.ToArray());
        Assert.Equal(lpnh, mac.SecureEnclave.CurrentLocalPolicyNonceHash);
        Assert.Equal(Mac.DefaultEcid, mac.SecureEnclave.Ecid);
        using var key = mac.SecureEnclave.CreatePublicKey();
        Assert.Equal(384, key.KeySize);
        Assert.Throws<CryptographicException>(() => key.ExportParameters(includePrivateParameters: true));
    }

    [Fact]
    public void Certificate_is_self_issued_for_the_SEP_key_and_names_the_ECID()
    {
        using var mac = new Mac();
        using var cert = X509CertificateLoader.LoadCertificate(mac.SecureEnclave.Certificate.Span);
        Assert.Equal($"CN=Secure Enclave {Mac.DefaultEcid:X16}", cert.Subject);
        Assert.Equal(cert.Subject, cert.Issuer);
        Assert.Equal(mac.SecureEnclave.PublicKey.ToArray(), cert.PublicKey.ExportSubjectPublicKeyInfo());
    }

    [Fact]
    public void Provisioning_twice_and_opening_nothing_are_typed_errors()
    {
        using var mac = new Mac();
        Assert.Equal(SecureEnclaveError.AlreadyProvisioned,
            Assert.Throws<SecureEnclaveException>(() => SecureEnclave.Create(mac.Dir.Path, mac.Uid, mac.Ecid)).Error);
        using var empty = new TempDir();
        Assert.Equal(SecureEnclaveError.NotProvisioned,
            Assert.Throws<SecureEnclaveException>(() => SecureEnclave.Open(empty.Path, mac.Uid, mac.Ecid)).Error);
        Assert.Throws<ArgumentException>(() => SecureEnclave.Create(empty.Path, new byte[8], 1));
    }

    [Fact]
    public void Wrong_hardware_UID_or_ECID_cannot_unseal()
    {
        using var mac = new Mac();
        var otherUid = (byte[])mac.Uid.Clone();
        otherUid[^1] ^= 1;
        Assert.Equal(SecureEnclaveError.UnsealFailed,
            Assert.Throws<SecureEnclaveException>(() => SecureEnclave.Open(mac.Dir.Path, otherUid, mac.Ecid)).Error);
        Assert.Equal(SecureEnclaveError.UnsealFailed,
            Assert.Throws<SecureEnclaveException>(() => SecureEnclave.Open(mac.Dir.Path, mac.Uid, mac.Ecid + 1)).Error);
    }

    [Fact]
    public void Any_modified_byte_of_the_sealed_key_file_fails_to_unseal()
    {
        using var mac = new Mac();
        mac.SecureEnclave.Dispose();
        var original = File.ReadAllBytes(mac.KeyFile);
        for (var i = 0; i < original.Length; i++)
        {
            var tampered = (byte[])original.Clone();
            tampered[i] ^= 0x01;
            File.WriteAllBytes(mac.KeyFile, tampered);
            var e = Assert.Throws<SecureEnclaveException>(() => SecureEnclave.Open(mac.Dir.Path, mac.Uid, mac.Ecid));
            Assert.Equal(i < 8 ? SecureEnclaveError.MalformedSealedState : SecureEnclaveError.UnsealFailed, e.Error);
        }
        File.WriteAllBytes(mac.KeyFile, original[..30]);
        Assert.Equal(SecureEnclaveError.MalformedSealedState,
            Assert.Throws<SecureEnclaveException>(() => SecureEnclave.Open(mac.Dir.Path, mac.Uid, mac.Ecid)).Error);
        File.WriteAllBytes(mac.KeyFile, original[..^1]);
        Assert.Equal(SecureEnclaveError.UnsealFailed,
            Assert.Throws<SecureEnclaveException>(() => SecureEnclave.Open(mac.Dir.Path, mac.Uid, mac.Ecid)).Error);
        File.WriteAllBytes(mac.KeyFile, original);
        using var reopened = SecureEnclave.Open(mac.Dir.Path, mac.Uid, mac.Ecid);
    }

    [Fact]
    public void Tampered_or_swapped_nonce_file_fails_to_unseal()
    {
        using var mac = new Mac();
        mac.SecureEnclave.Dispose();
        var nonce = File.ReadAllBytes(mac.NonceFile);
        var tampered = (byte[])nonce.Clone();
        tampered[^1] ^= 0x80;
        File.WriteAllBytes(mac.NonceFile, tampered);
        Assert.Equal(SecureEnclaveError.UnsealFailed,
            Assert.Throws<SecureEnclaveException>(() => SecureEnclave.Open(mac.Dir.Path, mac.Uid, mac.Ecid)).Error);
        // The files are bound to their purpose: the key blob is not accepted as the nonce blob.
        File.Copy(mac.KeyFile, mac.NonceFile, overwrite: true);
        Assert.Equal(SecureEnclaveError.UnsealFailed,
            Assert.Throws<SecureEnclaveException>(() => SecureEnclave.Open(mac.Dir.Path, mac.Uid, mac.Ecid)).Error);
    }

    [Fact]
    public void Sealed_files_hold_no_plaintext_and_writes_leave_no_temporary_files()
    {
        using var mac = new Mac();
        mac.RotateNonce();
        var blob = File.ReadAllBytes(mac.KeyFile);
        Assert.Equal("KTSEAL"u8.ToArray(), blob[..6]);
        Assert.Equal(-1, blob.AsSpan().IndexOf(mac.SecureEnclave.PublicKey.Span[^48..]));
        Assert.Equal(-1, blob.AsSpan().IndexOf("Secure Enclave"u8));
        Assert.Equal(
            new[] { SecureEnclave.KeyFileName, SecureEnclave.NonceFileName }.Order(),
            Directory.EnumerateFiles(mac.Dir.Path).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void New_nonce_changes_the_hash_persists_and_forgets_the_old_one()
    {
        using var mac = new Mac();
        var first = mac.SecureEnclave.CurrentLocalPolicyNonceHash;
        var second = mac.RotateNonce();
        Assert.NotEqual(first, second);
        Assert.Equal(second, mac.SecureEnclave.CurrentLocalPolicyNonceHash);
        mac.Reopen();
        Assert.Equal(second, mac.SecureEnclave.CurrentLocalPolicyNonceHash);
        Assert.Equal(32, File.ReadAllBytes(mac.NonceFile).Length - 36);
    }

    [Fact]
    public void A_prepared_nonce_writes_nothing_and_changes_nothing_until_installed()
    {
        using var mac = new Mac();
        var current = mac.SecureEnclave.CurrentLocalPolicyNonceHash;
        var fileBefore = File.ReadAllBytes(mac.NonceFile);
        var pending = mac.SecureEnclave.PrepareLocalPolicyNonce();
        Assert.NotEqual(current, pending.Hash);
        Assert.Equal(current, mac.SecureEnclave.CurrentLocalPolicyNonceHash);
        Assert.Equal(fileBefore, File.ReadAllBytes(mac.NonceFile));
        Assert.Equal([SecureEnclave.NonceFileName, SecureEnclave.KeyFileName], Directory.EnumerateFiles(mac.Dir.Path).Select(Path.GetFileName).Order());
        // Sealed like the nonce file (header, no plaintext hash in it) and only this SEP accepts it.
        Assert.Equal("KTSEAL"u8.ToArray(), pending.SealedBytes.Span[..6].ToArray());
        Assert.Equal(-1, pending.SealedBytes.Span.IndexOf(pending.Hash.Span));
        Assert.True(mac.SecureEnclave.CanInstall(pending));
        using (var other = new Mac())
        {
            Assert.False(other.SecureEnclave.CanInstall(pending));
        }
        // A reopen (e.g. after an interrupted change) still sees the old nonce; installing makes the new one current.
        mac.Reopen();
        Assert.Equal(current, mac.SecureEnclave.CurrentLocalPolicyNonceHash);
        Assert.Equal(pending.Hash, mac.Install(pending));
        mac.Reopen();
        Assert.Equal(pending.Hash, mac.SecureEnclave.CurrentLocalPolicyNonceHash);
    }

    [Fact]
    public void A_modified_pending_nonce_is_not_installable_and_a_modified_nonce_file_does_not_reload()
    {
        using var mac = new Mac();
        var pending = mac.SecureEnclave.PrepareLocalPolicyNonce();
        var bytes = pending.SealedBytes.ToArray();
        bytes[^1] ^= 1;
        File.WriteAllBytes(mac.NonceFile, bytes);
        Assert.Equal(SecureEnclaveError.UnsealFailed,
            Assert.Throws<SecureEnclaveException>(() => mac.SecureEnclave.ReloadLocalPolicyNonce()).Error);
        File.WriteAllBytes(mac.NonceFile, bytes[..20]);
        Assert.Equal(SecureEnclaveError.MalformedSealedState,
            Assert.Throws<SecureEnclaveException>(() => mac.SecureEnclave.ReloadLocalPolicyNonce()).Error);
    }

    [Fact]
    public void Signed_manifest_verifies_with_this_Macs_SEP_key()
    {
        using var mac = new Mac();
        var manifest = mac.SecureEnclave.SignManifest(Mac.Body(mac.Ecid));
        using var key = mac.SecureEnclave.CreatePublicKey();
        Assert.Equal(SepSignatureResult.Ok, SecureEnclaveSignature.Verify(manifest, key));
        var decoded = Im4Manifest.FromBytes(manifest.Encode());
        Assert.True(SecureEnclaveSignature.Verify(decoded, key).Valid);
        Assert.Equal(mac.SecureEnclave.Certificate.ToArray(), Assert.Single(decoded.CertificateChain).ToArray());

        // DER-encoded ECDSA signature: SEQUENCE { INTEGER r, INTEGER s }.
        var reader = new AsnReader(decoded.Signature, AsnEncodingRules.DER);
        var sequence = reader.ReadSequence();
        reader.ThrowIfNotEmpty();
        sequence.ReadInteger();
        sequence.ReadInteger();
        sequence.ThrowIfNotEmpty();
    }

    [Fact]
    public void OpenSsl_verifies_the_signature_over_the_body_SET()
    {
        using var mac = new Mac();
        var manifest = mac.SecureEnclave.SignManifest(Mac.Body(mac.Ecid));
        using var dir = new TempDir();
        File.WriteAllBytes(dir.Combine("body.der"), manifest.BodyBytes.ToArray());
        File.WriteAllBytes(dir.Combine("sig.der"), manifest.Signature.ToArray());
        File.WriteAllText(dir.Combine("pub.pem"), PemEncoding.WriteString("PUBLIC KEY", mac.SecureEnclave.PublicKey.Span));
        var ok = ExternalTool.Run(ExternalTool.OpenSsl, "dgst", "-sha384", "-verify", dir.Combine("pub.pem"),
            "-signature", dir.Combine("sig.der"), dir.Combine("body.der"));
        Assert.True(ok.ExitCode == 0, ok.StdOut + ok.StdErr);
        Assert.Contains("Verified OK", ok.StdOut);
    }

    [Fact]
    public void One_changed_byte_anywhere_in_the_body_invalidates_the_signature()
    {
        using var mac = new Mac();
        var der = mac.SecureEnclave.SignManifest(Mac.Body(mac.Ecid, new Im4Property("smb2", new Im4Boolean(true)))).Encode();
        var bodyStart = der.AsSpan().IndexOf(Im4Manifest.FromBytes(der).BodyBytes.Span);
        var bodyLength = Im4Manifest.FromBytes(der).BodyBytes.Length;
        using var key = mac.SecureEnclave.CreatePublicKey();
        var decodedAndRejected = 0;
        for (var i = bodyStart; i < bodyStart + bodyLength; i++)
        {
            var tampered = (byte[])der.Clone();
            tampered[i] ^= 0x01;
            Im4Manifest manifest;
            try
            {
                manifest = Im4Manifest.FromBytes(tampered);
            }
            catch (Image4FormatException)
            {
                continue;
            }
            Assert.False(SecureEnclaveSignature.Verify(manifest, key).Valid, $"byte {i} changed, still valid");
            decodedAndRejected++;
        }
        // At least every byte of the 48-byte DGST value still decodes, and must be caught by the signature.
        Assert.True(decodedAndRejected >= 48, $"only {decodedAndRejected} tampered bodies decoded");
    }

    [Fact]
    public void Another_Macs_SEP_signature_is_invalid_here()
    {
        using var mac = new Mac();
        using var other = new Mac();
        var foreign = other.SecureEnclave.SignManifest(Mac.Body(other.Ecid));
        using var key = mac.SecureEnclave.CreatePublicKey();
        var result = SecureEnclaveSignature.Verify(foreign, key);
        Assert.False(result.Valid);
        Assert.Contains("certificate", result.Failure);

        // Even with this Mac's certificate swapped in, the other key's signature does not verify.
        var swapped = Im4Manifest.Create(foreign.Body, foreign.Signature.Span, [mac.SecureEnclave.Certificate]);
        Assert.Equal("the signature does not verify with this Mac's SEP key", SecureEnclaveSignature.Verify(swapped, key).Failure);
    }

    [Fact]
    public void Garbage_signature_and_certificate_are_rejected_without_throwing()
    {
        using var mac = new Mac();
        var body = Mac.Body(mac.Ecid);
        using var key = mac.SecureEnclave.CreatePublicKey();
        Assert.False(SecureEnclaveSignature.Verify(Im4Manifest.Create(body, [1, 2, 3], [mac.SecureEnclave.Certificate]), key).Valid);
        Assert.False(SecureEnclaveSignature.Verify(Im4Manifest.Create(body, [], [new byte[] { 0x30, 0x00 }]), key).Valid);
        Assert.False(SecureEnclaveSignature.Verify(Im4Manifest.Create(body, [], []), key).Valid);
    }

    [Fact]
    public void SEP_refuses_to_sign_for_another_ECID_or_without_ECID()
    {
        using var mac = new Mac();
        Assert.Equal(SecureEnclaveError.SigningRefused,
            Assert.Throws<SecureEnclaveException>(() => mac.SecureEnclave.SignManifest(Mac.Body(mac.Ecid + 1))).Error);
        Assert.Equal(SecureEnclaveError.SigningRefused,
            Assert.Throws<SecureEnclaveException>(() => mac.SecureEnclave.SignManifest(new Im4ManifestBody(Im4PropertySet.Empty))).Error);
        Assert.Equal(SecureEnclaveError.SigningRefused, Assert.Throws<SecureEnclaveException>(() => mac.SecureEnclave.SignManifest(
            new Im4ManifestBody(new Im4PropertySet(new Im4Property("ECID", new Im4OctetString([1])))))).Error);
    }

    [Fact]
    public void Disposed_SEP_no_longer_signs()
    {
        using var mac = new Mac();
        mac.SecureEnclave.Dispose();
        Assert.Throws<ObjectDisposedException>(() => mac.SecureEnclave.SignManifest(Mac.Body(mac.Ecid)));
        Assert.Throws<ObjectDisposedException>(() => mac.SecureEnclave.PrepareLocalPolicyNonce());
        Assert.Throws<ObjectDisposedException>(() => mac.SecureEnclave.ReloadLocalPolicyNonce());
    }
}

using System.CommandLine;
using KextTrust.Boot.KernelManagement;
using KextTrust.Boot.Policy;
using KextTrust.Boot.Receipt;
using KextTrust.Boot.SecureBoot;
using KextTrust.Consent.Machine;

namespace KextTrust.Cli;

/// <summary><c>kextrust bputil|csrutil|kmutil|applepay</c>: the secure-boot commands on the simulated Mac.</summary>
public static class BootCommands
{
    public static void Register(RootCommand root, CliOutput output)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(output);
        root.Subcommands.Add(Bputil(output));
        root.Subcommands.Add(Csrutil(output));
        var kmutil = new Command("kmutil", "Kernel collection management (kmd): create, inspect, showloaded.");
        kmutil.Subcommands.Add(KmutilCreate(output));
        kmutil.Subcommands.Add(KmutilInspect(output));
        kmutil.Subcommands.Add(KmutilShowLoaded(output));
        root.Subcommands.Add(kmutil);
        var applepay = new Command("applepay", "Apple Pay, a consumer of the kext receipt.");
        applepay.Subcommands.Add(ApplePayStatus(output));
        root.Subcommands.Add(applepay);
    }

    /// <summary>Runs a body, reporting secure-boot refusals as exit 1 with their code.</summary>
    public static int Run(CliOutput output, Func<int> body) => MachineOption.Run(output, () =>
    {
        try
        {
            return body();
        }
        catch (SecureBootException e)
        {
            output.Error.WriteLine($"kextrust: refused: {e.Message} (code {e.Code})");
            return ExitCodes.Failed;
        }
        catch (LocalPolicyException e)
        {
            output.Error.WriteLine($"kextrust: refused: {e.Message}");
            return ExitCodes.Failed;
        }
    });

    private static (Option<string> User, Option<string> Password) Credentials(bool required = true) =>
        (new Option<string>("-u", "--user") { Description = "An administrator's name.", Required = required, HelpName = "NAME" },
         new Option<string>("-p", "--password") { Description = "The administrator's password.", Required = required, HelpName = "PASSWORD" });

    private static Command Bputil(CliOutput output)
    {
        var machineOpt = MachineOption.Create();
        var full = new Option<bool>("-f", "--full-security") { Description = "Full Security." };
        var reduced = new Option<bool>("-g", "--reduced-security") { Description = "Reduced Security." };
        var permissive = new Option<bool>("-n", "--permissive-security") { Description = "Permissive Security." };
        var kexts = new Option<bool>("-k", "--enable-kexts") { Description = "Allow third-party kexts (smb2)." };
        var mdm = new Option<bool>("-m", "--enable-mdm") { Description = "Allow MDM to manage kexts (smb3)." };
        var display = new Option<bool>("-d", "--display-policy") { Description = "Display the LocalPolicy." };
        var (user, password) = Credentials(required: false);
        var cmd = new Command("bputil", "Change the boot security policy (One True Recovery only, admin password), or display it with -d.")
        {
            machineOpt, full, reduced, permissive, kexts, mdm, display, user, password,
        };
        cmd.SetAction(r => Run(output, () =>
        {
            using var mac = MachineOption.Open(r.GetValue(machineOpt)!);
            if (mac.Description.Platform != MachinePlatform.AppleSilicon)
            {
                throw new SecureBootException(SecureBootCode.NotOnIntel, "bputil: not on Intel (Intel Macs have no LocalPolicy)");
            }
            if (r.GetValue(display))
            {
                Display(output, SecureBootMac.ReadPolicy(mac));
                return ExitCodes.Ok;
            }
            var modes = new[] { r.GetValue(full), r.GetValue(reduced), r.GetValue(permissive) }.Count(x => x);
            if (modes != 1)
            {
                return output.InputError("bputil: give exactly one of -f, -g, -n (or -d)");
            }
            if (r.GetValue(user) is not { } u || r.GetValue(password) is not { } pw)
            {
                return output.InputError("bputil: -u NAME and -p PASSWORD are required");
            }
            var mode = r.GetValue(full) ? SecurityMode.Full : r.GetValue(reduced) ? SecurityMode.Reduced : SecurityMode.Permissive;
            var policy = SecureBootMac.Bputil(mac, new BputilRequest(mode, r.GetValue(kexts), r.GetValue(mdm), u, pw));
            output.Out.WriteLine($"new LocalPolicy signed by the Secure Enclave: {policy.SecurityMode} Security; third-party kexts {(policy.ThirdPartyKextsEnabled ? "allowed" : "not allowed")}; MDM kext management {(policy.MdmManagesKexts ? "on" : "off")}");
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static void Display(CliOutput output, LocalPolicy p)
    {
        output.Out.WriteLine($"ECID: 0x{p.Ecid:x16}");
        output.Out.WriteLine($"lpnh: {p.LocalPolicyNonceHash}");
        output.Out.WriteLine($"vuid: {p.VolumeGroupUuid}");
        output.Out.WriteLine($"security mode: {p.SecurityMode}");
        output.Out.WriteLine($"smb0 (Reduced): {p.ReducedSecurity}");
        output.Out.WriteLine($"smb1 (Permissive): {p.PermissiveSecurity}");
        output.Out.WriteLine($"smb2 (third-party kexts): {p.ThirdPartyKextsEnabled}");
        output.Out.WriteLine($"smb3 (MDM manages kexts): {p.MdmManagesKexts}");
        output.Out.WriteLine($"sip0: 0x{(ushort)p.SipConfig:x}");
        output.Out.WriteLine($"auxp: {p.AuxKextPolicyHash?.ToString() ?? "absent"}");
        output.Out.WriteLine($"auxi: {p.AuxKcImage4Hash?.ToString() ?? "absent"}");
        output.Out.WriteLine($"auxr: {p.AuxKcReceiptHash?.ToString() ?? "absent"}");
    }

    private static Command Csrutil(CliOutput output)
    {
        var machineOpt = MachineOption.Create();
        var action = new Argument<string>("action") { Description = "enable, disable or status." };
        action.AcceptOnlyFromAmong("enable", "disable", "status");
        var without = new Option<string?>("--without") { Description = "With enable: leave this protection off (kext).", HelpName = "kext" };
        var (user, password) = Credentials(required: false);
        var cmd = new Command("csrutil", "System Integrity Protection: status, or enable/disable in One True Recovery (recoveryOS on Intel) with an admin password.")
        {
            action, machineOpt, without, user, password,
        };
        cmd.SetAction(r => Run(output, () =>
        {
            using var mac = MachineOption.Open(r.GetValue(machineOpt)!);
            var a = r.GetValue(action)!;
            if (a == "status")
            {
                var csr = mac.Description.CsrActiveConfig;
                output.Out.WriteLine($"System Integrity Protection status: {(csr == 0 ? "enabled" : csr == Csr.Disabled ? "disabled" : "enabled (custom configuration)")}. (csr-active-config 0x{csr:x})");
                output.Out.WriteLine($"Kext Signing: {(mac.Description.SipEnforcesKexts ? "enabled" : "disabled")}");
                return ExitCodes.Ok;
            }
            if (r.GetValue(without) is { } w && (w != "kext" || a != "enable"))
            {
                return output.InputError("csrutil: only `enable --without kext` is supported");
            }
            if (r.GetValue(user) is not { } u || r.GetValue(password) is not { } pw)
            {
                return output.InputError("csrutil: -u NAME and -p PASSWORD are required");
            }
            var result = SecureBootMac.Csrutil(mac, a == "enable", r.GetValue(without) is not null, u, pw);
            output.Out.WriteLine($"System Integrity Protection {(a == "enable" ? "enabled" : "disabled")} (csr-active-config 0x{result:x}); restart for the change to take effect");
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static Command KmutilCreate(CliOutput output)
    {
        var machineOpt = MachineOption.Create();
        var (user, password) = Credentials();
        var cmd = new Command("create", "Rebuild the auxiliary kernel collection from the user-approved kexts (admin approval; takes effect at the next startup).")
        {
            machineOpt, user, password,
        };
        cmd.SetAction(r => Run(output, () =>
        {
            using var mac = MachineOption.Open(r.GetValue(machineOpt)!);
            var result = SecureBootMac.KmutilCreate(mac, r.GetValue(user)!, r.GetValue(password)!);
            foreach (var d in result.Build.Decisions)
            {
                output.Out.WriteLine(d.Included ? $"included {d.BundleId} {d.Version} (team {d.TeamId}, cdhash {d.CdHash})" : $"excluded {d.BundleId ?? d.BundlePath}: {d.Exclusion}: {d.ExclusionDetail}");
            }
            output.Out.WriteLine($"AuxKC written: {result.Build.AuxKc.Kexts.Length} kext(s), measurement {result.Build.Measurement}");
            if (result.Policy is { } p)
            {
                output.Out.WriteLine($"the Secure Enclave signed the AuxKC Image4; new LocalPolicy: auxp {p.AuxKextPolicyHash}, auxi {p.AuxKcImage4Hash}, auxr {p.AuxKcReceiptHash}");
            }
            output.Out.WriteLine("restart to load the new kernel collection");
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static Command KmutilInspect(CliOutput output)
    {
        var machineOpt = MachineOption.Create();
        var cmd = new Command("inspect", "List the fileset entries of the auxiliary kernel collection.") { machineOpt };
        cmd.SetAction(r => Run(output, () =>
        {
            using var mac = MachineOption.Open(r.GetValue(machineOpt)!);
            var path = mac.Store.PathOf(SecureBootLayout.AuxKc(mac.Description.Platform));
            if (!File.Exists(path))
            {
                output.Out.WriteLine("no auxiliary kernel collection (run `kextrust kmutil create`)");
                return ExitCodes.Ok;
            }
            var kc = AuxiliaryKernelCollection.Read(File.ReadAllBytes(path));
            output.Out.WriteLine($"{path}: MH_FILESET, {kc.Kexts.Length} entr{(kc.Kexts.Length == 1 ? "y" : "ies")}");
            foreach (var k in kc.Kexts)
            {
                output.Out.WriteLine($"  {k.BundleId} {k.Version} {k.BundlePath}");
            }
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static Command KmutilShowLoaded(CliOutput output)
    {
        var machineOpt = MachineOption.Create();
        var cmd = new Command("showloaded", "The third-party kexts the kernel loaded at the last startup.") { machineOpt };
        cmd.SetAction(r => Run(output, () =>
        {
            using var mac = MachineOption.Open(r.GetValue(machineOpt)!);
            var report = SecureBootMac.LastStartup(mac);
            if (report?.Refusal is { } refusal)
            {
                output.Out.WriteLine($"booted without third-party kexts: {refusal.Code}: {refusal.Detail}");
            }
            output.Out.WriteLine("Index Name (Version) TeamID CDHash");
            foreach (var k in report?.Loaded ?? [])
            {
                output.Out.WriteLine($"{k.LoadTag,5} {k.BundleId} ({k.Version}) {k.TeamId} {k.CdHash}");
            }
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static Command ApplePayStatus(CliOutput output)
    {
        var machineOpt = MachineOption.Create();
        var cmd = new Command("status", "Whether Apple Pay is available, from the kext receipt.") { machineOpt };
        cmd.SetAction(r => Run(output, () =>
        {
            using var mac = MachineOption.Open(r.GetValue(machineOpt)!);
            var status = ApplePay.Status(SecureBootMac.ReadReceipt(mac));
            output.Out.WriteLine(status.Describe());
            return ExitCodes.Ok;
        }));
        return cmd;
    }
}

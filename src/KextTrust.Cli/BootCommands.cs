using System.CommandLine;
using KextTrust.Boot.Enclave;
using KextTrust.Boot.KernelManagement;
using KextTrust.Boot.Policy;
using KextTrust.Boot.Receipt;
using KextTrust.Boot.SecureBoot;
using KextTrust.Consent;
using KextTrust.Formats;
using KextTrust.Formats.Image4;
using KextTrust.Kexts.Kpi;
using KextTrust.Machine;

namespace KextTrust.Cli;

/// <summary><c>kextrust bputil|csrutil|kmutil|applepay</c>: the secure-boot commands on the simulated Mac.</summary>
internal static class BootCommands
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
    public static int Run(CliOutput output, Func<int> body) => Run(output, json: false, body);

    /// <summary>
    /// Runs a body. A refused action is exit 1, unreadable input or misuse exit 2: the reason and its stable code go to
    /// standard error, and with <paramref name="json"/> also <c>{"error": {"code", "message", "exitCode"}}</c> to standard output.
    /// </summary>
    public static int Run(CliOutput output, bool json, Func<int> body)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(body);
        try
        {
            return body();
        }
        catch (KextTrustException e)
        {
            // Refused (exit 1), bad input or busy (exit 2): decided by the error's kind, worded by its code.
            var exit = MachineOption.Report(output, e);
            WriteError(output, json, e.ErrorCode, e.Message, exit);
            return exit;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Fail(output, json, "IOError", e.Message, ExitCodes.InputError);
        }
    }

    /// <summary>
    /// Reports a failure: "kextrust: refused: message (code CODE)" (exit 1) or "kextrust: message" (exit 2) on standard
    /// error, and the error object on standard output with <paramref name="json"/>. Returns <paramref name="exitCode"/>.
    /// </summary>
    public static int Fail(CliOutput output, bool json, string code, string message, int exitCode)
    {
        ArgumentNullException.ThrowIfNull(output);
        output.Error.WriteLine(exitCode == ExitCodes.Failed ? $"kextrust: refused: {message} (code {code})" : $"kextrust: {message}");
        WriteError(output, json, code, message, exitCode);
        return exitCode;
    }

    /// <summary>Misuse of a command (exit 2, code <c>Usage</c>).</summary>
    public static int Usage(CliOutput output, bool json, string message) => Fail(output, json, "Usage", message, ExitCodes.InputError);

    private static void WriteError(CliOutput output, bool json, string code, string message, int exitCode)
    {
        if (json)
        {
            output.WriteJson(new BootErrorJson(new BootErrorDetailJson(MachineOption.Kebab(code), message, exitCode)));
        }
    }

    /// <summary>
    /// Sets the action of <paramref name="cmd"/>: opens the Mac named by <paramref name="machineOpt"/>, runs
    /// <paramref name="body"/> (with the parse result, the Mac and whether <paramref name="json"/> was given) and reports
    /// failures through <see cref="Run(CliOutput, bool, Func{int})"/>.
    /// </summary>
    public static void SetMacAction(Command cmd, CliOutput output, Option<string> machineOpt, Option<bool> json, Func<ParseResult, Mac, bool, int> body)
    {
        ArgumentNullException.ThrowIfNull(cmd);
        ArgumentNullException.ThrowIfNull(body);
        cmd.SetAction(r =>
        {
            var asJson = r.GetValue(json);
            return Run(output, asJson, () =>
            {
                using var mac = MachineOption.Open(r.GetValue(machineOpt)!);
                return body(r, mac, asJson);
            });
        });
    }

    /// <summary>A new <c>--json</c> option.</summary>
    public static Option<bool> JsonOption() => new("--json") { Description = "Write JSON (camelCase; errors as {\"error\": {code, message, exitCode}})." };

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
        var json = JsonOption();
        var (user, password) = Credentials(required: false);
        var cmd = new Command("bputil", "Change the boot security policy (One True Recovery only, admin password), or display it with -d.")
        {
            machineOpt, full, reduced, permissive, kexts, mdm, display, user, password, json,
        };
        SetMacAction(cmd, output, machineOpt, json, (r, mac, asJson) =>
        {
            if (mac.Description.Platform != MacPlatform.AppleSilicon)
            {
                throw new SecureBootException(SecureBootCode.NotOnIntel, "bputil: not on Intel (Intel Macs have no LocalPolicy)");
            }
            if (r.GetValue(display))
            {
                var current = mac.ReadLocalPolicy();
                var check = mac.VerifyLocalPolicy();
                if (asJson)
                {
                    output.WriteJson(LocalPolicyJson.From(current, check));
                }
                else
                {
                    Display(output, mac, current, check);
                }
                return ExitCodes.Ok;
            }
            var modes = new[] { r.GetValue(full), r.GetValue(reduced), r.GetValue(permissive) }.Count(x => x);
            if (modes != 1)
            {
                return Usage(output, asJson, "bputil: give exactly one of -f, -g, -n (or -d)");
            }
            if (r.GetValue(user) is not { } u || r.GetValue(password) is not { } pw)
            {
                return Usage(output, asJson, "bputil: -u NAME and -p PASSWORD are required");
            }
            var mode = r.GetValue(full) ? SecurityMode.Full : r.GetValue(reduced) ? SecurityMode.Reduced : SecurityMode.Permissive;
            var policy = mac.Bputil(new BputilRequest(mode, r.GetValue(kexts), r.GetValue(mdm), u, pw));
            if (asJson)
            {
                output.WriteJson(new BputilJson(MachineOption.Kebab(mode), LocalPolicyJson.From(policy, mac.VerifyLocalPolicy())));
            }
            else
            {
                output.Out.WriteLine($"new LocalPolicy signed by the Secure Enclave: {policy.SecurityMode} Security; third-party kexts {(policy.ThirdPartyKextsEnabled ? "allowed" : "not allowed")}; MDM kext management {(policy.MdmManagesKexts ? "on" : "off")}");
            }
            return ExitCodes.Ok;
        });
        return cmd;
    }

    private static void Display(CliOutput output, Mac mac, LocalPolicy p, LocalPolicyVerification check)
    {
        // bputil itself only displays; what iBoot would conclude is said first, before the volume-group header, where
        // parsers of bputil's output (which start at that header) do not read it.
        output.Out.WriteLine(check.Valid
            ? "verified as iBoot checks it: signed by this Mac's Secure Enclave, this ECID, the current nonce"
            : $"NOT VERIFIED (startup would refuse it): {string.Join("; ", check.Failures)}");
        output.Out.WriteLine();
        using var enclave = mac.OpenEnclave();
        foreach (var line in BputilDisplay.Lines(p, check.Valid, enclave.CurrentLocalPolicyNonceHash))
        {
            output.Out.WriteLine(line);
        }
    }

    private static string SipStatus(CsrConfig csr) => csr == CsrConfig.None ? "enabled" : csr == CsrConfig.Disabled ? "disabled" : "custom";

    private static Command Csrutil(CliOutput output)
    {
        var machineOpt = MachineOption.Create();
        var action = new Argument<string>("action") { Description = "enable, disable or status." };
        action.AcceptOnlyFromAmong("enable", "disable", "status");
        var without = new Option<string?>("--without") { Description = "With enable: leave this protection off (kext).", HelpName = "kext" };
        var json = JsonOption();
        var (user, password) = Credentials(required: false);
        var cmd = new Command("csrutil", "System Integrity Protection: status, or enable/disable in One True Recovery (recoveryOS on Intel) with an admin password.")
        {
            action, machineOpt, without, user, password, json,
        };
        SetMacAction(cmd, output, machineOpt, json, (r, mac, asJson) =>
        {
            var a = r.GetValue(action)!;
            if (a == "status")
            {
                var csr = mac.Description.CsrActiveConfig;
                if (asJson)
                {
                    output.WriteJson(CsrJson(mac, a, restart: false));
                    return ExitCodes.Ok;
                }
                // Apple's wording, so scripts that parse `csrutil status` parse ours; the value itself is in --json.
                output.Out.Write(CsrutilStatusText.Format(csr, mac.Description.Version));
                return ExitCodes.Ok;
            }
            if (r.GetValue(without) is { } w && (w != "kext" || a != "enable"))
            {
                return Usage(output, asJson, "csrutil: only `enable --without kext` is supported");
            }
            if (r.GetValue(user) is not { } u || r.GetValue(password) is not { } pw)
            {
                return Usage(output, asJson, "csrutil: -u NAME and -p PASSWORD are required");
            }
            var result = mac.Csrutil(a == "enable", r.GetValue(without) is not null, u, pw);
            if (asJson)
            {
                output.WriteJson(CsrJson(mac, a, restart: true));
                return ExitCodes.Ok;
            }
            output.Out.WriteLine($"System Integrity Protection {(a == "enable" ? "enabled" : "disabled")} (csr-active-config {result.ToHex()}); restart for the change to take effect");
            return ExitCodes.Ok;
        });
        return cmd;
    }

    private static CsrutilJson CsrJson(Mac mac, string action, bool restart)
    {
        var csr = mac.Description.CsrActiveConfig;
        var sip0 = mac.Description.Platform == MacPlatform.AppleSilicon ? LocalPolicyJson.Hex((ushort)mac.ReadLocalPolicy().SipConfig) : null;
        return new CsrutilJson(action, SipStatus(csr), csr.ToHex(), (csr & CsrConfig.AllowUntrustedKexts) == 0,
            (csr & CsrConfig.AllowUnapprovedKexts) == 0, sip0, restart);
    }

    private static Command KmutilCreate(CliOutput output)
    {
        var machineOpt = MachineOption.Create();
        var json = JsonOption();
        var (user, password) = Credentials();
        var cmd = new Command("create", "Rebuild the auxiliary kernel collection from the user-approved kexts (admin approval; takes effect at the next startup).")
        {
            machineOpt, user, password, json,
        };
        SetMacAction(cmd, output, machineOpt, json, (r, mac, asJson) =>
        {
            var result = mac.KmutilCreate(r.GetValue(user)!, r.GetValue(password)!);
            if (asJson)
            {
                output.WriteJson(KmutilCreateJson.From(result, mac.Store.PathOf(SecureBootLayout.AuxKc(mac.Description.Platform)),
                    result.Policy is null ? null : mac.VerifyLocalPolicy()));
                return ExitCodes.Ok;
            }
            foreach (var d in result.Build.Decisions)
            {
                output.Out.WriteLine(d.Included ? $"included {d.BundleId} {d.Version} (team {d.TeamId}, cdhash {d.CdHash})"
                    : $"excluded {d.BundleId ?? d.BundlePath}: {TrustCheckJson.CodeText(d.Exclusion is { } x ? MachineOption.Kebab(x) : null, d.KMErrorCode)}: {d.ExclusionDetail}");
            }
            output.Out.WriteLine($"AuxKC written: {result.Build.AuxKc.Kexts.Length} kext(s), measurement {result.Build.Measurement}");
            if (result.Policy is { } p)
            {
                output.Out.WriteLine($"the Secure Enclave signed the AuxKC Image4; new LocalPolicy: auxp {p.AuxKextPolicyHash}, auxi {p.AuxKcImage4Hash}, auxr {p.AuxKcReceiptHash}");
            }
            output.Out.WriteLine("restart to load the new kernel collection");
            return ExitCodes.Ok;
        });
        return cmd;
    }

    private static Command KmutilInspect(CliOutput output)
    {
        var machineOpt = MachineOption.Create();
        var json = JsonOption();
        var cmd = new Command("inspect", "List the fileset entries of the auxiliary kernel collection (with --json also the kext receipt).") { machineOpt, json };
        SetMacAction(cmd, output, machineOpt, json, (r, mac, asJson) =>
        {
            var path = mac.Store.PathOf(SecureBootLayout.AuxKc(mac.Description.Platform));
            var bytes = File.Exists(path) ? File.ReadAllBytes(path) : null;
            var kc = bytes is null ? null : AuxiliaryKernelCollection.Read(bytes, path);
            if (asJson)
            {
                var receipt = mac.ReadReceipt();
                output.WriteJson(new KmutilInspectJson(
                    kc is null ? null : new AuxKcJson(path, kc.Kexts.Length, bytes!.Length, Sha384Digest.Compute(bytes).ToString()),
                    kc is null ? [] : [.. kc.Kexts.Select(k => new FilesetEntryJson(k.BundleId, k.Version, k.BundlePath))],
                    receipt is null ? null : ReceiptJson.From(receipt)));
                return ExitCodes.Ok;
            }
            if (kc is null)
            {
                output.Out.WriteLine("no auxiliary kernel collection (run `kextrust kmutil create`)");
                return ExitCodes.Ok;
            }
            output.Out.WriteLine($"{path}: MH_FILESET, {kc.Kexts.Length} entr{(kc.Kexts.Length == 1 ? "y" : "ies")}");
            foreach (var k in kc.Kexts)
            {
                output.Out.WriteLine($"  {k.BundleId} {k.Version} {k.BundlePath}");
            }
            return ExitCodes.Ok;
        });
        return cmd;
    }

    private static Command KmutilShowLoaded(CliOutput output)
    {
        var machineOpt = MachineOption.Create();
        var json = JsonOption();
        var cmd = new Command("showloaded", "The third-party kexts the kernel loaded at the last startup, in kmutil's columns (Index Refs Address Size Wired Name (Version) UUID <Linked Against>); Apple's own kexts are not modelled.") { machineOpt, json };
        SetMacAction(cmd, output, machineOpt, json, (r, mac, asJson) =>
        {
            var report = mac.LastStartup();
            if (asJson)
            {
                output.WriteJson(StartupJson.From(report, report is null ? null : MachineCommands.RunningKebab(mac.Description)));
                return ExitCodes.Ok;
            }
            if (report?.Refusal is { } refusal)
            {
                // Standard error: standard output stays kmutil's table for scripts.
                output.Error.WriteLine($"booted without third-party kexts: {refusal}");
            }
            output.Out.Write(KmutilShowloadedText.Format(report?.Loaded ?? []));
            return ExitCodes.Ok;
        });
        return cmd;
    }

    private static Command ApplePayStatus(CliOutput output)
    {
        var machineOpt = MachineOption.Create();
        var json = JsonOption();
        var cmd = new Command("status", "Whether Apple Pay is available, from the kext receipt.") { machineOpt, json };
        SetMacAction(cmd, output, machineOpt, json, (r, mac, asJson) =>
        {
            var status = ApplePay.Status(mac.ReadReceipt());
            if (asJson)
            {
                output.WriteJson(ApplePayJson.From(status));
            }
            else
            {
                output.Out.WriteLine(status.Describe());
            }
            return ExitCodes.Ok;
        });
        return cmd;
    }
}

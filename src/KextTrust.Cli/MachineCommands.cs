using System.CommandLine;
using System.Globalization;
using System.Text.RegularExpressions;
using KextTrust.Boot.SecureBoot;
using KextTrust.Consent;
using KextTrust.Kexts.Kpi;
using KextTrust.Machine;
using Spectre.Console;

namespace KextTrust.Cli;

/// <summary>A user as <c>machine show --json</c> writes it: never the password hash.</summary>
internal sealed record MachineUserJson(string Name, bool Admin);

/// <summary>An installed kext as <c>machine show --json</c> writes it.</summary>
internal sealed record InstalledKextJson(string BundleId, string Version, string Path, bool Staged);

/// <summary><c>kextrust machine show --json</c>.</summary>
internal sealed record MachineShowJson(
    string Machine,
    string Platform,
    string MacOS,
    IReadOnlyList<string> OSHistory,
    string RunningOS,
    string Sip,
    string CsrActiveConfig,
    string Mdm,
    string Clock,
    string BootSessionUuid,
    IReadOnlyList<MachineUserJson> Users,
    IReadOnlyList<InstalledKextJson> InstalledKexts,
    string UaklSha384);

/// <summary>
/// <c>kextrust machine init|show|clock|upgrade</c> and <c>kextrust startup</c>: the simulated Mac itself.
/// </summary>
internal static partial class MachineCommands
{
    /// <summary>Adds <c>machine</c> and <c>startup</c> to <paramref name="root"/>.</summary>
    public static void Register(RootCommand root, CliOutput output)
    {
        var machine = new Command("machine", "Create and look at the simulated Mac: a folder laid out like its volumes (Library/Extensions, KextPolicy, Preboot, …).")
        {
            Init(output), Show(output), Clock(output), Upgrade(output),
        };
        root.Subcommands.Add(machine);
        root.Subcommands.Add(Startup(output));
    }

    // ------------------------------------------------------------------ init

    private static Command Init(CliOutput output)
    {
        var dir = new Argument<string?>("DIR") { Description = $"Folder to create the Mac in (default: --machine, ${MachineOption.EnvironmentVariable}, else ./{MachineOption.DefaultDirectory}).", Arity = ArgumentArity.ZeroOrOne };
        var machineOpt = MachineOption.Create();
        var platform = new Option<string>("--platform") { Description = "apple-silicon or intel.", Required = true, HelpName = "apple-silicon|intel" };
        platform.AcceptOnlyFromAmong(MacPlatform.AppleSilicon.Name(), MacPlatform.Intel.Name());
        var macos = new Option<string>("--macos") { Description = "The installed macOS version, e.g. 11.7 or 10.12.6.", Required = true, HelpName = "VERSION" };
        var admin = new Option<string>("--admin") { Description = "The administrator account. The password is stored only as a PBKDF2 hash.", Required = true, HelpName = "NAME:PASSWORD" };
        var user = new Option<string?>("--user") { Description = "An optional standard (non-admin) account.", HelpName = "NAME:PASSWORD" };
        var mdm = new Option<string>("--mdm") { Description = "MDM enrollment.", HelpName = "none|user-approved|automated", DefaultValueFactory = _ => "none" };
        mdm.AcceptOnlyFromAmong("none", "user-approved", "automated");
        var sip = new Option<string>("--sip")
        {
            Description = "SIP configuration (csr-active-config): enabled (default), disabled (csrutil disable), without-kext (csrutil enable --without kext: kext signatures not enforced, user consent still is), or a hex value such as 0x201.",
            HelpName = "enabled|disabled|without-kext|0xHEX",
            DefaultValueFactory = _ => "enabled",
        };
        var trustRoot = new Option<string?>("--trust-root") { Description = "A root certificate (PEM) this Mac also trusts for kext signatures (a test PKI).", HelpName = "FILE" };
        var kextPolicy = new Option<string?>("--kextpolicy") { Description = "Start from a KextPolicy database copied from a real Mac (any schema since 10.13), keeping every row.", HelpName = "FILE" };
        var cmd = new Command("init", "Create a simulated Mac: platform, macOS version, users, MDM enrollment, SIP; it starts running macOS with the machine clock set to now.")
        {
            dir, machineOpt, platform, macos, admin, user, mdm, sip, trustRoot, kextPolicy,
        };
        cmd.SetAction(r => MachineOption.Run(output, () =>
        {
            var path = r.GetValue(dir) ?? r.GetValue(machineOpt)!;
            if (!TryCredential(r.GetValue(admin)!, out var adminName, out var adminPw))
            {
                return output.InputError("--admin must be NAME:PASSWORD");
            }
            (string, string)? standard = null;
            if (r.GetValue(user) is { } u)
            {
                if (!TryCredential(u, out var un, out var upw))
                {
                    return output.InputError("--user must be NAME:PASSWORD");
                }
                standard = (un, upw);
            }
            if (!TryParseSip(r.GetValue(sip)!, out var csr))
            {
                return output.InputError($"--sip: '{r.GetValue(sip)}' is not enabled, disabled, without-kext or a hex csr-active-config");
            }
            var options = new MachineInitOptions(KextArchitectures.TryParsePlatform(r.GetValue(platform), out var p) ? p : MacPlatform.AppleSilicon, r.GetValue(macos)!, adminName, adminPw)
            {
                StandardUser = standard,
                Mdm = r.GetValue(mdm) switch { "user-approved" => MdmEnrollment.UserApproved, "automated" => MdmEnrollment.Automated, _ => MdmEnrollment.None },
                CsrActiveConfig = csr,
                TrustRootPem = r.GetValue(trustRoot) is { } tr ? File.ReadAllText(tr) : null,
                KextPolicySource = r.GetValue(kextPolicy),
            };
            using var mac = Mac.Init(path, options, verifier: MachineOption.Verifier);
            var d = mac.Description;
            output.Out.WriteLine($"created a simulated {d.Platform.DisplayName()} Mac running macOS {d.MacOSVersion} in {mac.Store.Root}");
            output.Out.WriteLine($"users: {string.Join(", ", d.Users.Select(x => x.Name + (x.IsAdmin ? " (admin)" : "")))}; MDM: {MdmName(d.Mdm)}; SIP: {SipName(d.CsrActiveConfig)}; clock: {MachineOption.Time(d.Clock)}");
            if (options.KextPolicySource is not null)
            {
                var c = mac.ReadKextPolicy();
                output.Out.WriteLine($"KextPolicy adopted from {Path.GetFullPath(options.KextPolicySource)}: {c.Policy.Count} kext_policy, {c.Mdm.Count} kext_policy_mdm, {c.History.Count} kext_load_history_v3, {c.Settings.Count} settings row(s)");
            }
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static bool TryCredential(string value, out string name, out string password)
    {
        var i = value.IndexOf(':', StringComparison.Ordinal);
        name = i > 0 ? value[..i] : "";
        password = i > 0 ? value[(i + 1)..] : "";
        return i > 0;
    }

    /// <summary>Parses <c>--sip</c>.</summary>
    public static bool TryParseSip(string value, out CsrConfig csr)
    {
        switch (value.ToLowerInvariant())
        {
            case "enabled":
                csr = CsrConfig.None;
                return true;
            case "disabled":
                csr = CsrConfig.Disabled;
                return true;
            case "without-kext":
                csr = CsrConfig.AllowUntrustedKexts;
                return true;
        }
        var hex = value.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? value[2..] : value;
        var ok = uint.TryParse(hex, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var bits) && hex.Length > 0;
        csr = (CsrConfig)bits;
        return ok;
    }

    /// <summary>How SIP reads for people.</summary>
    public static string SipName(CsrConfig csr) => csr switch
    {
        CsrConfig.None => "enabled",
        CsrConfig.Disabled => $"disabled ({csr.ToHex()})",
        _ when (csr & (CsrConfig.AllowUntrustedKexts | CsrConfig.AllowUnapprovedKexts)) == 0 => $"enabled, custom ({csr.ToHex()})",
        _ => $"custom ({csr.ToHex()}): " + string.Join(", ", new[]
        {
            (csr & CsrConfig.AllowUntrustedKexts) != 0 ? "kext signatures not enforced" : null,
            (csr & CsrConfig.AllowUnapprovedKexts) != 0 ? "kext user consent not required" : null,
        }.Where(s => s is not null)),
    };

    private static string MdmName(MdmEnrollment m) => m switch
    {
        MdmEnrollment.UserApproved => "user-approved enrollment",
        MdmEnrollment.Automated => "Automated Device Enrollment",
        _ => "not enrolled",
    };

    /// <summary>The running OS as people say it.</summary>
    public static string RunningName(MachineDescription d) => d.RunningOS switch
    {
        RunningOS.RecoveryOS => "recoveryOS",
        RunningOS.OneTrueRecovery => "One True Recovery (recoveryOS, power button held)",
        _ => $"macOS {d.MacOSVersion}",
    };

    // ------------------------------------------------------------------ show

    private static Command Show(CliOutput output)
    {
        var machineOpt = MachineOption.Create();
        var json = new Option<bool>("--json") { Description = "Write JSON instead of a table." };
        var cmd = new Command("show", "Show the Mac: platform, macOS, the running OS, SIP, MDM, clock, users (never their password hashes) and installed kexts.")
        {
            machineOpt, json,
        };
        cmd.SetAction(r => MachineOption.Run(output, r.GetValue(json), () =>
        {
            using var mac = MachineOption.Open(r.GetValue(machineOpt)!);
            var d = mac.Description;
            var kexts = mac.InstalledKexts().Select(k => new InstalledKextJson(k.BundleId, k.Version, "/" + k.RelativePath,
                Directory.Exists(mac.Store.PathOf(MachineLayout.StagedPathOf(k.RelativePath))))).ToArray();
            var show = new MachineShowJson(mac.Store.Root, d.Platform.Name(), d.MacOSVersion, d.OSHistory, MachineOption.Kebab(d.RunningOS),
                SipName(d.CsrActiveConfig), d.CsrActiveConfig.ToHex(), MachineOption.Kebab(d.Mdm), d.Clock.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
                d.BootSessionUuid, d.Users.Select(u => new MachineUserJson(u.Name, u.IsAdmin)).ToArray(), kexts, mac.BuildUakl().Sha384);
            if (r.GetValue(json))
            {
                output.WriteJson(show);
                return ExitCodes.Ok;
            }
            var table = new Table().Border(TableBorder.Rounded).HideHeaders();
            table.AddColumn("property");
            table.AddColumn("value");
            void Row(string k, string v) => table.AddRow(Markup.Escape(k), Markup.Escape(v));
            Row("machine", mac.Store.Root);
            Row("platform", d.Platform.DisplayName());
            Row("macOS", d.MacOSVersion + (d.OSHistory.Count > 1 ? $" (history: {string.Join(" → ", d.OSHistory)})" : ""));
            Row("running", RunningName(d));
            Row("SIP", SipName(d.CsrActiveConfig));
            Row("MDM", MdmName(d.Mdm));
            Row("clock", MachineOption.Time(d.Clock));
            Row("users", string.Join(", ", d.Users.Select(u => u.Name + (u.IsAdmin ? " (admin)" : " (standard)"))));
            Row("UAKL SHA-384", show.UaklSha384);
            output.Console.Write(table);
            if (kexts.Length == 0)
            {
                output.Out.WriteLine("no kexts in /Library/Extensions");
                return ExitCodes.Ok;
            }
            var kt = new Table().Border(TableBorder.Rounded);
            kt.AddColumn("installed kext");
            kt.AddColumn("version");
            kt.AddColumn("path");
            kt.AddColumn("staged");
            foreach (var k in kexts)
            {
                kt.AddRow(Markup.Escape(k.BundleId), Markup.Escape(k.Version), Markup.Escape(k.Path), k.Staged ? "yes" : "no");
            }
            output.Console.Write(kt);
            return ExitCodes.Ok;
        }));
        return cmd;
    }


    // ------------------------------------------------------------------ clock

    private static Command Clock(CliOutput output)
    {
        var machineOpt = MachineOption.Create();
        var advance = new Option<string?>("--advance") { Description = "Move the machine clock forward, e.g. 31m, 2h, 90s, 1h30m, 1d.", HelpName = "DURATION" };
        var show = new Option<bool>("--show") { Description = "Print the machine clock (the default when --advance is not given)." };
        var cmd = new Command("clock", "Show or advance the Mac's clock (the 30-minute approval window runs on it).")
        {
            machineOpt, advance, show,
        };
        cmd.SetAction(r => MachineOption.Run(output, () =>
        {
            TimeSpan? by = null;
            if (r.GetValue(advance) is { } text)
            {
                if (!TryParseDuration(text, out var d))
                {
                    return output.InputError($"--advance: '{text}' is not a duration such as 31m, 2h, 90s or 1h30m");
                }
                by = d;
            }
            using var mac = MachineOption.Open(r.GetValue(machineOpt)!);
            if (by is { } span)
            {
                var before = mac.Description.Clock;
                mac.AdvanceClock(span);
                output.Out.WriteLine($"clock: {MachineOption.Time(mac.Description.Clock)} (advanced {FormatDuration(mac.Description.Clock - before)} from {MachineOption.Time(before)})");
            }
            else
            {
                output.Out.WriteLine($"clock: {MachineOption.Time(mac.Description.Clock)}");
            }
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    [GeneratedRegex(@"^(?:(\d{1,9})([dhms]))+$", RegexOptions.CultureInvariant)]
    private static partial Regex DurationPattern();

    /// <summary>Parses "31m", "2h", "90s", "1h30m", "1d".</summary>
    public static bool TryParseDuration(string text, out TimeSpan duration)
    {
        duration = TimeSpan.Zero;
        var m = DurationPattern().Match(text.Trim());
        if (!m.Success)
        {
            return false;
        }
        for (var i = 0; i < m.Groups[1].Captures.Count; i++)
        {
            var n = long.Parse(m.Groups[1].Captures[i].Value, CultureInfo.InvariantCulture);
            duration += m.Groups[2].Captures[i].Value switch
            {
                "d" => TimeSpan.FromDays(n),
                "h" => TimeSpan.FromHours(n),
                "m" => TimeSpan.FromMinutes(n),
                _ => TimeSpan.FromSeconds(n),
            };
        }
        return true;
    }

    private static string FormatDuration(TimeSpan t) =>
        (t.Days > 0 ? $"{t.Days}d" : "") + (t.Hours > 0 ? $"{t.Hours}h" : "") + (t.Minutes > 0 ? $"{t.Minutes}m" : "") + (t.Seconds > 0 || t == TimeSpan.Zero ? $"{t.Seconds}s" : "");

    // ------------------------------------------------------------------ upgrade

    private static Command Upgrade(CliOutput output)
    {
        var machineOpt = MachineOption.Create();
        var macos = new Option<string>("--macos") { Description = "The new macOS version (newer than the installed one).", Required = true, HelpName = "VERSION" };
        var cmd = new Command("upgrade", "Upgrade macOS. Upgrading from 10.12 or earlier to 10.13 or later grandfathers the kexts present in /Library/Extensions.")
        {
            machineOpt, macos,
        };
        cmd.SetAction(r => MachineOption.Run(output, () =>
        {
            using var mac = MachineOption.Open(r.GetValue(machineOpt)!);
            var from = mac.Description.MacOSVersion;
            var grandfathered = mac.Upgrade(r.GetValue(macos)!);
            output.Out.WriteLine($"upgraded macOS {from} → {mac.Description.MacOSVersion}");
            foreach (var id in grandfathered)
            {
                output.Out.WriteLine($"grandfathered: {id} (installed on macOS {from}, allowed without user consent)");
            }
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    // ------------------------------------------------------------------ startup

    /// <summary>The running OS as <c>--json</c> writes it: mac-os, recovery-os, one-true-recovery.</summary>
    public static string RunningKebab(MachineDescription d) => MachineOption.Kebab(d.RunningOS);

    private static Command Startup(CliOutput output)
    {
        var machineOpt = MachineOption.Create();
        var recovery = new Option<bool>("--recovery") { Description = "Start up into recoveryOS (Intel: Command-R; Apple silicon: hold the power button, One True Recovery). Without it: macOS." };
        var json = BootCommands.JsonOption();
        var cmd = new Command("startup", "Restart the Mac into macOS, or into recoveryOS with --recovery (where spctl kext-consent and SIP changes are allowed). Exit 1 when iBoot refused the LocalPolicy or the AuxKC and the Mac started without third-party kexts.")
        {
            machineOpt, recovery, json,
        };
        BootCommands.SetMacAction(cmd, output, machineOpt, json, (r, mac, asJson) =>
        {
            var report = mac.Startup(r.GetValue(recovery));
            var d = mac.Description;
            var exit = report?.Refusal is null ? ExitCodes.Ok : ExitCodes.Failed;
            if (asJson)
            {
                output.WriteJson(StartupJson.From(report, RunningKebab(d)));
                return exit;
            }
            output.Out.WriteLine($"running: {RunningName(d)}");
            if (report is not null)
            {
                if (report.Refusal is { } refusal)
                {
                    output.Out.WriteLine($"iBoot: booting without third-party kexts: {refusal}");
                }
                foreach (var k in report.Loaded)
                {
                    output.Out.WriteLine($"loaded {k.BundleId} {k.Version} (tag {k.LoadTag})");
                }
            }
            output.Out.WriteLine($"boot session: {d.BootSessionUuid}");
            return exit;
        });
        return cmd;
    }
}

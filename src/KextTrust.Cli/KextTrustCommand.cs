using System.CommandLine;

namespace KextTrust.Cli;

/// <summary>The <c>kextrust</c> root command: the subcommands register themselves here.</summary>
internal static class KextTrustCommand
{
    public static RootCommand Build(TextWriter stdout, TextWriter stderr)
    {
        var root = new RootCommand(
            "KextTrust: the macOS kernel-extension trust pipeline, off the Mac. Inspect kexts, verify their " +
            "signatures, audit their KPIs, and run User-Approved Kernel Extension Loading, kmd and secure boot " +
            "on a simulated Mac.");
        var output = new CliOutput(stdout, stderr);
        root.Subcommands.Add(InspectCommand.Create(output));
        root.Subcommands.Add(VerifyCommand.Create(output));
        root.Subcommands.Add(CodesignCommand.Create(output));
        root.Subcommands.Add(PkiCommand.Create(output));
        root.Subcommands.Add(AuditCommand.Create(output));
        MachineCommands.Register(root, output);
        ApprovalCommands.Register(root, output);
        MdmCommands.Register(root, output);
        SpctlCommand.Register(root, output);
        KextPolicyCommand.Register(root, output);
        WhyCommand.Register(root, output);
        root.Subcommands.Add(DemoCommand.Create(output));
        BootCommands.Register(root, output);
        root.Subcommands.Add(Img4Command.Create(output));
        return root;
    }

    /// <summary>Parses and runs one command line; returns the process exit code.</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var root = Build(stdout, stderr);
        var config = new InvocationConfiguration { Output = stdout, Error = stderr };
        var parsed = root.Parse(args);
        var code = parsed.Invoke(config);
        // A command line that does not parse is misuse: exit 2 (System.CommandLine's own default is 1).
        return parsed.Errors.Count > 0 ? ExitCodes.InputError : code;
    }
}

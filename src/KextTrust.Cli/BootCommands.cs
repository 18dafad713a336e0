using System.CommandLine;

namespace KextTrust.Cli;

/// <summary><c>kextrust bputil|csrutil|kmutil|applepay</c>: the secure-boot commands.</summary>
public static class BootCommands
{
    public static void Register(RootCommand root, CliOutput output)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(output);
    }
}

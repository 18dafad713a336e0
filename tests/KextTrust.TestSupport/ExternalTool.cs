using System.Diagnostics;

namespace KextTrust.TestSupport;

/// <summary>
/// Runs an independent reference tool (Debian's llvm-14, plistutil, openssl) and returns its
/// output. A missing tool is a test failure with the install command, never a silent skip:
/// .ci/run installs them all.
/// </summary>
public static class ExternalTool
{
    public sealed record Result(int ExitCode, string StdOut, string StdErr);

    public static string LlvmObjdump => Require("llvm-objdump-14", "llvm-14");
    public static string LlvmNm => Require("llvm-nm-14", "llvm-14");
    public static string LlvmOtool => Require("llvm-otool-14", "llvm-14");
    /// <summary>llvm-objdump from llvm-19, which (unlike llvm-14) recognises MH_FILESET.</summary>
    public static string LlvmObjdump19 => Require("llvm-objdump-19", "llvm-19");
    public static string PlistUtil => Require("plistutil", "libplist-utils");
    public static string OpenSsl => Require("openssl", "openssl");

    public static string Require(string tool, string debianPackage)
    {
        var found = Find(tool);
        if (found is null)
        {
            throw new InvalidOperationException(
                $"The reference tool '{tool}' is not on PATH. Install it: apt-get install -y {debianPackage}");
        }
        return found;
    }

    public static string? Find(string tool)
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var dir in path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, tool);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        return null;
    }

    public static Result Run(string tool, params string[] args) => Run(tool, args, stdin: null);

    public static Result Run(string tool, IEnumerable<string> args, byte[]? stdin, int timeoutMs = 120_000)
    {
        var psi = new ProcessStartInfo(tool)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {tool}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            p.StandardInput.BaseStream.Write(stdin);
            p.StandardInput.Close();
        }
        if (!p.WaitForExit(timeoutMs))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{tool} {string.Join(' ', args)} did not finish in {timeoutMs} ms");
        }
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Runs the tool and fails unless it exits 0; returns standard output.</summary>
    public static string RunChecked(string tool, params string[] args)
    {
        var r = Run(tool, args);
        if (r.ExitCode != 0)
        {
            throw new InvalidOperationException($"{tool} {string.Join(' ', args)} exited {r.ExitCode}: {r.StdErr}");
        }
        return r.StdOut;
    }
}

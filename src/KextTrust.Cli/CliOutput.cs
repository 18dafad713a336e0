using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Spectre.Console;

namespace KextTrust.Cli;

/// <summary>Process exit codes shared by every command.</summary>
internal static class ExitCodes
{
    /// <summary>Success: everything checked passed.</summary>
    public const int Ok = 0;
    /// <summary>The command ran, and something it checked did not pass (invalid signature, refused kext…).</summary>
    public const int Failed = 1;
    /// <summary>The input could not be read (missing file, malformed format) or the command was misused.</summary>
    public const int InputError = 2;
}

/// <summary>Where a command writes: plain text, Spectre tables, or JSON, to the given writers.</summary>
internal sealed class CliOutput
{
    /// <summary>
    /// The options of every JSON document a command writes from a record: indented, camelCase, enums in kebab-case.
    /// Metadata comes only from source-generated contexts, so the command runs the same under Native AOT; a type
    /// that none of them lists fails at once, never falls back to reflection.
    /// </summary>
    internal static readonly JsonSerializerOptions JsonOptions = CliJsonContext.CreateOptions();

        public CliOutput(TextWriter stdout, TextWriter stderr)
    {
        Out = stdout;
        Error = stderr;
        var interactive = ReferenceEquals(stdout, System.Console.Out) && !System.Console.IsOutputRedirected;
        IsInteractive = interactive;
        // Made on first use: commands that write JSON never load Spectre's console machinery.
        _console = new Lazy<IAnsiConsole>(() =>
        {
            var console = AnsiConsole.Create(new AnsiConsoleSettings
            {
                Out = new AnsiConsoleOutput(stdout),
                Ansi = interactive ? AnsiSupport.Detect : AnsiSupport.No,
                ColorSystem = interactive ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
                Interactive = interactive ? InteractionSupport.Detect : InteractionSupport.No,
            });
            if (!interactive)
            {
                console.Profile.Width = 160;
            }
            return console;
        });
    }

    private readonly Lazy<IAnsiConsole> _console;

    public TextWriter Out { get; }
    public TextWriter Error { get; }

    /// <summary>Spectre console over <see cref="Out"/>: ANSI only on a real terminal.</summary>
    public IAnsiConsole Console => _console.Value;

    /// <summary>True when writing to a terminal (progress bars and colour allowed).</summary>
    public bool IsInteractive { get; }

    public static string ToJson<T>(T value) => JsonSerializer.Serialize(value, TypeInfo<T>());

    /// <summary>The source-generated metadata of <typeparamref name="T"/> under <see cref="JsonOptions"/>.</summary>
    internal static JsonTypeInfo<T> TypeInfo<T>() => (JsonTypeInfo<T>)JsonOptions.GetTypeInfo(typeof(T));

    public void WriteJson<T>(T value)
    {
        if (ReferenceEquals(Out, System.Console.Out))
        {
            // Stream straight to stdout: a large report never exists as one string.
            Out.Flush();
            using var stdout = System.Console.OpenStandardOutput();
            using var buffered = new BufferedStream(stdout, 1 << 16);
            JsonSerializer.Serialize(buffered, value, TypeInfo<T>());
            buffered.WriteByte((byte)'\n');
            return;
        }
        Out.WriteLine(ToJson(value));
    }

    /// <summary>The writer options that match <see cref="JsonOptions"/>: indented, relaxed escaping.</summary>
    private static JsonWriterOptions WriterOptions => new()
    {
        Indented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>
    /// Streams one JSON document that <paramref name="write"/> produces, then a newline: to standard output through a
    /// buffer (flushed whenever <see cref="FlushIfFull"/> finds it full), else to <see cref="Out"/>. Nothing is written
    /// when <paramref name="write"/> throws before its first flush.
    /// </summary>
    public void WriteJson(Action<Utf8JsonWriter> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        if (ReferenceEquals(Out, System.Console.Out))
        {
            Out.Flush();
            using var stdout = System.Console.OpenStandardOutput();
            // Not disposed on failure: Dispose would flush a half-written document.
            var writer = new Utf8JsonWriter(stdout, WriterOptions);
            write(writer);
            writer.Flush();
            stdout.WriteByte((byte)'\n');
            return;
        }
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        var bufferWriter = new Utf8JsonWriter(buffer, WriterOptions);
        write(bufferWriter);
        bufferWriter.Flush();
        Out.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan));
    }

    /// <summary>Hands what a streaming JSON writer holds to its output once it has a large block of it.</summary>
    public static void FlushIfFull(Utf8JsonWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        if (writer.BytesPending >= 1 << 16)
        {
            writer.Flush();
        }
    }

    /// <summary>Writes "kextrust: message" to standard error and returns <see cref="ExitCodes.InputError"/>.</summary>
    public int InputError(string message)
    {
        Error.WriteLine($"kextrust: {message}");
        return ExitCodes.InputError;
    }
}

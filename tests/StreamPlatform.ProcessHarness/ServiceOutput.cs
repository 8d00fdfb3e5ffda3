using System.Collections.Concurrent;
using System.Text;

namespace StreamPlatform.AppHost.Orchestration;

public enum OutputKind
{
    /// <summary>A line the service wrote to stdout.</summary>
    StandardOutput,
    /// <summary>A line the service wrote to stderr.</summary>
    StandardError,
    /// <summary>A progress or status message of the orchestrator about that service.</summary>
    Orchestrator,
}

/// <summary>One line of output, tagged with the service it came from ("apphost" for general progress).</summary>
public readonly record struct OutputLine(DateTimeOffset Timestamp, string Source, OutputKind Kind, string Text)
{
    public override string ToString() => $"{Timestamp:HH:mm:ss.fff} [{Source}] {Text}";
}

/// <summary>Where service output and orchestrator progress go. Must be thread-safe.</summary>
public interface IOutputSink
{
    void Write(OutputLine line);
}

/// <summary>Writes "[broker-1] ..." lines to the console, each service prefix in its own color.</summary>
public sealed class ConsoleOutputSink : IOutputSink
{
    private static readonly ConsoleColor[] Palette =
    [
        ConsoleColor.Cyan, ConsoleColor.Green, ConsoleColor.Yellow, ConsoleColor.Magenta,
        ConsoleColor.Blue, ConsoleColor.DarkCyan, ConsoleColor.DarkGreen, ConsoleColor.DarkYellow,
    ];

    private readonly object _gate = new();
    private readonly ConcurrentDictionary<string, ConsoleColor> _colors = new(StringComparer.Ordinal);
    private readonly bool _useColor = !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("NO_COLOR") is null;

    public void Write(OutputLine line)
    {
        var color = line.Kind == OutputKind.Orchestrator
            ? ConsoleColor.White
            : _colors.GetOrAdd(line.Source, _ => Palette[_colors.Count % Palette.Length]);
        lock (_gate)
        {
            if (_useColor)
                Console.ForegroundColor = color;
            Console.Out.Write('[');
            Console.Out.Write(line.Source);
            Console.Out.Write("] ");
            if (_useColor)
                Console.ResetColor();
            if (_useColor && line.Kind == OutputKind.StandardError)
                Console.ForegroundColor = ConsoleColor.Red;
            Console.Out.WriteLine(line.Text);
            if (_useColor)
                Console.ResetColor();
        }
    }
}

/// <summary>
/// Keeps output in memory (tests print it when they fail). Bounded: past
/// <see cref="LineCountMax"/> lines the oldest are dropped and counted.
/// </summary>
public sealed class MemoryOutputSink : IOutputSink
{
    private readonly object _gate = new();
    private readonly Queue<OutputLine> _lines = new();

    public MemoryOutputSink(int lineCountMax = 50_000)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(lineCountMax, 1);
        LineCountMax = lineCountMax;
    }

    public int LineCountMax { get; }

    public long DroppedLineCount { get; private set; }

    public void Write(OutputLine line)
    {
        lock (_gate)
        {
            if (_lines.Count == LineCountMax)
            {
                _lines.Dequeue();
                DroppedLineCount++;
            }
            _lines.Enqueue(line);
        }
    }

    /// <summary>Captured lines, optionally of one source only.</summary>
    public IReadOnlyList<OutputLine> Lines(string? source = null)
    {
        lock (_gate)
            return _lines.Where(l => source is null || l.Source == source).ToArray();
    }

    /// <summary>All captured lines as text, oldest first.</summary>
    public string Dump(string? source = null)
    {
        var sb = new StringBuilder();
        lock (_gate)
        {
            if (DroppedLineCount > 0)
                sb.Append("... ").Append(DroppedLineCount).AppendLine(" older lines dropped");
        }
        foreach (var line in Lines(source))
            sb.AppendLine(line.ToString());
        return sb.ToString();
    }

    public void Clear()
    {
        lock (_gate)
        {
            _lines.Clear();
            DroppedLineCount = 0;
        }
    }
}

/// <summary>Sends every line to several sinks (e.g. console and memory).</summary>
public sealed class CompositeOutputSink(params IOutputSink[] sinks) : IOutputSink
{
    public void Write(OutputLine line)
    {
        foreach (var sink in sinks)
            sink.Write(line);
    }
}

/// <summary>Lines of a sink forwarded to a callback (e.g. xunit's ITestOutputHelper).</summary>
public sealed class DelegateOutputSink(Action<OutputLine> write) : IOutputSink
{
    public void Write(OutputLine line) => write(line);
}

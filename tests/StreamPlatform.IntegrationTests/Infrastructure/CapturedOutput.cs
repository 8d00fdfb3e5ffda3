using StreamPlatform.AppHost.Orchestration;
using Xunit.Abstractions;

namespace StreamPlatform.IntegrationTests.Infrastructure;

/// <summary>
/// Everything a test cluster's services printed, kept in memory (bounded by
/// <see cref="MemoryOutputSink.LineCountMax"/>) and, while a test is attached, copied to that
/// test's output. One test at a time is attached: the cluster classes run one after another.
/// </summary>
public sealed class CapturedOutput : IOutputSink
{
    private readonly object _attachGate = new();
    private ITestOutputHelper? _attached;

    public MemoryOutputSink Memory { get; } = new();

    public void Write(OutputLine line)
    {
        Memory.Write(line);
        lock (_attachGate)
        {
            try
            {
                _attached?.WriteLine(line.ToString());
            }
            catch (InvalidOperationException)
            {
                // The test that attached has finished; xunit no longer accepts its output.
                _attached = null;
            }
        }
    }

    /// <summary>Copies output to <paramref name="output"/> until the returned handle is disposed (end of the test).</summary>
    public IDisposable Attach(ITestOutputHelper output)
    {
        lock (_attachGate)
            _attached = output;
        return new Attachment(this, output);
    }

    public void Detach()
    {
        lock (_attachGate)
            _attached = null;
    }

    /// <summary>Writes everything captured so far (e.g. when a test fails).</summary>
    public void WriteTo(ITestOutputHelper output)
    {
        foreach (var line in Memory.Lines())
            output.WriteLine(line.ToString());
    }

    private sealed class Attachment(CapturedOutput owner, ITestOutputHelper output) : IDisposable
    {
        public void Dispose()
        {
            lock (owner._attachGate)
            {
                if (ReferenceEquals(owner._attached, output))
                    owner._attached = null;
            }
        }
    }
}

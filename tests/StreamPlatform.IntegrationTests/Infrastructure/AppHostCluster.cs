using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using StreamPlatform.AppHost.Orchestration;
using Xunit.Abstractions;

namespace StreamPlatform.IntegrationTests.Infrastructure;

/// <summary>
/// A whole cluster started the way a user starts it: the AppHost's own entry point, through
/// Aspire.Hosting.Testing (DistributedApplicationTestingBuilder), so DCP runs the same project
/// resources `dotnet run --project AppHost` runs. Parallel-safe: free ports (--dynamic-ports) and
/// a temp data directory (--data-dir), no dashboard. Every resource's console log is captured
/// (<see cref="Output"/>, <see cref="AttachOutput"/>). Dispose stops every service and deletes the data.
/// Tests that must kill -9 or freeze one process use <see cref="TestCluster"/> (the process harness) instead.
/// </summary>
public sealed class AppHostCluster : IAsyncDisposable
{
    /// <summary>How long the whole cluster may take to become healthy (DCP start included).</summary>
    public static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(120);

    private readonly IDistributedApplicationTestingBuilder _builder;
    private readonly DistributedApplication _app;
    private readonly CapturedOutput _output = new();
    private readonly CancellationTokenSource _captureStop = new();
    private readonly List<Task> _captures = [];

    private AppHostCluster(IDistributedApplicationTestingBuilder builder, DistributedApplication app, string dataDir)
    {
        _builder = builder;
        _app = app;
        DataDir = dataDir;
        ResourceNames = app.Services.GetRequiredService<DistributedApplicationModel>().Resources
            .OfType<ProjectResource>().Select(r => r.Name).ToList();
    }

    public string DataDir { get; }

    /// <summary>The services, in the AppHost's order: controller-1, broker-1.., gateway-1...</summary>
    public IReadOnlyList<string> ResourceNames { get; }

    /// <summary>Kafka bootstrap servers: every gateway's kafka endpoint, e.g. "127.0.0.1:41234".</summary>
    public string BootstrapServers => string.Join(",", ResourceNames.Where(n => n.StartsWith("gateway-", StringComparison.Ordinal))
        .Select(n => Endpoint(n, EndpointNames.Kafka)).Select(u => $"{u.Host}:{u.Port}"));

    /// <summary>The controller's gRPC endpoint (internal API).</summary>
    public Uri ControllerGrpc => Endpoint(ClusterTopology.ControllerName, EndpointNames.Grpc);

    public MemoryOutputSink Output => _output.Memory;

    public Uri Endpoint(string resource, string endpoint) => _app.GetEndpoint(resource, endpoint);

    /// <summary>Starts the default cluster (1 controller, 3 brokers, 1 gateway) and waits until every service is healthy.</summary>
    public static async Task<AppHostCluster> StartAsync(CancellationToken cancellationToken = default)
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "streamplatform-tests", Guid.NewGuid().ToString("N"));
        var args = new List<string> { "--dynamic-ports", "--no-dashboard", "--data-dir", dataDir };
        foreach (var (name, value) in TestClusterSettings.BrokerConfigs)
            args.AddRange(["--broker-config", $"{name}={value}"]);

        var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.AppHost>([.. args], cancellationToken);
        // Every /health probe before a service listens logs an error with a stack trace; startup
        // failures are reported by ClusterReadiness with the service's own output instead.
        builder.Services.AddLogging(logging => logging.AddFilter("Microsoft.Extensions.Diagnostics.HealthChecks", LogLevel.Critical));
        var app = await builder.BuildAsync(cancellationToken);
        var cluster = new AppHostCluster(builder, app, dataDir);
        try
        {
            cluster.StartCapture();
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(StartTimeout);
            await app.StartAsync(timeout.Token);
            var notifications = app.Services.GetRequiredService<ResourceNotificationService>();
            foreach (var name in cluster.ResourceNames)
            {
                try
                {
                    await notifications.WaitForResourceHealthyAsync(name, WaitBehavior.StopOnResourceUnavailable, timeout.Token);
                }
                catch (Exception e) when (e is OperationCanceledException or DistributedApplicationException)
                {
                    throw new InvalidOperationException(
                        $"{name} did not become healthy within {StartTimeout.TotalSeconds:0} s ({e.Message}). Its output:{Environment.NewLine}" +
                        cluster.Output.Dump(name), e);
                }
            }
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
        return cluster;
    }

    /// <summary>Copies output to <paramref name="output"/> until the returned handle is disposed (end of the test).</summary>
    public IDisposable AttachOutput(ITestOutputHelper output) => _output.Attach(output);

    /// <summary>Writes everything captured so far (e.g. when a test fails).</summary>
    public void WriteCapturedOutput(ITestOutputHelper output) => _output.WriteTo(output);

    private void StartCapture()
    {
        var logs = _app.Services.GetRequiredService<ResourceLoggerService>();
        foreach (var name in ResourceNames)
        {
            _captures.Add(Task.Run(async () =>
            {
                try
                {
                    await foreach (var batch in logs.WatchAsync(name).WithCancellation(_captureStop.Token))
                    {
                        foreach (var line in batch)
                        {
                            _output.Write(new OutputLine(DateTimeOffset.Now, name,
                                line.IsErrorMessage ? OutputKind.StandardError : OutputKind.StandardOutput, line.Content));
                        }
                    }
                }
                catch (OperationCanceledException)
                {
                }
            }));
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            using var stopTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await _app.StopAsync(stopTimeout.Token);
        }
        catch (OperationCanceledException)
        {
            // DisposeAsync below tears DCP down regardless.
        }
        await _app.DisposeAsync();
        await _builder.DisposeAsync();
        await _captureStop.CancelAsync();
        await Task.WhenAll(_captures);
        _captureStop.Dispose();
        _output.Detach();
        try
        {
            Directory.Delete(DataDir, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
        catch (IOException)
        {
            // Best effort: a temp folder left behind is harmless.
        }
    }
}

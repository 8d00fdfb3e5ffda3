using Grpc.Core;
using StreamPlatform.Protos.Grpc.Broker;
using StreamPlatform.Protos.Grpc.Clients;

namespace StreamPlatform.Gateway.Routing;

/// <summary>
/// The gateway's one <c>BrokerService.WatchAppends</c> stream to a broker, feeding
/// <see cref="AppendSignals"/>: connected once the broker's first (empty) message arrives, every
/// notice then passed on. A stream that ends or fails is reported disconnected at once (fetches
/// then long-poll that broker) and reopened after a backoff (50 ms doubling to 2 s while
/// attempts fail without ever connecting). Owned by <see cref="BrokerClientPool"/>, disposed
/// with the broker's channel; no resilience handler, the loop is the retry.
/// </summary>
public sealed class BrokerAppendWatch : IDisposable
{
    internal static readonly TimeSpan BackoffMin = TimeSpan.FromMilliseconds(50);
    internal static readonly TimeSpan BackoffMax = TimeSpan.FromSeconds(2);

    private readonly BrokerService.BrokerServiceClient _client;
    private readonly string _endpoint;
    private readonly AppendSignals _signals;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public BrokerAppendWatch(BrokerService.BrokerServiceClient client, string endpoint, AppendSignals signals, TimeProvider time, ILogger logger)
    {
        _client = client;
        _endpoint = endpoint;
        _signals = signals;
        _time = time;
        _logger = logger;
        _loop = Task.Run(() => RunAsync(_stop.Token));
    }

    /// <summary>Completes when the loop has stopped (after <see cref="Dispose"/>).</summary>
    internal Task Completion => _loop;

    private async Task RunAsync(CancellationToken stop)
    {
        await ReconnectingStream.RunAsync(
            async (progress, ct) =>
            {
                try
                {
                    using var call = _client.WatchAppends(new WatchAppendsRequest(), cancellationToken: ct);
                    var connected = false;
                    await foreach (var message in call.ResponseStream.ReadAllAsync(ct).ConfigureAwait(false))
                    {
                        if (!connected)
                        {
                            // The broker registered the watch before this message: from here on no
                            // advance goes unreported.
                            connected = true;
                            progress();
                            _signals.Connected(_endpoint, this);
                        }
                        foreach (var n in message.Notices) _signals.Notice(n.Topic, n.Partition, n.HighWatermark);
                    }
                }
                finally
                {
                    _signals.Disconnected(_endpoint, this);
                }
            },
            (ex, delay) =>
            {
                if (ex is null)
                    _logger.LogInformation("Append watch on broker {Endpoint} ended; reconnecting", _endpoint);
                else
                    _logger.LogInformation("Append watch on broker {Endpoint} broke ({Reason}); reconnecting in {DelayMs} ms",
                        _endpoint, ReconnectingStream.Reason(ex), (int)delay.TotalMilliseconds);
            },
            _time, BackoffMin, BackoffMax, stop).ConfigureAwait(false);
        _signals.Disconnected(_endpoint, this);
    }

    public void Dispose()
    {
        // Once: the pool disposes each entry once, but a second call must not throw.
        try
        {
            _stop.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
        _signals.Disconnected(_endpoint, this);
    }
}

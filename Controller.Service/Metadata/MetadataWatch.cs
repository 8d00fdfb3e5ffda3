using StreamPlatform.Protos.Grpc;

namespace StreamPlatform.Controller.Metadata;

/// <summary>The WatchMetadata loop, separate from gRPC so tests drive it directly.</summary>
public static class MetadataWatch
{
    /// <summary>
    /// Sends the current snapshot at once when the watcher knows nothing (known epoch 0) or knows
    /// a different epoch (below: it is behind; above: it saw another history, e.g. a wiped
    /// controller, and must not wait forever), then the newest snapshot after each change.
    /// One write at a time: while a write is in flight newer snapshots replace each other and only
    /// the latest is sent next. Returns normally when <paramref name="cancellationToken"/> fires.
    /// </summary>
    public static async Task RunAsync(MetadataPublisher publisher, long knownEpoch,
        Func<MetadataSnapshot, CancellationToken, Task> send, CancellationToken cancellationToken)
    {
        try
        {
            var last = knownEpoch;
            var current = publisher.Current;
            if (current is not null && (knownEpoch == 0 || current.MetadataEpoch != knownEpoch))
            {
                await send(current, cancellationToken).ConfigureAwait(false);
                last = current.MetadataEpoch;
            }
            while (!cancellationToken.IsCancellationRequested)
            {
                var next = await publisher.WaitForNewerAsync(last, cancellationToken).ConfigureAwait(false);
                await send(next, cancellationToken).ConfigureAwait(false);
                last = next.MetadataEpoch;
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Clean end of the stream.
        }
    }
}

using Grpc.Core;
using Microsoft.Extensions.Options;
using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using Ctl = StreamPlatform.Protos.Grpc.Controller;

namespace StreamPlatform.Gateway.Apis;

/// <summary>The answer for one resource of AlterConfigs / IncrementalAlterConfigs.</summary>
public readonly record struct ConfigAlterationResult(short ErrorCode, string? ErrorMessage);

/// <summary>
/// Shared by AlterConfigsApi and IncrementalAlterConfigsApi: forwards to the controller's
/// AlterConfigs, then waits (bounded) until this gateway's metadata holds the change, so a
/// DescribeConfigs right after sees it. Controller unreachable: NOT_CONTROLLER (41) for every
/// resource, REQUEST_TIMED_OUT (7) when the deadline passed.
/// </summary>
public sealed class ConfigAlterations(ControllerConnection controller, TopicAdmin admin, IOptions<GatewayOptions> options, TimeProvider time, ILogger<ConfigAlterations> logger)
{
    /// <summary>Longest wait for the change to reach this gateway's metadata.</summary>
    public static readonly TimeSpan MetadataWaitMax = TimeSpan.FromSeconds(5);

    public async Task<ConfigAlterationResult[]> AlterAsync(Ctl.AlterConfigsRequest request, CancellationToken cancellationToken)
    {
        var results = new ConfigAlterationResult[request.Resources.Count];
        if (results.Length == 0) return results;
        try
        {
            var answer = await controller.Client.AlterConfigsAsync(request,
                deadline: time.GetUtcNow().UtcDateTime.AddMilliseconds(options.Value.ControllerCallTimeoutMs), cancellationToken: cancellationToken).ConfigureAwait(false);
            for (var i = 0; i < results.Length; i++)
            {
                var r = i < answer.Results.Count ? answer.Results[i] : null;
                results[i] = r is null
                    ? new ConfigAlterationResult(ErrorCodes.UnknownServerError, "No answer from the controller for this resource.")
                    : new ConfigAlterationResult((short)r.ErrorCode, string.IsNullOrEmpty(r.ErrorMessage) ? null : r.ErrorMessage);
            }
            if (!request.ValidateOnly)
                await admin.WaitForAsync(m => m.Epoch >= answer.MetadataEpoch, MetadataWaitMax, cancellationToken).ConfigureAwait(false);
        }
        catch (RpcException ex)
        {
            ControllerConnection.LogFailure(logger, "AlterConfigs", ex, cancellationToken);
            var code = ControllerConnection.ErrorFor(ex);
            Array.Fill(results, new ConfigAlterationResult((short)code, ex.Status.Detail));
        }
        return results;
    }
}

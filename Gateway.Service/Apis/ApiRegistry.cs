using System.Collections.Frozen;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Apis;

/// <summary>
/// The APIs this gateway serves, built from the handlers that exist. ApiVersions is answered from
/// here, so the gateway can never advertise an API (or a version) it does not handle.
/// </summary>
public sealed class ApiRegistry
{
    private readonly FrozenDictionary<short, IApiHandler> _handlers;

    public ApiRegistry(IEnumerable<IApiHandler> handlers)
    {
        var all = handlers.Where(h => h.Key != ApiKey.ApiVersions).ToList();
        all.Add(new ApiVersionsApi(this));
        foreach (var h in all)
        {
            if (h.MinVersion < 0 || h.MaxVersion < h.MinVersion)
                throw new InvalidOperationException($"{h.GetType().Name} declares an empty version range {h.MinVersion}-{h.MaxVersion}.");
        }
        _handlers = all.ToFrozenDictionary(h => (short)h.Key);
        Supported = all.OrderBy(h => (short)h.Key)
            .Select(h => new ApiVersionsResponse.ApiVersion { ApiKey = (short)h.Key, MinVersion = h.MinVersion, MaxVersion = h.MaxVersion })
            .ToArray();
    }

    /// <summary>Every served API with its version range, ordered by api key.</summary>
    public IReadOnlyList<ApiVersionsResponse.ApiVersion> Supported { get; }

    public IApiHandler? Find(short apiKey) => _handlers.GetValueOrDefault(apiKey);

    public bool IsSupported(short apiKey, short apiVersion)
        => _handlers.TryGetValue(apiKey, out var h) && apiVersion >= h.MinVersion && apiVersion <= h.MaxVersion;

    public ApiVersionsResponse BuildApiVersionsResponse(ErrorCode error)
    {
        var response = new ApiVersionsResponse { ErrorCode = (short)error };
        foreach (var v in Supported)
            response.ApiKeys.Add(new ApiVersionsResponse.ApiVersion { ApiKey = v.ApiKey, MinVersion = v.MinVersion, MaxVersion = v.MaxVersion });
        return response;
    }
}

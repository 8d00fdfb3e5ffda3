using System.Collections.Frozen;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Apis;

/// <summary>
/// The APIs this gateway serves, built from the handlers that exist. ApiVersions is answered from
/// here, so the gateway never advertises an API it does not handle, nor a version above what
/// its handler serves. One deliberate exception, copied from Kafka 4.x (KAFKA-18659): Produce is
/// advertised from v0 although only v3+ is served, because librdkafka derives features (e.g.
/// compressed produce) from the advertised Produce range; a v0-v2 produce still closes the
/// connection. Gateway.Service/README.md lists every range next to Kafka 4.x's.
/// </summary>
public sealed class ApiRegistry
{
    private readonly FrozenDictionary<short, IApiHandler> _handlers;

    /// <summary>APIs advertised from a lower version than their handler serves (Kafka 4.x does the same).</summary>
    private static readonly FrozenDictionary<ApiKey, short> AdvertisedMinVersions = new Dictionary<ApiKey, short>
    {
        [ApiKey.Produce] = 0,
    }.ToFrozenDictionary();

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
            .Select(h => new ApiVersionsResponse.ApiVersion
            {
                ApiKey = (short)h.Key,
                MinVersion = AdvertisedMinVersions.TryGetValue(h.Key, out var advertised) ? Math.Min(advertised, h.MinVersion) : h.MinVersion,
                MaxVersion = h.MaxVersion,
            })
            .ToArray();
    }

    /// <summary>Every served API with its advertised version range, ordered by api key.</summary>
    public IReadOnlyList<ApiVersionsResponse.ApiVersion> Supported { get; }

    public IApiHandler? Find(short apiKey) => _handlers.GetValueOrDefault(apiKey);

    /// <summary>Whether a request of this version is served (may be narrower than <see cref="Supported"/>: see the class summary).</summary>
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

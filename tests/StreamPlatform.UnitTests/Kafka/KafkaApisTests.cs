using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.UnitTests.Kafka;

public sealed class KafkaApisTests
{
    [Theory]
    [InlineData(ApiKey.Produce, 8, 1)]
    [InlineData(ApiKey.Produce, 9, 2)]
    [InlineData(ApiKey.Metadata, 0, 1)]
    [InlineData(ApiKey.Metadata, 9, 2)]
    [InlineData(ApiKey.ApiVersions, 2, 1)]
    [InlineData(ApiKey.ApiVersions, 3, 2)]
    [InlineData(ApiKey.ControlledShutdown, 0, 0)]
    [InlineData(ApiKey.ControlledShutdown, 1, 1)]
    [InlineData(ApiKey.ControlledShutdown, 3, 2)]
    public void RequestHeaderVersionFollowsFlexibleVersions(ApiKey apiKey, short apiVersion, short expected)
    {
        Assert.Equal(expected, KafkaApis.RequestHeaderVersion(apiKey, apiVersion));
        Assert.Equal(expected, KafkaApis.RequestHeaderVersion((short)apiKey, apiVersion));
    }

    [Theory]
    [InlineData(ApiKey.Produce, 8, 0)]
    [InlineData(ApiKey.Produce, 9, 1)]
    [InlineData(ApiKey.Fetch, 12, 1)]
    [InlineData(ApiKey.ApiVersions, 3, 0)]
    [InlineData(ApiKey.ApiVersions, 4, 0)]
    public void ResponseHeaderVersionFollowsFlexibleVersionsExceptApiVersions(ApiKey apiKey, short apiVersion, short expected)
    {
        Assert.Equal(expected, KafkaApis.ResponseHeaderVersion(apiKey, apiVersion));
    }

    [Fact]
    public void VersionRangesComeFromTheSchema()
    {
        Assert.Equal(ProduceRequest.LowestSupportedVersion, KafkaApis.LowestVersion(ApiKey.Produce));
        Assert.Equal(ProduceRequest.HighestSupportedVersion, KafkaApis.HighestVersion(ApiKey.Produce));
        Assert.Equal(9, KafkaApis.FirstFlexibleRequestVersion(ApiKey.Produce));
        Assert.Equal(ProduceRequest.HighestSupportedVersion, KafkaApis.HighestStableVersion(ApiKey.Produce));
        Assert.Equal(4, KafkaApis.HighestStableVersion(ApiKey.EndTxn)); // v5 is marked unstable
        Assert.Equal(-1, KafkaApis.HighestStableVersion(ApiKey.ShareFetch)); // only v0, unstable
        Assert.True(KafkaApis.IsSupported(ApiKey.Fetch, 4));
        Assert.False(KafkaApis.IsSupported(ApiKey.Fetch, 18));
        Assert.False(KafkaApis.IsSupported((ApiKey)999, 0));
        Assert.Equal(-1, KafkaApis.HighestVersion((ApiKey)999));
        Assert.Equal(KafkaMessages.All.Count(m => m.Kind == "request"), KafkaApis.All.Count);
    }

    [Fact]
    public void EnumsUseKafkaNumbers()
    {
        Assert.Equal(0, (short)ApiKey.Produce);
        Assert.Equal(18, (short)ApiKey.ApiVersions);
        Assert.Equal(3, (short)ErrorCode.UnknownTopicOrPartition);
        Assert.Equal(-1, (short)ErrorCode.UnknownServerError);
        Assert.Equal(0, (short)ErrorCode.None);
        Assert.Equal(35, (short)ErrorCode.UnsupportedVersion);
    }

    [Fact]
    public void FactoriesCreateTheMatchingTypes()
    {
        foreach (var apiKey in KafkaApis.All)
        {
            var request = KafkaMessages.CreateRequest(apiKey);
            var response = KafkaMessages.CreateResponse(apiKey);
            Assert.Equal((short)apiKey, request.ApiKeyValue);
            Assert.Equal((short)apiKey, response.ApiKeyValue);
            Assert.EndsWith("Request", request.GetType().Name);
            Assert.EndsWith("Response", response.GetType().Name);
        }

        Assert.Throws<KafkaProtocolException>(() => KafkaMessages.CreateRequest((ApiKey)999));
        var produce = KafkaMessages.All.Single(m => m.Type == typeof(ProduceRequest));
        Assert.Equal(ApiKey.Produce, produce.ApiKey);
        Assert.Null(KafkaMessages.All.Single(m => m.Type == typeof(RequestHeader)).ApiKey);
    }
}

using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using StreamPlatform.Gateway.Apis;
using StreamPlatform.Gateway.Routing;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Kafka.Messages;
using StreamPlatform.UnitTests.Storage;

namespace StreamPlatform.UnitTests.Gateway;

/// <summary>
/// Fetch's aborted_transactions and last_stable_offset as Kafka answers them: the broker's list
/// for read_committed (an empty list when none aborted), null for read_uncommitted and for
/// errored partitions, at every served version (v4-v17); the real gateway over real brokers.
/// </summary>
public sealed class FetchAbortedTransactionsTests
{
    private static BrokerFetchResult Result(int errorCode, List<BrokerAbortedTransaction>? aborted)
        => new("t", 0, errorCode, 10, 8, 0, ReadOnlyMemory<byte>.Empty, aborted);

    [Fact]
    public void Read_committed_gets_the_brokers_list_read_uncommitted_and_errors_get_null()
    {
        List<BrokerAbortedTransaction> aborted = [new(7, 3), new(9, 5)];
        var list = FetchApi.AbortedTransactions(Result(0, aborted), readCommitted: true);
        Assert.Equal([(7L, 3L), (9L, 5L)], list!.Select(t => (t.ProducerId, t.FirstOffset)));
        Assert.Empty(FetchApi.AbortedTransactions(Result(0, null), readCommitted: true)!);
        Assert.Null(FetchApi.AbortedTransactions(Result(0, aborted), readCommitted: false));
        Assert.Null(FetchApi.AbortedTransactions(Result(0, null), readCommitted: false));
        Assert.Null(FetchApi.AbortedTransactions(Result(6, aborted), readCommitted: true));
        Assert.Null(ErrorResponses.FetchError(0, 3).AbortedTransactions);
    }

    [Fact]
    public async Task Every_served_version_answers_null_for_read_uncommitted_and_a_list_for_read_committed()
    {
        await using var cluster = await InProcessCluster.StartAsync("sp-gw-aborted-", new Dictionary<string, string?> { ["Controller:BrokerConfigs:num.partitions"] = "1" });
        await using var client = await cluster.ConnectAsync();
        var correlation = 0;
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var request = new ProduceRequest { Acks = -1, TimeoutMs = 5000 };
            request.TopicData.Add(new ProduceRequest.TopicProduceData
            {
                Name = "committed",
                PartitionData = { new ProduceRequest.PartitionProduceData { Index = 0, Records = TestBatches.Build(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), "x") } },
            });
            await client.SendAsync(ApiKey.Produce, 9, ++correlation, request);
            var (_, produced) = await client.ReadAsync<ProduceResponse>(ApiKey.Produce, 9);
            if (produced.Responses[0].PartitionResponses[0].ErrorCode == 0) break;
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(15), "produce kept failing");
            await Task.Delay(100);
        }
        var topicId = cluster.Gateway.Services.GetRequiredService<MetadataWatcher>().Current.TopicsByName["committed"].TopicId;
        for (short version = 4; version <= 17; version++)
        {
            foreach (var isolation in new sbyte[] { 0, 1 })
            {
                var fetch = new FetchRequest
                {
                    ReplicaId = -1, MaxWaitMs = 0, MinBytes = 0, MaxBytes = 1 << 20, IsolationLevel = isolation,
                    Topics =
                    [
                        new FetchRequest.FetchTopic
                        {
                            Topic = "committed", TopicId = TopicIds.ToGuid(topicId),
                            Partitions = [new FetchRequest.FetchPartition { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20, CurrentLeaderEpoch = -1, LogStartOffset = -1 }],
                        },
                    ],
                };
                await client.SendAsync(ApiKey.Fetch, version, ++correlation, fetch);
                var (_, response) = await client.ReadAsync<FetchResponse>(ApiKey.Fetch, version);
                var p = response.Responses.Single().Partitions.Single();
                Assert.Equal(0, p.ErrorCode);
                Assert.True(p.Records?.Length > 0, $"v{version}: no records");
                Assert.Equal(1, p.HighWatermark);
                Assert.Equal(1, p.LastStableOffset); // no open transaction: the high watermark
                if (isolation == 0) Assert.Null(p.AbortedTransactions);
                else Assert.Empty(Assert.IsType<List<FetchResponse.AbortedTransaction>>(p.AbortedTransactions));
            }
        }
    }
}

using System.Buffers.Binary;
using StreamPlatform.Gateway.Apis;
using StreamPlatform.Gateway.Routing;
using StreamPlatform.Gateway.Security;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using StreamPlatform.Protos.Records;

namespace StreamPlatform.UnitTests.Gateway;

/// <summary>
/// The decision to resend a partition's batches to its new leader (<see cref="IdempotentProduceRetry"/>):
/// only NOT_LEADER_OR_FOLLOWER, only when every batch is a whole magic-2 batch with a producer id
/// and a sequence, never for acks=0; and what Produce passes to the broker and refuses itself.
/// </summary>
public sealed class IdempotentProduceRetryTests
{
    internal static byte[] Batch(long producerId = 1000, short epoch = 0, int sequence = 0, bool transactional = false, params string[] values)
    {
        using var builder = new RecordBatchBuilder { ProducerId = producerId, ProducerEpoch = epoch, BaseSequence = sequence, IsTransactional = transactional };
        foreach (var v in values.Length == 0 ? ["v"] : values)
            builder.Append(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), null, System.Text.Encoding.UTF8.GetBytes(v));
        return builder.ToArray();
    }

    [Fact]
    public void Whole_idempotent_batches_may_be_resent()
    {
        Assert.True(IdempotentProduceRetry.AllBatchesIdempotent(Batch()));
        Assert.True(IdempotentProduceRetry.AllBatchesIdempotent(Batch(transactional: true, sequence: 7)));
        Assert.True(IdempotentProduceRetry.AllBatchesIdempotent([.. Batch(sequence: 0), .. Batch(sequence: 1)]));
    }

    [Fact]
    public void A_single_batch_without_producer_id_or_sequence_makes_the_partition_not_resendable()
    {
        Assert.False(IdempotentProduceRetry.AllBatchesIdempotent(Batch(producerId: -1, epoch: -1, sequence: -1)));
        Assert.False(IdempotentProduceRetry.AllBatchesIdempotent(Batch(sequence: -1)));
        Assert.False(IdempotentProduceRetry.AllBatchesIdempotent(Batch(producerId: -1)));
        // One idempotent batch and one that is not: not resent (the second could be written twice).
        Assert.False(IdempotentProduceRetry.AllBatchesIdempotent([.. Batch(), .. Batch(producerId: -1, epoch: -1, sequence: -1)]));
        Assert.False(IdempotentProduceRetry.AllBatchesIdempotent([]));
    }

    [Fact]
    public void Malformed_records_are_never_resent()
    {
        var good = Batch();
        Assert.False(IdempotentProduceRetry.AllBatchesIdempotent(good.AsSpan(0, good.Length - 1))); // truncated batch
        Assert.False(IdempotentProduceRetry.AllBatchesIdempotent(good.AsSpan(0, RecordBatchHeader.Size - 1))); // truncated header
        Assert.False(IdempotentProduceRetry.AllBatchesIdempotent([.. good, 0, 0, 0])); // trailing garbage
        var legacy = (byte[])good.Clone();
        legacy[RecordBatchHeader.MagicOffset] = 1;
        Assert.False(IdempotentProduceRetry.AllBatchesIdempotent(legacy));
        foreach (var length in new[] { -1, 0, RecordBatchHeader.Size - RecordBatchHeader.LogOverhead - 1, int.MaxValue })
        {
            var bad = (byte[])good.Clone();
            BinaryPrimitives.WriteInt32BigEndian(bad.AsSpan(RecordBatchHeader.BatchLengthOffset), length);
            Assert.False(IdempotentProduceRetry.AllBatchesIdempotent(bad));
        }
    }

    [Theory]
    [InlineData(ErrorCode.NotLeaderOrFollower, true, -1, true)]
    [InlineData(ErrorCode.NotLeaderOrFollower, true, 1, true)]
    [InlineData(ErrorCode.NotLeaderOrFollower, true, 0, false)]
    [InlineData(ErrorCode.NotLeaderOrFollower, false, -1, false)]
    [InlineData(ErrorCode.RequestTimedOut, true, -1, false)]
    [InlineData(ErrorCode.None, true, -1, false)]
    [InlineData(ErrorCode.FencedLeaderEpoch, true, -1, false)]
    [InlineData(ErrorCode.OutOfOrderSequenceNumber, true, -1, false)]
    [InlineData(ErrorCode.NotEnoughReplicas, true, -1, false)]
    public void Only_a_moved_leader_of_idempotent_batches_is_resent(ErrorCode error, bool idempotent, short acks, bool expected)
    {
        var records = idempotent ? Batch() : Batch(producerId: -1, epoch: -1, sequence: -1);
        Assert.Equal(expected, IdempotentProduceRetry.ShouldResend((short)error, records, acks));
    }

    [Fact]
    public void The_broker_request_carries_the_client_version_and_transactional_id()
    {
        var context = new RequestContext(10, 1, "c", "conn");
        var forwarded = ProduceApi.NewBrokerRequest(new ProduceRequest { Acks = -1, TimeoutMs = 1500, TransactionalId = "txn-1" }, context);
        Assert.Equal((10, "txn-1", -1, 1500), (forwarded.ApiVersion, forwarded.TransactionalId, forwarded.Acks, forwarded.TimeoutMs));
        Assert.Equal("", ProduceApi.NewBrokerRequest(new ProduceRequest { Acks = 1, TransactionalId = null }, context).TransactionalId);
    }

    private sealed class DenyTransactionalIds : IAuthorizer
    {
        public bool Authorize(RequestContext context, AclOperation operation, AclResourceType resourceType, string resourceName)
            => resourceType != AclResourceType.TransactionalId;
    }

    private static ProduceRequest Request(string? transactionalId, byte[] records) => new()
    {
        Acks = -1, TimeoutMs = 1000, TransactionalId = transactionalId,
        TopicData = [new() { Name = "orders", PartitionData = [new() { Index = 0, Records = records }] }],
    };

    [Fact]
    public async Task Transactional_records_need_a_transactional_id_the_client_may_write()
    {
        await using var kit = new GatewayTestKit { Authorizer = new DenyTransactionalIds() };
        kit.Watcher.Apply(GatewayTestKit.Snapshot());
        await using var client = new PipeClient(kit.Registry(), kit.Options, kit.Metrics);
        // No transactional id: refused, as Kafka.
        await client.SendAsync(ApiKey.Produce, 9, 1, Request(null, Batch(transactional: true)));
        var (_, refused) = await client.ReadAsync<ProduceResponse>(ApiKey.Produce, 9);
        Assert.Equal((short)ErrorCode.TransactionalIdAuthorizationFailed, refused.Responses.Single().PartitionResponses.Single().ErrorCode);
        // A transactional id the authorizer refuses WRITE on: refused too.
        await client.SendAsync(ApiKey.Produce, 9, 2, Request("txn-1", Batch(transactional: true)));
        (_, refused) = await client.ReadAsync<ProduceResponse>(ApiKey.Produce, 9);
        Assert.Equal((short)ErrorCode.TransactionalIdAuthorizationFailed, refused.Responses.Single().PartitionResponses.Single().ErrorCode);
        // Idempotent (not transactional) records need no transactional id: routed (the test brokers
        // are unreachable, so NOT_LEADER_OR_FOLLOWER), not refused.
        await client.SendAsync(ApiKey.Produce, 9, 3, Request(null, Batch()));
        var (_, routed) = await client.ReadAsync<ProduceResponse>(ApiKey.Produce, 9);
        Assert.NotEqual((short)ErrorCode.TransactionalIdAuthorizationFailed, routed.Responses.Single().PartitionResponses.Single().ErrorCode);
    }
}

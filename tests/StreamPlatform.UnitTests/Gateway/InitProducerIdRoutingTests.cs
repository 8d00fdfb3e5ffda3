using StreamPlatform.Gateway.Apis;
using StreamPlatform.Protos.Grpc.Groups;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.UnitTests.Gateway;

/// <summary>
/// InitProducerId (22) routing: a null transactional id goes to any live broker, round-robin,
/// and once more to the next broker when the chosen one cannot be reached; a transactional id
/// goes to its coordinator only; no coordinator: COORDINATOR_NOT_AVAILABLE; "": INVALID_REQUEST.
/// </summary>
public sealed class InitProducerIdRoutingTests : IAsyncLifetime
{
    private TransactionRoutingKit _kit = null!;

    public async Task InitializeAsync()
    {
        _kit = await TransactionRoutingKit.StartAsync();
        foreach (var broker in new[] { _kit.Broker1, _kit.Broker2 })
        {
            var id = broker.BrokerId;
            broker.Answer = (method, request) => method == "InitProducerId"
                ? BodyServiceStandIn.Encode(new InitProducerIdResponse { ProducerId = id * 1000, ProducerEpoch = 0 }, request.ApiVersion)
                : null;
        }
    }

    public async Task DisposeAsync() => await _kit.DisposeAsync();

    private async Task<InitProducerIdResponse> InitAsync(PipeClient client, string? transactionalId, short version = 4, int correlation = 1)
    {
        await client.SendAsync(ApiKey.InitProducerId, version, correlation, new InitProducerIdRequest
        {
            TransactionalId = transactionalId, TransactionTimeoutMs = 60_000, ProducerId = -1, ProducerEpoch = -1,
        });
        var (_, response) = await client.ReadAsync<InitProducerIdResponse>(ApiKey.InitProducerId, version);
        return response;
    }

    [Fact]
    public async Task Idempotent_producers_are_spread_over_the_live_brokers()
    {
        await using var client = _kit.Client(new InitProducerIdApi(_kit.Router, new StreamPlatform.Gateway.Security.AllowAllAuthorizer()));
        var ids = new List<long>();
        for (var i = 0; i < 4; i++) ids.Add((await InitAsync(client, null, correlation: i)).ProducerId);
        Assert.Equal(2, ids.Count(id => id == 1000));
        Assert.Equal(2, ids.Count(id => id == 2000));
        // The body reached the brokers as the client sent it (version, null transactional id, timeout, client id).
        Assert.All(_kit.Broker1.Calls.Concat(_kit.Broker2.Calls), c =>
        {
            Assert.Equal("InitProducerId", c.Method);
            Assert.Equal(4, c.Request.ApiVersion);
            Assert.Equal("unit", c.Request.ClientId);
            var body = BodyServiceStandIn.Decode<InitProducerIdRequest>(c.Request);
            Assert.Null(body.TransactionalId);
            Assert.Equal(60_000, body.TransactionTimeoutMs);
        });
    }

    [Fact]
    public async Task An_unreachable_broker_is_skipped_once_for_the_next_one()
    {
        _kit.Broker1.Answer = (_, _) => null; // broker 1 fails every call
        await using var client = _kit.Client(new InitProducerIdApi(_kit.Router, new StreamPlatform.Gateway.Security.AllowAllAuthorizer()));
        for (var i = 0; i < 4; i++)
        {
            var response = await InitAsync(client, null, correlation: i);
            Assert.Equal(0, response.ErrorCode);
            Assert.Equal(2000, response.ProducerId);
        }
        // Broker 1 was tried on its turns (twice), never more.
        Assert.Equal(2, _kit.Broker1.Calls.Count);
    }

    [Fact]
    public async Task With_no_broker_answering_the_client_gets_a_retriable_load_in_progress()
    {
        _kit.Broker1.Answer = (_, _) => null;
        _kit.Broker2.Answer = (_, _) => null;
        await using var client = _kit.Client(new InitProducerIdApi(_kit.Router, new StreamPlatform.Gateway.Security.AllowAllAuthorizer()));
        var response = await InitAsync(client, null);
        Assert.Equal((short)ErrorCode.CoordinatorLoadInProgress, response.ErrorCode);
        Assert.Equal(-1, response.ProducerId);
        // One try and one retry, not more.
        Assert.Equal(2, _kit.Broker1.Calls.Count + _kit.Broker2.Calls.Count);
    }

    [Theory]
    [InlineData("txn-a")]
    [InlineData("txn-b")]
    [InlineData("txn-c")]
    public async Task A_transactional_id_goes_to_its_coordinator_only(string transactionalId)
    {
        await using var client = _kit.Client(new InitProducerIdApi(_kit.Router, new StreamPlatform.Gateway.Security.AllowAllAuthorizer()));
        var coordinator = _kit.CoordinatorOf(transactionalId);
        var other = coordinator == _kit.Broker1 ? _kit.Broker2 : _kit.Broker1;
        for (var i = 0; i < 3; i++)
            Assert.Equal(coordinator.BrokerId * 1000, (await InitAsync(client, transactionalId, correlation: i)).ProducerId);
        Assert.Equal(3, coordinator.Calls.Count);
        Assert.Empty(other.Calls);
        Assert.All(coordinator.Calls, c => Assert.Equal(transactionalId, BodyServiceStandIn.Decode<InitProducerIdRequest>(c.Request).TransactionalId));
    }

    [Fact]
    public async Task An_unreachable_coordinator_is_not_retried_elsewhere()
    {
        var coordinator = _kit.CoordinatorOf("txn-a");
        coordinator.Answer = (_, _) => null;
        await using var client = _kit.Client(new InitProducerIdApi(_kit.Router, new StreamPlatform.Gateway.Security.AllowAllAuthorizer()));
        Assert.Equal((short)ErrorCode.CoordinatorNotAvailable, (await InitAsync(client, "txn-a")).ErrorCode);
        Assert.Single(coordinator.Calls);
        Assert.Empty((coordinator == _kit.Broker1 ? _kit.Broker2 : _kit.Broker1).Calls);
    }

    [Fact]
    public async Task Without_the_transaction_state_topic_there_is_no_coordinator_and_an_empty_id_is_invalid()
    {
        _kit.Watcher.Apply(WithEpoch(_kit.Snapshot(withInternalTopics: false), 9));
        await using var client = _kit.Client(new InitProducerIdApi(_kit.Router, new StreamPlatform.Gateway.Security.AllowAllAuthorizer()));
        Assert.Equal((short)ErrorCode.CoordinatorNotAvailable, (await InitAsync(client, "txn-a", correlation: 1)).ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidRequest, (await InitAsync(client, "", correlation: 2)).ErrorCode);
        // Idempotent producers do not need the topic.
        Assert.Equal(0, (await InitAsync(client, null, correlation: 3)).ErrorCode);
        Assert.DoesNotContain(_kit.Broker1.Calls, c => BodyServiceStandIn.Decode<InitProducerIdRequest>(c.Request).TransactionalId is not null);
        Assert.DoesNotContain(_kit.Broker2.Calls, c => BodyServiceStandIn.Decode<InitProducerIdRequest>(c.Request).TransactionalId is not null);
    }

    [Fact]
    public void The_null_id_order_rotates_over_live_brokers_and_tries_at_most_two()
    {
        var metadata = _kit.Watcher.Current;
        Assert.Equal([1, 2], InitProducerIdApi.AnyBrokerOrder(metadata, 0).Select(b => b.BrokerId));
        Assert.Equal([2, 1], InitProducerIdApi.AnyBrokerOrder(metadata, 1).Select(b => b.BrokerId));
        Assert.Equal([1, 2], InitProducerIdApi.AnyBrokerOrder(metadata, int.MinValue).Select(b => b.BrokerId)); // wrapped counter
        _kit.AddUnreachableBroker();
        var third = InitProducerIdApi.AnyBrokerOrder(_kit.Watcher.Current, 2);
        Assert.Equal([4, 1], third.Select(b => b.BrokerId)); // fenced broker 3 never chosen
    }

    private static Protos.Grpc.MetadataSnapshot WithEpoch(Protos.Grpc.MetadataSnapshot snapshot, long epoch)
    {
        snapshot.MetadataEpoch = epoch;
        return snapshot;
    }
}

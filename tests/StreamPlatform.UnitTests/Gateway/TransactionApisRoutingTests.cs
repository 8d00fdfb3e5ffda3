using StreamPlatform.Gateway.Apis;
using StreamPlatform.Gateway.Security;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.UnitTests.Gateway;

/// <summary>
/// Where the transaction APIs go and how answers are merged: AddPartitionsToTxn (v0-3 to the
/// coordinator, v4+ split by coordinator behind CLUSTER_ACTION), AddOffsetsToTxn, EndTxn (the
/// transaction coordinator), TxnOffsetCommit (the GROUP coordinator), DescribeProducers (split by
/// partition leader), DescribeTransactions (split by coordinator), ListTransactions (every broker
/// of this gateway). Brokers are <see cref="BodyServiceStandIn"/> endpoints.
/// </summary>
public sealed class TransactionApisRoutingTests : IAsyncLifetime
{
    private TransactionRoutingKit _kit = null!;
    private int _correlation;

    public async Task InitializeAsync() => _kit = await TransactionRoutingKit.StartAsync();

    public async Task DisposeAsync() => await _kit.DisposeAsync();

    private sealed class Authorizer(Func<AclOperation, AclResourceType, string, bool> allow) : IAuthorizer
    {
        public bool Authorize(RequestContext context, AclOperation operation, AclResourceType resourceType, string resourceName)
            => allow(operation, resourceType, resourceName);
    }

    private static readonly IAuthorizer AllowAll = new AllowAllAuthorizer();

    /// <summary>A transactional id coordinated by broker <paramref name="brokerId"/> in the kit's layout.</summary>
    private string IdOn(int brokerId, int skip = 0)
        => Enumerable.Range(0, 1000).Select(i => $"txn-{i}").Where(id => _kit.CoordinatorOf(id).BrokerId == brokerId).Skip(skip).First();

    private async Task<T> RoundTripAsync<T>(PipeClient client, ApiKey api, short version, IKafkaRequest request) where T : IKafkaResponse, new()
    {
        await client.SendAsync(api, version, ++_correlation, request);
        var (_, response) = await client.ReadAsync<T>(api, version);
        return response;
    }

    [Fact]
    public async Task End_txn_and_add_offsets_go_to_the_coordinator_and_fail_retriably_without_one()
    {
        var id = IdOn(2);
        _kit.Broker2.Answer = (method, r) => method switch
        {
            "EndTxn" => BodyServiceStandIn.Encode(new EndTxnResponse { ProducerId = 7, ProducerEpoch = 3 }, r.ApiVersion),
            "AddOffsetsToTxn" => BodyServiceStandIn.Encode(new AddOffsetsToTxnResponse(), r.ApiVersion),
            _ => null,
        };
        await using var client = _kit.Client(new EndTxnApi(_kit.Router, AllowAll), new AddOffsetsToTxnApi(_kit.Router, AllowAll));
        // v4: the highest advertised (v5, transaction version 2, is unstable in our definitions).
        var end = await RoundTripAsync<EndTxnResponse>(client, ApiKey.EndTxn, 4, new EndTxnRequest { TransactionalId = id, ProducerId = 7, ProducerEpoch = 2, Committed = true });
        Assert.Equal(0, end.ErrorCode);
        var offsets = await RoundTripAsync<AddOffsetsToTxnResponse>(client, ApiKey.AddOffsetsToTxn, 4,
            new AddOffsetsToTxnRequest { TransactionalId = id, ProducerId = 7, ProducerEpoch = 3, GroupId = "g" });
        Assert.Equal(0, offsets.ErrorCode);
        Assert.Empty(_kit.Broker1.Calls);
        var endCall = BodyServiceStandIn.Decode<EndTxnRequest>(_kit.Broker2.Calls.First(c => c.Method == "EndTxn").Request);
        Assert.True(endCall.Committed);
        Assert.Equal(id, endCall.TransactionalId);

        // The coordinator unreachable: COORDINATOR_NOT_AVAILABLE (the client finds it again).
        _kit.Broker2.Answer = (_, _) => null;
        end = await RoundTripAsync<EndTxnResponse>(client, ApiKey.EndTxn, 4, new EndTxnRequest { TransactionalId = id, ProducerId = 7, ProducerEpoch = 3, Committed = false });
        Assert.Equal((short)ErrorCode.CoordinatorNotAvailable, end.ErrorCode);
        // An empty transactional id: INVALID_REQUEST, and nothing forwarded.
        var calls = _kit.Broker2.Calls.Count;
        offsets = await RoundTripAsync<AddOffsetsToTxnResponse>(client, ApiKey.AddOffsetsToTxn, 3, new AddOffsetsToTxnRequest { TransactionalId = "", GroupId = "g" });
        Assert.Equal((short)ErrorCode.InvalidRequest, offsets.ErrorCode);
        Assert.Equal(calls, _kit.Broker2.Calls.Count);
    }

    private static AddPartitionsToTxnRequest.AddPartitionsToTxnTopic Topic(string name, params int[] partitions)
        => new() { Name = name, Partitions = [.. partitions] };

    [Fact]
    public async Task Add_partitions_from_a_client_goes_to_its_coordinator_and_fails_per_partition_without_one()
    {
        var id = IdOn(1);
        _kit.Broker1.Answer = (method, r) =>
        {
            var request = BodyServiceStandIn.Decode<AddPartitionsToTxnRequest>(r);
            var response = new AddPartitionsToTxnResponse();
            response.ResultsByTopicV3AndBelow.AddRange(request.V3AndBelowTopics.Select(t => new AddPartitionsToTxnResponse.AddPartitionsToTxnTopicResult
            {
                Name = t.Name, ResultsByPartition = t.Partitions.Select(p => new AddPartitionsToTxnResponse.AddPartitionsToTxnPartitionResult { PartitionIndex = p }).ToList(),
            }));
            return BodyServiceStandIn.Encode(response, r.ApiVersion);
        };
        await using var client = _kit.Client(new AddPartitionsToTxnApi(_kit.Router, AllowAll));
        var request = new AddPartitionsToTxnRequest { V3AndBelowTransactionalId = id, V3AndBelowProducerId = 5, V3AndBelowTopics = [Topic("orders", 0, 1)] };
        var ok = await RoundTripAsync<AddPartitionsToTxnResponse>(client, ApiKey.AddPartitionsToTxn, 3, request);
        Assert.Equal([(0, (short)0), (1, (short)0)], ok.ResultsByTopicV3AndBelow.Single().ResultsByPartition.Select(p => (p.PartitionIndex, p.PartitionErrorCode)));
        Assert.Single(_kit.Broker1.Calls);
        Assert.Empty(_kit.Broker2.Calls);

        _kit.Watcher.Apply(WithEpoch(_kit.Snapshot(withInternalTopics: false), 9));
        var none = await RoundTripAsync<AddPartitionsToTxnResponse>(client, ApiKey.AddPartitionsToTxn, 2, request);
        Assert.All(none.ResultsByTopicV3AndBelow.Single().ResultsByPartition, p => Assert.Equal((short)ErrorCode.CoordinatorNotAvailable, p.PartitionErrorCode));
    }

    private static Protos.Grpc.MetadataSnapshot WithEpoch(Protos.Grpc.MetadataSnapshot snapshot, long epoch)
    {
        snapshot.MetadataEpoch = epoch;
        return snapshot;
    }

    /// <summary>A v4+ coordinator answer: every partition of every transaction with error <paramref name="error"/>.</summary>
    private static byte[] BatchAnswer(Protos.Grpc.Groups.KafkaGroupRequest r, short error = 0)
    {
        var request = BodyServiceStandIn.Decode<AddPartitionsToTxnRequest>(r);
        var response = new AddPartitionsToTxnResponse();
        foreach (var t in request.Transactions)
            response.ResultsByTransaction.Add(new AddPartitionsToTxnResponse.AddPartitionsToTxnResult
            {
                TransactionalId = t.TransactionalId,
                TopicResults = t.Topics.Select(x => new AddPartitionsToTxnResponse.AddPartitionsToTxnTopicResult
                {
                    Name = x.Name,
                    ResultsByPartition = x.Partitions.Select(p => new AddPartitionsToTxnResponse.AddPartitionsToTxnPartitionResult { PartitionIndex = p, PartitionErrorCode = error }).ToList(),
                }).ToList(),
            });
        return BodyServiceStandIn.Encode(response, r.ApiVersion);
    }

    [Fact]
    public async Task Add_partitions_v4_is_split_by_coordinator_and_merged_in_request_order()
    {
        string a = IdOn(1), b = IdOn(2), c = IdOn(1, skip: 1);
        _kit.Broker1.Answer = (_, r) => BatchAnswer(r);
        _kit.Broker2.Answer = (_, r) => BatchAnswer(r, (short)ErrorCode.InvalidProducerEpoch);
        await using var client = _kit.Client(new AddPartitionsToTxnApi(_kit.Router, AllowAll));
        var request = new AddPartitionsToTxnRequest
        {
            Transactions =
            [
                new() { TransactionalId = a, ProducerId = 1, VerifyOnly = true, Topics = [Topic("orders", 0)] },
                new() { TransactionalId = b, ProducerId = 2, VerifyOnly = true, Topics = [Topic("orders", 1)] },
                new() { TransactionalId = "", ProducerId = 4, Topics = [Topic("orders", 1)] },
                new() { TransactionalId = c, ProducerId = 3, VerifyOnly = true, Topics = [Topic("orders", 0, 1)] },
            ],
        };
        var response = await RoundTripAsync<AddPartitionsToTxnResponse>(client, ApiKey.AddPartitionsToTxn, 5, request);
        Assert.Equal(0, response.ErrorCode);
        Assert.Equal([a, b, "", c], response.ResultsByTransaction.Select(t => t.TransactionalId));
        short ErrorOf(int i) => response.ResultsByTransaction[i].TopicResults.Single().ResultsByPartition.First().PartitionErrorCode;
        Assert.Equal([0, (short)ErrorCode.InvalidProducerEpoch, (short)ErrorCode.InvalidRequest, 0], Enumerable.Range(0, 4).Select(ErrorOf));
        // One call per coordinator, with its transactions only, at the client's version.
        var call1 = Assert.Single(_kit.Broker1.Calls).Request;
        Assert.Equal(5, call1.ApiVersion);
        Assert.Equal([a, c], BodyServiceStandIn.Decode<AddPartitionsToTxnRequest>(call1).Transactions.Select(t => t.TransactionalId));
        Assert.True(BodyServiceStandIn.Decode<AddPartitionsToTxnRequest>(call1).Transactions.All(t => t.VerifyOnly));
        Assert.Equal([b], BodyServiceStandIn.Decode<AddPartitionsToTxnRequest>(Assert.Single(_kit.Broker2.Calls).Request).Transactions.Select(t => t.TransactionalId));

        // A coordinator that fails, or answers a top-level error: its transactions carry it.
        _kit.Broker1.Answer = (_, _) => null;
        _kit.Broker2.Answer = (_, r) => BodyServiceStandIn.Encode(new AddPartitionsToTxnResponse { ErrorCode = (short)ErrorCode.NotCoordinator }, r.ApiVersion);
        response = await RoundTripAsync<AddPartitionsToTxnResponse>(client, ApiKey.AddPartitionsToTxn, 4, request);
        Assert.Equal([(short)ErrorCode.CoordinatorNotAvailable, (short)ErrorCode.NotCoordinator, (short)ErrorCode.InvalidRequest, (short)ErrorCode.CoordinatorNotAvailable],
            Enumerable.Range(0, 4).Select(ErrorOf));
        Assert.All(response.ResultsByTransaction[3].TopicResults.Single().ResultsByPartition, p => Assert.Equal((short)ErrorCode.CoordinatorNotAvailable, p.PartitionErrorCode));
    }

    [Fact]
    public async Task Add_partitions_v4_without_cluster_action_is_refused_as_kafka_refuses_it()
    {
        var deny = new Authorizer((op, type, _) => !(op == AclOperation.ClusterAction && type == AclResourceType.Cluster));
        await using var client = _kit.Client(new AddPartitionsToTxnApi(_kit.Router, deny));
        var request = new AddPartitionsToTxnRequest { Transactions = [new() { TransactionalId = IdOn(1), Topics = [Topic("orders", 0)] }] };
        var response = await RoundTripAsync<AddPartitionsToTxnResponse>(client, ApiKey.AddPartitionsToTxn, 4, request);
        Assert.Equal((short)ErrorCode.ClusterAuthorizationFailed, response.ErrorCode);
        Assert.Empty(response.ResultsByTransaction);
        Assert.Empty(_kit.Broker1.Calls);
        Assert.Empty(_kit.Broker2.Calls);
    }

    [Fact]
    public async Task Txn_offset_commit_goes_to_the_group_coordinator_not_the_transaction_coordinator()
    {
        // A group coordinated by broker 2 and a transactional id coordinated by broker 1.
        var group = IdOn(2);
        var id = IdOn(1);
        _kit.Broker2.Answer = (method, r) =>
        {
            var request = BodyServiceStandIn.Decode<TxnOffsetCommitRequest>(r);
            var response = new TxnOffsetCommitResponse();
            response.Topics.AddRange(request.Topics.Select(t => new TxnOffsetCommitResponse.TxnOffsetCommitResponseTopic
            {
                Name = t.Name, Partitions = t.Partitions.Select(p => new TxnOffsetCommitResponse.TxnOffsetCommitResponsePartition { PartitionIndex = p.PartitionIndex }).ToList(),
            }));
            return method == "TxnOffsetCommit" ? BodyServiceStandIn.Encode(response, r.ApiVersion) : null;
        };
        await using var client = _kit.Client(new TxnOffsetCommitApi(_kit.Router, AllowAll));
        var request = new TxnOffsetCommitRequest
        {
            TransactionalId = id, GroupId = group, ProducerId = 9, ProducerEpoch = 1, GenerationId = 4, MemberId = "m-1",
            Topics = [new() { Name = "orders", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 42 }] }],
        };
        var response = await RoundTripAsync<TxnOffsetCommitResponse>(client, ApiKey.TxnOffsetCommit, 3, request);
        Assert.Equal(0, response.Topics.Single().Partitions.Single().ErrorCode);
        Assert.Empty(_kit.Broker1.Calls);
        var forwarded = BodyServiceStandIn.Decode<TxnOffsetCommitRequest>(Assert.Single(_kit.Broker2.Calls).Request);
        Assert.Equal((id, "m-1", 42L), (forwarded.TransactionalId, forwarded.MemberId, forwarded.Topics[0].Partitions[0].CommittedOffset));

        _kit.Broker2.Answer = (_, _) => null;
        response = await RoundTripAsync<TxnOffsetCommitResponse>(client, ApiKey.TxnOffsetCommit, 3, request);
        Assert.Equal((short)ErrorCode.CoordinatorNotAvailable, response.Topics.Single().Partitions.Single().ErrorCode);
        request.GroupId = "";
        response = await RoundTripAsync<TxnOffsetCommitResponse>(client, ApiKey.TxnOffsetCommit, 3, request);
        Assert.Equal((short)ErrorCode.InvalidGroupId, response.Topics.Single().Partitions.Single().ErrorCode);
    }

    private static byte[] ProducersAnswer(Protos.Grpc.Groups.KafkaGroupRequest r, int brokerId)
    {
        var request = BodyServiceStandIn.Decode<DescribeProducersRequest>(r);
        var response = new DescribeProducersResponse();
        foreach (var t in request.Topics)
            response.Topics.Add(new DescribeProducersResponse.TopicResponse
            {
                Name = t.Name,
                Partitions = t.PartitionIndexes.Select(p => new DescribeProducersResponse.PartitionResponse
                {
                    PartitionIndex = p,
                    ActiveProducers = [new() { ProducerId = brokerId * 100 + p, ProducerEpoch = 1, LastSequence = 4 }],
                }).ToList(),
            });
        return BodyServiceStandIn.Encode(response, r.ApiVersion);
    }

    [Fact]
    public async Task Describe_producers_is_split_by_leader_with_kafkas_per_partition_errors()
    {
        _kit.Broker1.Answer = (_, r) => ProducersAnswer(r, 1);
        _kit.Broker2.Answer = (_, r) => ProducersAnswer(r, 2);
        var denied = new Authorizer((op, type, name) => !(type == AclResourceType.Topic && name == "secret"));
        await using var client = _kit.Client(new DescribeProducersApi(_kit.Router, denied));
        var request = new DescribeProducersRequest
        {
            Topics =
            [
                new() { Name = "orders", PartitionIndexes = [1, 0, 2, 7] },
                new() { Name = "missing", PartitionIndexes = [0] },
                new() { Name = "secret", PartitionIndexes = [0] },
            ],
        };
        var response = await RoundTripAsync<DescribeProducersResponse>(client, ApiKey.DescribeProducers, 0, request);
        Assert.Equal(["orders", "missing", "secret"], response.Topics.Select(t => t.Name));
        var orders = response.Topics[0].Partitions;
        Assert.Equal([1, 0, 2, 7], orders.Select(p => p.PartitionIndex));
        Assert.Equal([(short)0, (short)0, (short)ErrorCode.NotLeaderOrFollower, (short)ErrorCode.UnknownTopicOrPartition], orders.Select(p => p.ErrorCode));
        Assert.Equal(201, orders[0].ActiveProducers.Single().ProducerId); // partition 1 from its leader, broker 2
        Assert.Equal(100, orders[1].ActiveProducers.Single().ProducerId); // partition 0 from broker 1
        Assert.Empty(orders[2].ActiveProducers);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, response.Topics[1].Partitions.Single().ErrorCode);
        Assert.Equal((short)ErrorCode.TopicAuthorizationFailed, response.Topics[2].Partitions.Single().ErrorCode);
        // Each leader was asked for its own partitions only.
        Assert.Equal([0], BodyServiceStandIn.Decode<DescribeProducersRequest>(Assert.Single(_kit.Broker1.Calls).Request).Topics.Single().PartitionIndexes);
        Assert.Equal([1], BodyServiceStandIn.Decode<DescribeProducersRequest>(Assert.Single(_kit.Broker2.Calls).Request).Topics.Single().PartitionIndexes);

        // A leader that cannot be reached: NOT_LEADER_OR_FOLLOWER, so the client refreshes and asks again.
        _kit.Broker2.Answer = (_, _) => null;
        response = await RoundTripAsync<DescribeProducersResponse>(client, ApiKey.DescribeProducers, 0, request);
        Assert.Equal((short)ErrorCode.NotLeaderOrFollower, response.Topics[0].Partitions[0].ErrorCode);
        Assert.Equal(0, response.Topics[0].Partitions[1].ErrorCode);
    }

    [Fact]
    public async Task Describe_transactions_is_split_by_coordinator_and_merged_in_request_order()
    {
        string a = IdOn(1), b = IdOn(2), c = IdOn(2, skip: 1);
        foreach (var broker in new[] { _kit.Broker1, _kit.Broker2 })
        {
            var id = broker.BrokerId;
            broker.Answer = (_, r) =>
            {
                var response = new DescribeTransactionsResponse();
                response.TransactionStates.AddRange(BodyServiceStandIn.Decode<DescribeTransactionsRequest>(r).TransactionalIds.Select(t =>
                    new DescribeTransactionsResponse.TransactionState { TransactionalId = t, TransactionStateValue = "Ongoing", ProducerId = id }));
                return BodyServiceStandIn.Encode(response, r.ApiVersion);
            };
        }
        var denied = new Authorizer((_, type, name) => !(type == AclResourceType.TransactionalId && name == "hidden"));
        await using var client = _kit.Client(new DescribeTransactionsApi(_kit.Router, denied));
        var request = new DescribeTransactionsRequest { TransactionalIds = [b, a, "hidden", c] };
        var response = await RoundTripAsync<DescribeTransactionsResponse>(client, ApiKey.DescribeTransactions, 0, request);
        Assert.Equal([b, a, "hidden", c], response.TransactionStates.Select(s => s.TransactionalId));
        Assert.Equal([2L, 1L, -1L, 2L], response.TransactionStates.Select(s => s.ProducerId));
        Assert.Equal([0, 0, (short)ErrorCode.TransactionalIdAuthorizationFailed, 0], response.TransactionStates.Select(s => s.ErrorCode));
        Assert.Equal([b, c], BodyServiceStandIn.Decode<DescribeTransactionsRequest>(Assert.Single(_kit.Broker2.Calls).Request).TransactionalIds);

        _kit.Broker1.Answer = (_, _) => null;
        response = await RoundTripAsync<DescribeTransactionsResponse>(client, ApiKey.DescribeTransactions, 0, request);
        Assert.Equal([0, (short)ErrorCode.CoordinatorNotAvailable, (short)ErrorCode.TransactionalIdAuthorizationFailed, 0], response.TransactionStates.Select(s => s.ErrorCode));
    }

    [Fact]
    public async Task List_transactions_asks_every_broker_of_this_gateway_and_merges()
    {
        foreach (var broker in new[] { _kit.Broker1, _kit.Broker2 })
        {
            var id = broker.BrokerId;
            broker.Answer = (_, r) => BodyServiceStandIn.Encode(new ListTransactionsResponse
            {
                UnknownStateFilters = ["Bogus"],
                TransactionStates = [new() { TransactionalId = $"t-{id}", ProducerId = id, TransactionStateValue = "Ongoing" }, new() { TransactionalId = "hidden", ProducerId = 9 }],
            }, r.ApiVersion);
        }
        var denied = new Authorizer((_, type, name) => !(type == AclResourceType.TransactionalId && name == "hidden"));
        await using var client = _kit.Client(new ListTransactionsApi(_kit.Router, denied));
        var request = new ListTransactionsRequest { StateFilters = ["Ongoing", "Bogus"], DurationFilter = 5000 };
        var response = await RoundTripAsync<ListTransactionsResponse>(client, ApiKey.ListTransactions, 1, request);
        Assert.Equal(0, response.ErrorCode);
        Assert.Equal(["Bogus"], response.UnknownStateFilters);
        Assert.Equal(["t-1", "t-2"], response.TransactionStates.Select(t => t.TransactionalId).Order());
        // The filters reached every broker as sent (v1: with the duration filter).
        Assert.All(new[] { _kit.Broker1, _kit.Broker2 }, b =>
        {
            var forwarded = BodyServiceStandIn.Decode<ListTransactionsRequest>(Assert.Single(b.Calls).Request);
            Assert.Equal((5000L, 2), (forwarded.DurationFilter, forwarded.StateFilters.Count));
        });

        _kit.Broker2.Answer = (_, _) => null;
        response = await RoundTripAsync<ListTransactionsResponse>(client, ApiKey.ListTransactions, 0, new ListTransactionsRequest());
        Assert.Equal((short)ErrorCode.CoordinatorNotAvailable, response.ErrorCode);
        Assert.Equal(["t-1"], response.TransactionStates.Select(t => t.TransactionalId));
    }

    [Fact]
    public async Task Add_partitions_from_a_client_checks_its_topics_as_kafka_before_the_coordinator()
    {
        await using var client = _kit.Client(new AddPartitionsToTxnApi(_kit.Router, AllowAll));
        var request = new AddPartitionsToTxnRequest
        {
            V3AndBelowTransactionalId = IdOn(1),
            V3AndBelowTopics = [Topic("orders", 0, 9), Topic("missing", 0)],
        };
        var response = await RoundTripAsync<AddPartitionsToTxnResponse>(client, ApiKey.AddPartitionsToTxn, 3, request);
        Assert.Equal([("orders", 0, (short)ErrorCode.OperationNotAttempted), ("orders", 9, (short)ErrorCode.UnknownTopicOrPartition), ("missing", 0, (short)ErrorCode.UnknownTopicOrPartition)],
            response.ResultsByTopicV3AndBelow.SelectMany(t => t.ResultsByPartition.Select(p => (t.Name, p.PartitionIndex, p.PartitionErrorCode))));
        // Internal topics are never added by clients (Kafka leaves them out of the authorized set).
        request.V3AndBelowTopics = [Topic("orders", 1), Topic(Protos.Groups.TransactionStateTopic.Name, 0)];
        response = await RoundTripAsync<AddPartitionsToTxnResponse>(client, ApiKey.AddPartitionsToTxn, 3, request);
        Assert.Equal([(short)ErrorCode.OperationNotAttempted, (short)ErrorCode.TopicAuthorizationFailed],
            response.ResultsByTopicV3AndBelow.Select(t => t.ResultsByPartition.Single().PartitionErrorCode));
        Assert.Empty(_kit.Broker1.Calls);
        Assert.Empty(_kit.Broker2.Calls);
    }

    [Fact]
    public async Task Transaction_requests_need_write_on_the_transactional_id_and_read_on_the_group()
    {
        var id = IdOn(1);
        var noTxn = new Authorizer((op, type, _) => type != AclResourceType.TransactionalId);
        var noGroup = new Authorizer((op, type, _) => type != AclResourceType.Group);
        await using (var client = _kit.Client(new InitProducerIdApi(_kit.Router, noTxn), new EndTxnApi(_kit.Router, noTxn), new AddOffsetsToTxnApi(_kit.Router, noTxn),
            new TxnOffsetCommitApi(_kit.Router, noTxn), new AddPartitionsToTxnApi(_kit.Router, noTxn)))
        {
            Assert.Equal((short)ErrorCode.TransactionalIdAuthorizationFailed,
                (await RoundTripAsync<InitProducerIdResponse>(client, ApiKey.InitProducerId, 4, new InitProducerIdRequest { TransactionalId = id })).ErrorCode);
            Assert.Equal((short)ErrorCode.TransactionalIdAuthorizationFailed,
                (await RoundTripAsync<EndTxnResponse>(client, ApiKey.EndTxn, 3, new EndTxnRequest { TransactionalId = id })).ErrorCode);
            Assert.Equal((short)ErrorCode.TransactionalIdAuthorizationFailed,
                (await RoundTripAsync<AddOffsetsToTxnResponse>(client, ApiKey.AddOffsetsToTxn, 3, new AddOffsetsToTxnRequest { TransactionalId = id, GroupId = "g" })).ErrorCode);
            var commit = await RoundTripAsync<TxnOffsetCommitResponse>(client, ApiKey.TxnOffsetCommit, 3, new TxnOffsetCommitRequest
            {
                TransactionalId = id, GroupId = "g", Topics = [new() { Name = "orders", Partitions = [new() { PartitionIndex = 0 }, new() { PartitionIndex = 1 }] }],
            });
            Assert.All(commit.Topics.Single().Partitions, p => Assert.Equal((short)ErrorCode.TransactionalIdAuthorizationFailed, p.ErrorCode));
            var add = await RoundTripAsync<AddPartitionsToTxnResponse>(client, ApiKey.AddPartitionsToTxn, 3,
                new AddPartitionsToTxnRequest { V3AndBelowTransactionalId = id, V3AndBelowTopics = [Topic("orders", 0)] });
            Assert.Equal((short)ErrorCode.TransactionalIdAuthorizationFailed, add.ResultsByTopicV3AndBelow.Single().ResultsByPartition.Single().PartitionErrorCode);
            // Idempotent producers (null id) are not asked about transactional ids.
            _kit.Broker1.Answer = _kit.Broker2.Answer = (_, r) => BodyServiceStandIn.Encode(new InitProducerIdResponse { ProducerId = 1 }, r.ApiVersion);
            Assert.Equal(0, (await RoundTripAsync<InitProducerIdResponse>(client, ApiKey.InitProducerId, 4, new InitProducerIdRequest { TransactionalId = null })).ErrorCode);
        }
        await using (var client = _kit.Client(new AddOffsetsToTxnApi(_kit.Router, noGroup), new TxnOffsetCommitApi(_kit.Router, noGroup)))
        {
            Assert.Equal((short)ErrorCode.GroupAuthorizationFailed,
                (await RoundTripAsync<AddOffsetsToTxnResponse>(client, ApiKey.AddOffsetsToTxn, 3, new AddOffsetsToTxnRequest { TransactionalId = id, GroupId = "g" })).ErrorCode);
            var commit = await RoundTripAsync<TxnOffsetCommitResponse>(client, ApiKey.TxnOffsetCommit, 3, new TxnOffsetCommitRequest
            {
                TransactionalId = id, GroupId = "g", Topics = [new() { Name = "orders", Partitions = [new() { PartitionIndex = 0 }] }],
            });
            Assert.Equal((short)ErrorCode.GroupAuthorizationFailed, commit.Topics.Single().Partitions.Single().ErrorCode);
        }
        // Only the null-id InitProducerId reached a broker.
        Assert.Equal(1, _kit.Broker1.Calls.Count + _kit.Broker2.Calls.Count);
    }
}

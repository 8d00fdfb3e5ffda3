using StreamPlatform.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace StreamPlatform.IntegrationTests.Transactions;

/// <summary>
/// Issue 13 with other clients, unchanged, as a user would run them: kcat's idempotent producer
/// and Debian's python3-confluent-kafka transactional producer with a read_committed consumer.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ExactlyOnceClientsTests : IDisposable
{
    private readonly ClusterFixture _fixture;
    private readonly ITestOutputHelper _output;
    private readonly IDisposable _attach;

    public ExactlyOnceClientsTests(ClusterFixture fixture, ITestOutputHelper output)
    {
        _fixture = fixture;
        _output = output;
        _attach = fixture.Cluster.AttachOutput(output);
    }

    public void Dispose() => _attach.Dispose();

    private string Bootstrap => _fixture.BootstrapServers;

    [Fact]
    public async Task Kcat_idempotent_producer_writes_every_line_once_in_order()
    {
        var topic = KafkaHelpers.UniqueTopic("kcat-idempotent");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, 2, replicationFactor: 3);
        var lines = Enumerable.Range(0, 2000).Select(i => $"k{i % 7}:{i}").ToArray();
        var produce = await ExternalProcess.RunAsync("kcat",
            ["-b", Bootstrap, "-t", topic, "-P", "-p", "1", "-K:", "-X", "enable.idempotence=true", "-X", "acks=all", "-X", "linger.ms=20"],
            standardInput: string.Join('\n', lines) + "\n");
        _output.WriteLine(produce.ToString());
        Assert.Equal(0, produce.ExitCode);
        // librdkafka reports a failed InitProducerId or a fatal idempotence error on stderr.
        Assert.DoesNotContain("fatal", produce.StandardError, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("ERROR", produce.StandardError, StringComparison.Ordinal);

        var consume = await ExternalProcess.RunAsync("kcat",
            ["-b", Bootstrap, "-t", topic, "-C", "-p", "1", "-o", "beginning", "-e", "-f", "%o %k:%s\\n"]);
        Assert.Equal(0, consume.ExitCode);
        var read = consume.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ', 2)).ToList();
        Assert.Equal(lines, read.Select(r => r[1]));
        Assert.Equal(Enumerable.Range(0, lines.Length).Select(i => i.ToString()), read.Select(r => r[0]));
    }

    [Fact]
    public async Task Python_confluent_kafka_transactional_producer_commits_and_aborts_and_read_committed_sees_only_committed()
    {
        var topic = KafkaHelpers.UniqueTopic("python-txn");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, 2, replicationFactor: 3);
        var script = """
            import sys, uuid
            from confluent_kafka import Producer, Consumer, TopicPartition, KafkaException
            bootstrap, topic = sys.argv[1], sys.argv[2]
            p = Producer({'bootstrap.servers': bootstrap, 'transactional.id': 'py-' + uuid.uuid4().hex, 'enable.idempotence': True})
            p.init_transactions(30)
            def txn(prefix, commit):
                p.begin_transaction()
                for i in range(10):
                    p.produce(topic, key=b'%s-%d' % (prefix, i), value=b'%s-%d' % (prefix, i), partition=i % 2)
                if commit:
                    p.commit_transaction(30)
                else:
                    p.flush(30)
                    p.abort_transaction(30)
            txn(b'c1', True)
            txn(b'ab', False)
            txn(b'c2', True)
            def read(isolation):
                c = Consumer({'bootstrap.servers': bootstrap, 'group.id': 'py-' + uuid.uuid4().hex, 'isolation.level': isolation,
                              'enable.partition.eof': True, 'enable.auto.commit': False, 'auto.offset.reset': 'earliest'})
                c.assign([TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)])
                seen, eof = [], set()
                import time
                deadline = time.time() + 30
                while len(eof) < 2 and time.time() < deadline:
                    m = c.poll(0.5)
                    if m is None:
                        continue
                    if m.error():
                        if m.error().code() == -191:  # _PARTITION_EOF
                            eof.add(m.partition())
                            continue
                        raise KafkaException(m.error())
                    seen.append((m.partition(), m.offset(), m.value().decode()))
                c.close()
                assert len(eof) == 2, 'no end of partition reached with %s: %r' % (isolation, seen)
                return sorted(seen)
            committed = [v for _, _, v in read('read_committed')]
            uncommitted = [v for _, _, v in read('read_uncommitted')]
            for prefix in ('c1', 'ab', 'c2'):
                print(prefix, 'committed', sum(v.startswith(prefix + '-') for v in committed),
                      'uncommitted', sum(v.startswith(prefix + '-') for v in uncommitted))
            assert sorted(committed) == sorted(['c1-%d' % i for i in range(10)] + ['c2-%d' % i for i in range(10)]), committed
            assert sorted(uncommitted) == sorted(['%s-%d' % (x, i) for x in ('c1', 'ab', 'c2') for i in range(10)]), uncommitted
            print('OK', len(committed), len(uncommitted))
            """;
        var run = await ExternalProcess.RunPythonAsync(script, [Bootstrap, topic], timeout: TimeSpan.FromSeconds(120));
        _output.WriteLine(run.ToString());
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("OK 20 30", run.StandardOutput);
    }
}

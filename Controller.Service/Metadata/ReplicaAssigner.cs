namespace StreamPlatform.Controller.Metadata;

/// <summary>
/// Rack-unaware replica placement in the manner Kafka describes: brokers in id order, a random
/// start index for the first partition's leader, leaders advancing round-robin; followers sit at a
/// shift from the leader that grows by one after every full round of brokers, so the followers of
/// a broker's partitions are spread over the others rather than always being its neighbours.
/// </summary>
public static class ReplicaAssigner
{
    public static int[][] Assign(IReadOnlyList<int> brokerIds, int partitions, int replicationFactor, Random random)
    {
        var n = brokerIds.Count;
        if (n == 0 || replicationFactor <= 0 || replicationFactor > n) throw new ArgumentOutOfRangeException(nameof(replicationFactor));
        var brokers = brokerIds.Order().ToArray();
        var start = random.Next(n);
        var shift = random.Next(n);
        var result = new int[partitions][];
        for (var p = 0; p < partitions; p++)
        {
            if (p > 0 && p % n == 0) shift++;
            var first = (p + start) % n;
            var replicas = new int[replicationFactor];
            replicas[0] = brokers[first];
            for (var j = 0; j < replicationFactor - 1; j++)
            {
                // Offset 1..n-1 from the leader: never the leader itself, distinct for distinct j.
                var offset = 1 + (shift + j) % (n - 1);
                replicas[j + 1] = brokers[(first + offset) % n];
            }
            result[p] = replicas;
        }
        return result;
    }
}

using StreamPlatform.Controller.Metadata;

namespace StreamPlatform.UnitTests.Controller;

public class ReplicaAssignerTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(99)]
    public void Six_partitions_rf3_over_three_brokers_each_broker_leads_two_and_holds_six(int seed)
    {
        var assignment = ReplicaAssigner.Assign([3, 1, 2], 6, 3, new Random(seed));
        Assert.Equal(6, assignment.Length);
        foreach (var broker in new[] { 1, 2, 3 })
        {
            Assert.Equal(2, assignment.Count(r => r[0] == broker));
            Assert.Equal(6, assignment.Count(r => r.Contains(broker)));
        }
        Assert.All(assignment, r => Assert.Equal(3, r.Distinct().Count()));
    }

    [Fact]
    public void Followers_spread_over_other_brokers_and_leaders_round_robin()
    {
        var assignment = ReplicaAssigner.Assign([1, 2, 3, 4, 5], 10, 2, new Random(5));
        foreach (var broker in new[] { 1, 2, 3, 4, 5 })
        {
            Assert.Equal(2, assignment.Count(r => r[0] == broker));
            Assert.Equal(4, assignment.Count(r => r.Contains(broker)));
            // The shift grows after each round, so a leader's two partitions have different followers.
            var followers = assignment.Where(r => r[0] == broker).Select(r => r[1]).ToArray();
            Assert.NotEqual(followers[0], followers[1]);
        }
        Assert.All(assignment, r => Assert.NotEqual(r[0], r[1]));
    }

    [Fact]
    public void Same_seed_same_assignment()
        => Assert.Equal(ReplicaAssigner.Assign([1, 2, 3], 7, 2, new Random(3)), ReplicaAssigner.Assign([1, 2, 3], 7, 2, new Random(3)));
}

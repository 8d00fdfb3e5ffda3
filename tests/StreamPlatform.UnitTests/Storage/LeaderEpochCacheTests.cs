using Microsoft.Extensions.Logging.Abstractions;
using StreamPlatform.Broker.Storage;

namespace StreamPlatform.UnitTests.Storage;

public sealed class LeaderEpochCacheTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private string FilePath => Path.Combine(_dir.Path, LeaderEpochCache.FileName);

    private LeaderEpochCache Open() => LeaderEpochCache.Open(_dir.Path, NullLogger.Instance);

    [Fact]
    public void A_missing_file_gives_an_empty_cache_that_asks_for_a_rebuild()
    {
        var cache = Open();
        Assert.False(cache.LoadedFromFile);
        Assert.Empty(cache.Entries);
        Assert.Equal(-1, cache.LatestEpoch);
        Assert.Equal((-1, -1L), cache.EndOffsetFor(0, 10));
    }

    [Fact]
    public void Assign_writes_kafkas_format_and_reloads()
    {
        var cache = Open();
        cache.Assign(0, 0);
        cache.Assign(2, 10);
        cache.Assign(5, 25);
        Assert.Equal("0\n3\n0 0\n2 10\n5 25\n", File.ReadAllText(FilePath));
        Assert.False(File.Exists(FilePath + ".tmp"));

        var reloaded = Open();
        Assert.True(reloaded.LoadedFromFile);
        Assert.Equal([new EpochEntry(0, 0), new EpochEntry(2, 10), new EpochEntry(5, 25)], reloaded.Entries);
        Assert.Equal(5, reloaded.LatestEpoch);
    }

    [Fact]
    public void Assign_of_the_latest_epoch_at_a_later_offset_changes_nothing()
    {
        var cache = Open();
        cache.Assign(3, 5);
        File.Delete(FilePath);
        cache.Assign(3, 9);
        Assert.Equal([new EpochEntry(3, 5)], cache.Entries);
        Assert.False(File.Exists(FilePath)); // no rewrite for a no-op
    }

    [Fact]
    public void Assign_removes_conflicting_entries_as_kafka_does()
    {
        var cache = Open();
        cache.Assign(0, 0);
        cache.Assign(1, 10);
        // A higher epoch starting where epoch 1 started: epoch 1 had no batch, it goes.
        cache.Assign(2, 10);
        Assert.Equal([new EpochEntry(0, 0), new EpochEntry(2, 10)], cache.Entries);
        // A higher epoch starting below the latest start: every entry starting at/after it goes.
        cache.Assign(3, 5);
        Assert.Equal([new EpochEntry(0, 0), new EpochEntry(3, 5)], cache.Entries);
        // The latest epoch again at a lower offset: re-assigned there.
        cache.Assign(3, 2);
        Assert.Equal([new EpochEntry(0, 0), new EpochEntry(3, 2)], cache.Entries);
        // A lower epoch: entries with epochs at/above it go (Kafka's maybeTruncateNonMonotonicEntries).
        cache.Assign(1, 4);
        Assert.Equal([new EpochEntry(0, 0), new EpochEntry(1, 4)], cache.Entries);
        Assert.Equal(cache.Entries, Open().Entries);
        Assert.Throws<ArgumentOutOfRangeException>(() => cache.Assign(-1, 0));
    }

    [Fact]
    public void EndOffsetFor_follows_kafka()
    {
        var cache = Open();
        cache.Assign(1, 0);
        cache.Assign(2, 10);
        cache.Assign(5, 30);
        Assert.Equal((5, 42L), cache.EndOffsetFor(5, 42)); // latest: the log end
        Assert.Equal((2, 30L), cache.EndOffsetFor(2, 42)); // start of the next epoch
        Assert.Equal((2, 30L), cache.EndOffsetFor(4, 42)); // unknown epoch 4: the largest below it
        Assert.Equal((1, 10L), cache.EndOffsetFor(1, 42));
        Assert.Equal((0, 0L), cache.EndOffsetFor(0, 42)); // below the first epoch: (requested, first start)
        Assert.Equal((-1, -1L), cache.EndOffsetFor(6, 42)); // above every epoch
        Assert.Equal((-1, -1L), cache.EndOffsetFor(-1, 42));
    }

    [Fact]
    public void TruncateFromEnd_drops_entries_starting_at_or_after_the_offset()
    {
        var cache = Open();
        cache.Assign(0, 0);
        cache.Assign(2, 10);
        cache.Assign(5, 25);
        cache.TruncateFromEnd(26);
        Assert.Equal(3, cache.Entries.Count);
        cache.TruncateFromEnd(25);
        Assert.Equal([new EpochEntry(0, 0), new EpochEntry(2, 10)], cache.Entries);
        cache.TruncateFromEnd(3);
        Assert.Equal([new EpochEntry(0, 0)], cache.Entries);
        Assert.Equal(cache.Entries, Open().Entries);
    }

    [Fact]
    public void TruncateFromStart_moves_the_covering_entry_up()
    {
        var cache = Open();
        cache.Assign(0, 0);
        cache.Assign(2, 10);
        cache.Assign(5, 25);
        cache.TruncateFromStart(10);
        Assert.Equal([new EpochEntry(2, 10), new EpochEntry(5, 25)], cache.Entries);
        cache.TruncateFromStart(12);
        Assert.Equal([new EpochEntry(2, 12), new EpochEntry(5, 25)], cache.Entries);
        cache.TruncateFromStart(30);
        Assert.Equal([new EpochEntry(5, 30)], cache.Entries);
        cache.TruncateFromStart(1); // below the first entry: nothing to do
        Assert.Equal([new EpochEntry(5, 30)], cache.Entries);
        Assert.Equal(cache.Entries, Open().Entries);
    }

    [Fact]
    public void Clear_empties_the_cache_and_the_file()
    {
        var cache = Open();
        cache.Assign(0, 0);
        cache.Clear();
        Assert.Empty(cache.Entries);
        Assert.Equal("0\n0\n", File.ReadAllText(FilePath));
        var reloaded = Open();
        Assert.True(reloaded.LoadedFromFile);
        Assert.Empty(reloaded.Entries);
    }

    [Theory]
    [InlineData("")]
    [InlineData("1\n1\n0 0\n")] // unknown version
    [InlineData("0\n2\n0 0\n")] // fewer entries than declared
    [InlineData("0\n1\n0 x\n")]
    [InlineData("0\n2\n3 10\n2 20\n")] // epochs not increasing
    [InlineData("0\n2\n2 10\n3 10\n")] // start offsets not increasing
    [InlineData("0\n1\n-1 0\n")]
    public void A_damaged_file_gives_an_empty_cache_that_asks_for_a_rebuild(string content)
    {
        File.WriteAllText(FilePath, content);
        var cache = Open();
        Assert.False(cache.LoadedFromFile);
        Assert.Empty(cache.Entries);
        cache.Assign([new EpochEntry(0, 0), new EpochEntry(4, 7)]);
        Assert.Equal("0\n2\n0 0\n4 7\n", File.ReadAllText(FilePath));
    }
}

using Microsoft.Extensions.Logging.Abstractions;
using StreamPlatform.Controller.Storage;
using StreamPlatform.Protos.Grpc.Metadata;

namespace StreamPlatform.UnitTests.Controller;

public sealed class MetadataLogTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sp-ctl-log-" + Guid.NewGuid().ToString("N"));
    private string LogPath => Path.Combine(_dir, MetadataLog.FileName);

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static MetadataLogEntry Entry(long baseEpoch, string name) => new()
    {
        BaseEpoch = baseEpoch,
        Records = { new MetadataRecord { SetBrokerConfig = new SetBrokerConfigRecord { Name = name, Value = new string('v', 40) } } },
    };

    private List<MetadataLogEntry> Replay(out MetadataLog log)
    {
        var entries = new List<MetadataLogEntry>();
        log = MetadataLog.Open(_dir, entries.Add, NullLogger.Instance);
        return entries;
    }

    /// <summary>Writes three entries and returns the file offset where each ends.</summary>
    private long[] WriteThree()
    {
        var ends = new long[3];
        using var log = MetadataLog.Open(_dir, _ => { }, NullLogger.Instance);
        for (var i = 0; i < 3; i++)
        {
            log.Append(Entry(i, $"k{i}"));
            ends[i] = log.LengthBytes;
        }
        return ends;
    }

    [Fact]
    public void Appended_entries_replay_in_order()
    {
        WriteThree();
        var entries = Replay(out var log);
        using (log)
        {
            Assert.Equal(["k0", "k1", "k2"], entries.Select(e => e.Records[0].SetBrokerConfig.Name));
            Assert.Equal(0, log.TruncatedBytes);
            log.Append(Entry(3, "k3"));
        }
        Assert.Equal(4, Replay(out var again).Count);
        again.Dispose();
    }

    [Fact]
    public void A_file_cut_mid_record_replays_the_prefix_and_truncates_the_tail()
    {
        var ends = WriteThree();
        using (var f = new FileStream(LogPath, FileMode.Open)) f.SetLength(ends[1] + 11); // inside entry 3's payload
        var entries = Replay(out var log);
        using (log)
        {
            Assert.Equal(2, entries.Count);
            Assert.Equal(11, log.TruncatedBytes);
            Assert.Equal(ends[1], new FileInfo(LogPath).Length);
            // Appends continue after the last good entry.
            log.Append(Entry(2, "again"));
        }
        var after = Replay(out var l2);
        l2.Dispose();
        Assert.Equal(["k0", "k1", "again"], after.Select(e => e.Records[0].SetBrokerConfig.Name));
    }

    [Fact]
    public void A_cut_inside_a_frame_header_is_a_torn_tail_too()
    {
        var ends = WriteThree();
        using (var f = new FileStream(LogPath, FileMode.Open)) f.SetLength(ends[0] + 3);
        var entries = Replay(out var log);
        log.Dispose();
        Assert.Single(entries);
    }

    [Fact]
    public void A_flipped_byte_fails_the_checksum_and_everything_from_that_entry_is_dropped()
    {
        var ends = WriteThree();
        var bytes = File.ReadAllBytes(LogPath);
        bytes[ends[0] + MetadataLog.FrameHeaderBytes + 5] ^= 0x40; // inside entry 2's payload
        File.WriteAllBytes(LogPath, bytes);
        var entries = Replay(out var log);
        log.Dispose();
        Assert.Single(entries);
        Assert.Equal(ends[0], new FileInfo(LogPath).Length);
    }

    [Fact]
    public void An_impossible_length_is_treated_as_corruption()
    {
        var ends = WriteThree();
        var bytes = File.ReadAllBytes(LogPath);
        bytes[ends[1]] = 0x7F; // entry 3's length becomes ~2 GB
        File.WriteAllBytes(LogPath, bytes);
        var entries = Replay(out var log);
        log.Dispose();
        Assert.Equal(2, entries.Count);
    }

    [Fact]
    public void Cluster_id_is_22_chars_persisted_and_overridable()
    {
        var id = ClusterIdStore.LoadOrCreate(_dir, null, new Random(1));
        Assert.Equal(22, id.Length);
        Assert.DoesNotContain('=', id);
        Assert.Equal(id, ClusterIdStore.LoadOrCreate(_dir, null, new Random(2)));
        Assert.Equal("configured", ClusterIdStore.LoadOrCreate(_dir, "configured", new Random(2)));
    }
}

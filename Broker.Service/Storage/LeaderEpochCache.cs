using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;

namespace StreamPlatform.Broker.Storage;

/// <summary>One leader epoch and the first offset written in it.</summary>
public readonly record struct EpochEntry(int Epoch, long StartOffset);

/// <summary>
/// The leader-epoch checkpoint of one partition (Kafka's LeaderEpochFileCache): which leader
/// epoch each range of offsets was written in, so a replica that becomes follower can find where
/// its log diverged from the new leader's (OffsetForLeaderEpoch) and truncate there.
/// <para>File <see cref="FileName"/> in the partition directory, Kafka's format: line 1 the
/// version (<c>0</c>), line 2 the entry count, then one <c>epoch startOffset</c> line per entry.
/// Rewritten atomically (temp file, fsync, rename) on every change, so after a crash it holds the
/// old or the new entries, never half. Entries are strictly increasing in epoch and start offset.</para>
/// <para>Thread safety: changes are serialized by a lock; readers use an immutable snapshot.</para>
/// </summary>
public sealed class LeaderEpochCache
{
    public const string FileName = "leader-epoch-checkpoint";
    /// <summary>Kafka's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET.</summary>
    public const int UndefinedEpoch = -1;
    public const long UndefinedEpochOffset = -1;
    private const int FormatVersion = 0;
    /// <summary>
    /// A checkpoint declaring more entries than this is treated as damaged: one entry per leader
    /// change, so even a partition re-elected every second for a day stays far below it.
    /// </summary>
    public const int EntriesMax = 1_000_000;

    private readonly object _lock = new();
    private readonly string _path;
    private readonly ILogger _logger;
    private volatile EpochEntry[] _entries;

    private LeaderEpochCache(string path, EpochEntry[] entries, ILogger logger, bool loaded)
    {
        _path = path;
        _entries = entries;
        _logger = logger;
        LoadedFromFile = loaded;
    }

    /// <summary>
    /// False when the file was missing (a log from before leader epochs were checkpointed) or
    /// damaged: the cache then starts empty and the log rebuilds it from its batches' headers
    /// (<see cref="Assign(IEnumerable{EpochEntry})"/>). Kafka fails the log directory on a damaged
    /// checkpoint; the batches carry the same information, so rebuilding loses nothing.
    /// </summary>
    public bool LoadedFromFile { get; }

    /// <summary>Reads <see cref="FileName"/> in <paramref name="directory"/> (see <see cref="LoadedFromFile"/>).</summary>
    public static LeaderEpochCache Open(string directory, ILogger logger)
    {
        var path = Path.Combine(directory, FileName);
        if (!File.Exists(path)) return new LeaderEpochCache(path, [], logger, loaded: false);
        string? problem;
        EpochEntry[] entries;
        try
        {
            problem = TryParse(File.ReadAllLines(path), out entries);
        }
        catch (IOException ex)
        {
            problem = ex.Message;
            entries = [];
        }
        if (problem is null) return new LeaderEpochCache(path, entries, logger, loaded: true);
        logger.LogWarning("Leader-epoch checkpoint {Path} is damaged ({Problem}); rebuilding it from the log's batches", path, problem);
        return new LeaderEpochCache(path, [], logger, loaded: false);
    }

    /// <summary>Null when the lines are a valid checkpoint, else what is wrong.</summary>
    private static string? TryParse(string[] lines, out EpochEntry[] entries)
    {
        entries = [];
        if (lines.Length < 2) return "fewer than 2 lines";
        if (!int.TryParse(lines[0].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var version) || version != FormatVersion)
            return $"unknown version '{lines[0]}'";
        if (!int.TryParse(lines[1].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var count) || count > EntriesMax)
            return $"invalid entry count '{lines[1]}'";
        var rest = lines.Skip(2).Where(l => l.Length > 0).ToArray();
        if (rest.Length != count) return $"{rest.Length} entries, {count} declared";
        var parsed = new EpochEntry[count];
        for (var i = 0; i < count; i++)
        {
            var parts = rest[i].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length != 2
                || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var epoch)
                || !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var start))
                return $"invalid entry '{rest[i]}'";
            if (i > 0 && (epoch <= parsed[i - 1].Epoch || start <= parsed[i - 1].StartOffset))
                return $"entry '{rest[i]}' does not increase";
            parsed[i] = new EpochEntry(epoch, start);
        }
        entries = parsed;
        return null;
    }

    /// <summary>The entries, oldest first (a snapshot).</summary>
    public IReadOnlyList<EpochEntry> Entries => _entries;

    /// <summary>The latest epoch with an entry; -1 when empty.</summary>
    public int LatestEpoch => _entries is { Length: > 0 } e ? e[^1].Epoch : UndefinedEpoch;

    /// <summary>
    /// Records that <paramref name="epoch"/> starts at <paramref name="startOffset"/>. As Kafka's
    /// assign: nothing changes when <paramref name="epoch"/> is the latest epoch and the offset
    /// is not below its start; otherwise every entry with an epoch &gt;= <paramref name="epoch"/>
    /// or a start offset &gt;= <paramref name="startOffset"/> is removed first (they conflict
    /// with the new one: the log was rewritten from there), then the entry is added. The log only
    /// calls this with an epoch above the latest (a batch of a new epoch).
    /// </summary>
    public void Assign(int epoch, long startOffset) => Assign([new EpochEntry(epoch, startOffset)]);

    /// <summary>Several <see cref="Assign(int, long)"/> in order, with one file write.</summary>
    public void Assign(IEnumerable<EpochEntry> entries)
    {
        lock (_lock)
        {
            var list = _entries.ToList();
            var changed = false;
            foreach (var entry in entries)
            {
                ArgumentOutOfRangeException.ThrowIfNegative(entry.Epoch);
                ArgumentOutOfRangeException.ThrowIfNegative(entry.StartOffset);
                if (list.Count > 0 && list[^1].Epoch == entry.Epoch && entry.StartOffset >= list[^1].StartOffset) continue;
                var removed = 0;
                while (list.Count > 0 && (list[^1].Epoch >= entry.Epoch || list[^1].StartOffset >= entry.StartOffset))
                {
                    // Removing an entry that starts where the new one does is routine (no batch was
                    // written in it); anything else means the log was rewritten.
                    if (list[^1].StartOffset != entry.StartOffset) removed++;
                    list.RemoveAt(list.Count - 1);
                }
                if (removed > 0)
                    _logger.LogWarning("Leader epoch {Epoch} at {Offset} in {Path} removed {Count} conflicting entries", entry.Epoch, entry.StartOffset, _path, removed);
                list.Add(entry);
                changed = true;
            }
            if (changed) Publish([.. list]);
        }
    }

    /// <summary>
    /// Kafka's endOffsetFor: the largest epoch &lt;= <paramref name="requestedEpoch"/> and its end
    /// offset, which is the start offset of the next higher epoch, or
    /// <paramref name="logEndOffset"/> when the requested epoch is the latest.
    /// (-1, -1) when <paramref name="requestedEpoch"/> is -1 or above every epoch known (or the
    /// cache is empty). When it is below the first epoch, Kafka answers (requestedEpoch, first
    /// start offset): the data before it is gone, and the follower must not keep more than that.
    /// </summary>
    public (int Epoch, long EndOffset) EndOffsetFor(int requestedEpoch, long logEndOffset)
    {
        var entries = _entries;
        if (requestedEpoch == UndefinedEpoch || entries.Length == 0) return (UndefinedEpoch, UndefinedEpochOffset);
        if (entries[^1].Epoch == requestedEpoch) return (requestedEpoch, logEndOffset);
        // First entry with an epoch above the requested one.
        var higher = 0;
        while (higher < entries.Length && entries[higher].Epoch <= requestedEpoch) higher++;
        if (higher == entries.Length) return (UndefinedEpoch, UndefinedEpochOffset);
        if (higher == 0) return (requestedEpoch, entries[0].StartOffset);
        return (entries[higher - 1].Epoch, entries[higher].StartOffset);
    }

    /// <summary>Removes the entries starting at or after <paramref name="endOffset"/> (after the log was truncated there).</summary>
    public void TruncateFromEnd(long endOffset)
    {
        lock (_lock)
        {
            var entries = _entries;
            var keep = entries.Length;
            while (keep > 0 && entries[keep - 1].StartOffset >= endOffset) keep--;
            if (keep < entries.Length) Publish(entries[..keep]);
        }
    }

    /// <summary>
    /// The log start moved up to <paramref name="startOffset"/>: the entry covering it now starts
    /// there and the entries before it go (Kafka's truncateFromStart; an entry starting exactly
    /// at <paramref name="startOffset"/> stays as it is).
    /// </summary>
    public void TruncateFromStart(long startOffset)
    {
        lock (_lock)
        {
            var entries = _entries;
            var covering = -1;
            while (covering + 1 < entries.Length && entries[covering + 1].StartOffset <= startOffset) covering++;
            if (covering < 0 || (covering == 0 && entries[0].StartOffset == startOffset)) return;
            var kept = entries[covering..];
            kept[0] = kept[0] with { StartOffset = startOffset };
            Publish(kept);
        }
    }

    /// <summary>Removes every entry (the log was emptied).</summary>
    public void Clear()
    {
        lock (_lock)
        {
            if (_entries.Length > 0 || !File.Exists(_path)) Publish([]);
        }
    }

    /// <summary>Writes the checkpoint even when nothing changed (a rebuilt or new cache).</summary>
    public void WriteCheckpoint()
    {
        lock (_lock) Publish(_entries);
    }

    // Under _lock. File first: if the write fails, memory keeps the old entries, consistent with disk.
    private void Publish(EpochEntry[] entries)
    {
        var text = new StringBuilder();
        text.Append(FormatVersion.ToString(CultureInfo.InvariantCulture)).Append('\n');
        text.Append(entries.Length.ToString(CultureInfo.InvariantCulture)).Append('\n');
        foreach (var e in entries)
            text.Append(e.Epoch.ToString(CultureInfo.InvariantCulture)).Append(' ').Append(e.StartOffset.ToString(CultureInfo.InvariantCulture)).Append('\n');
        PartitionLog.AtomicWrite(_path, text.ToString());
        _entries = entries;
    }
}

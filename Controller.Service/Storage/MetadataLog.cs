using System.Buffers.Binary;
using Google.Protobuf;
using Microsoft.Extensions.Logging;
using StreamPlatform.Protos.Grpc.Metadata;
using StreamPlatform.Protos.Records;

namespace StreamPlatform.Controller.Storage;

/// <summary>
/// The durable metadata log: an append-only file of frames
/// <c>[int32 BE payload length][uint32 BE CRC-32C of payload][payload = MetadataLogEntry protobuf]</c>.
/// Protobuf because the entries must replay across versions (fields are only added) and because
/// the same bytes become Raft log entries later. An append returns after fsync: that is the
/// commit point. On open the file is scanned; a frame that is cut short, has an impossible length,
/// a bad checksum or an unparsable payload ends the log, and everything from it on is truncated
/// (a crash mid-append leaves exactly such a torn tail; nothing after it was ever acknowledged).
/// Not thread-safe: the controller serialises appends.
/// </summary>
public sealed class MetadataLog : IDisposable
{
    public const string FileName = "metadata.log";
    public const int FrameHeaderBytes = 8;
    /// <summary>Largest entry accepted; bigger lengths on replay are treated as corruption.</summary>
    public const int DefaultMaxEntryBytes = 64 * 1024 * 1024;

    private readonly FileStream _file;
    private readonly int _maxEntryBytes;
    private readonly ILogger _logger;
    private bool _failed;

    private MetadataLog(FileStream file, int maxEntryBytes, ILogger logger)
    {
        _file = file;
        _maxEntryBytes = maxEntryBytes;
        _logger = logger;
    }

    public string Path => _file.Name;
    /// <summary>Bytes of committed frames (the file length after open/truncation and each append).</summary>
    public long LengthBytes { get; private set; }
    public long EntryCount { get; private set; }
    /// <summary>Bytes cut off a torn or corrupt tail when the log was opened.</summary>
    public long TruncatedBytes { get; private set; }

    /// <summary>Opens (or creates) the log, hands every good entry to <paramref name="replay"/> in order and truncates the rest.</summary>
    public static MetadataLog Open(string directory, Action<MetadataLogEntry> replay, ILogger logger, int maxEntryBytes = DefaultMaxEntryBytes)
    {
        Directory.CreateDirectory(directory);
        var path = System.IO.Path.Combine(directory, FileName);
        var file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, bufferSize: 0, FileOptions.None);
        try
        {
            var log = new MetadataLog(file, maxEntryBytes, logger);
            log.Replay(replay);
            return log;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private void Replay(Action<MetadataLogEntry> replay)
    {
        var fileLength = _file.Length;
        long good = 0;
        var header = new byte[FrameHeaderBytes];
        byte[] payload = [];
        _file.Position = 0;
        string? stopReason = null;
        while (good < fileLength)
        {
            if (fileLength - good < FrameHeaderBytes) { stopReason = "a cut-short frame header"; break; }
            _file.ReadExactly(header);
            var length = BinaryPrimitives.ReadInt32BigEndian(header);
            var crc = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(4));
            if (length < 0 || length > _maxEntryBytes) { stopReason = $"an impossible frame length {length}"; break; }
            if (fileLength - good - FrameHeaderBytes < length) { stopReason = "a cut-short frame payload"; break; }
            if (payload.Length < length) payload = new byte[Math.Max(length, payload.Length * 2)];
            _file.ReadExactly(payload, 0, length);
            var span = payload.AsSpan(0, length);
            if (Crc32C.Compute(span) != crc) { stopReason = "a checksum mismatch"; break; }
            MetadataLogEntry entry;
            try
            {
                entry = MetadataLogEntry.Parser.ParseFrom(span);
            }
            catch (InvalidProtocolBufferException)
            {
                stopReason = "an unparsable entry";
                break;
            }
            // A checksummed entry the state machine rejects is not a torn write but a bug or a
            // foreign file: the exception propagates and the controller refuses to start rather
            // than silently dropping committed metadata.
            replay(entry);
            good += FrameHeaderBytes + length;
            EntryCount++;
        }
        if (good < fileLength)
        {
            TruncatedBytes = fileLength - good;
            _logger.LogWarning("Metadata log {Path}: {Reason} at byte {Offset}; truncating {Bytes} bytes of torn or corrupt tail",
                _file.Name, stopReason, good, TruncatedBytes);
            _file.SetLength(good);
            _file.Flush(flushToDisk: true);
        }
        LengthBytes = good;
        _file.Position = good;
    }

    /// <summary>Appends one entry and fsyncs it. When this returns the entry is committed.</summary>
    public void Append(MetadataLogEntry entry)
    {
        if (_failed) throw new IOException("The metadata log failed an earlier append and refuses writes until restart.");
        var length = entry.CalculateSize();
        if (length > _maxEntryBytes) throw new InvalidOperationException($"Metadata log entry of {length} bytes exceeds the {_maxEntryBytes}-byte limit.");
        var frame = new byte[FrameHeaderBytes + length];
        entry.WriteTo(frame.AsSpan(FrameHeaderBytes));
        BinaryPrimitives.WriteInt32BigEndian(frame, length);
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(4), Crc32C.Compute(frame.AsSpan(FrameHeaderBytes)));
        try
        {
            _file.Position = LengthBytes;
            _file.Write(frame);
            _file.Flush(flushToDisk: true);
        }
        catch (Exception ex)
        {
            // Roll the file back to the last commit so a half-written frame never precedes a
            // later good one. If even that fails, stop writing: replay will cut the tail.
            try
            {
                _file.SetLength(LengthBytes);
                _file.Flush(flushToDisk: true);
            }
            catch (Exception rollbackEx)
            {
                _failed = true;
                _logger.LogCritical(rollbackEx, "Metadata log {Path} could not roll back a failed append; refusing further writes", _file.Name);
            }
            throw new IOException($"Appending to the metadata log failed: {ex.Message}", ex);
        }
        LengthBytes += frame.Length;
        EntryCount++;
    }

    /// <summary>Empties the log after a snapshot has made its entries redundant.</summary>
    public void Reset()
    {
        _file.SetLength(0);
        _file.Flush(flushToDisk: true);
        LengthBytes = 0;
        EntryCount = 0;
    }

    public void Dispose() => _file.Dispose();
}

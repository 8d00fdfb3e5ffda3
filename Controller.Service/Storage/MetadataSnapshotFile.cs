using System.Buffers.Binary;
using Google.Protobuf;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Records;

namespace StreamPlatform.Controller.Storage;

/// <summary>
/// <c>metadata.snapshot</c>: the whole state at one epoch, so the log can be emptied (compaction).
/// One frame in the log's format, <c>[int32 BE length][uint32 BE CRC-32C][payload]</c>, whose payload
/// is the wire <see cref="MetadataSnapshot"/> — it already holds every piece of state (epochs, fencing,
/// partition epochs, configs) and evolves by added fields like the log. Written to a temp file,
/// fsynced and renamed over the old one, so a crash leaves either the old or the new snapshot.
/// A snapshot that fails its checksum is not skipped: the log before it is gone, so starting
/// without it would silently lose metadata; the controller refuses to start instead.
/// </summary>
public static class MetadataSnapshotFile
{
    public const string FileName = "metadata.snapshot";

    public static MetadataSnapshot? TryLoad(string directory)
    {
        var path = Path.Combine(directory, FileName);
        if (!File.Exists(path)) return null;
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < MetadataLog.FrameHeaderBytes) throw new InvalidDataException($"Metadata snapshot {path} is truncated.");
        var length = BinaryPrimitives.ReadInt32BigEndian(bytes);
        var crc = BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(4));
        if (length < 0 || length != bytes.Length - MetadataLog.FrameHeaderBytes) throw new InvalidDataException($"Metadata snapshot {path} has a bad length.");
        var payload = bytes.AsSpan(MetadataLog.FrameHeaderBytes);
        if (Crc32C.Compute(payload) != crc) throw new InvalidDataException($"Metadata snapshot {path} fails its checksum.");
        return MetadataSnapshot.Parser.ParseFrom(payload);
    }

    public static void Write(string directory, MetadataSnapshot snapshot)
    {
        var path = Path.Combine(directory, FileName);
        var temp = path + ".tmp";
        var length = snapshot.CalculateSize();
        var frame = new byte[MetadataLog.FrameHeaderBytes + length];
        snapshot.WriteTo(frame.AsSpan(MetadataLog.FrameHeaderBytes));
        BinaryPrimitives.WriteInt32BigEndian(frame, length);
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(4), Crc32C.Compute(frame.AsSpan(MetadataLog.FrameHeaderBytes)));
        using (var f = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0))
        {
            f.Write(frame);
            f.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
    }
}

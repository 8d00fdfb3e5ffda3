namespace StreamPlatform.Controller.Storage;

/// <summary>
/// The cluster id: Kafka style (URL-safe base64 of a random 16-byte uuid, 22 chars, no padding).
/// Generated once and kept in <c>cluster.id</c> in the data dir (written to a temp file, fsynced,
/// then renamed, so a crash never leaves a half-written id). A configured id overrides the file.
/// </summary>
public static class ClusterIdStore
{
    public const string FileName = "cluster.id";

    public static string LoadOrCreate(string directory, string? configured, Random random)
    {
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, FileName);
        if (!string.IsNullOrWhiteSpace(configured)) return configured.Trim();
        if (File.Exists(path))
        {
            var stored = File.ReadAllText(path).Trim();
            if (stored.Length > 0) return stored;
        }
        var id = Generate(random);
        var temp = path + ".tmp";
        using (var f = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            var bytes = System.Text.Encoding.ASCII.GetBytes(id);
            f.Write(bytes);
            f.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
        return id;
    }

    public static string Generate(Random random)
    {
        Span<byte> bytes = stackalloc byte[16];
        random.NextBytes(bytes);
        bytes[6] = (byte)((bytes[6] & 0x0F) | 0x40); // uuid version 4
        bytes[8] = (byte)((bytes[8] & 0x3F) | 0x80); // RFC 4122 variant
        return Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }
}

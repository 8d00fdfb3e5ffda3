namespace StreamPlatform.AppHost.Orchestration;

/// <summary>
/// The cluster's data root. A marker file says "this folder is ours", so --clean never wipes a
/// folder the AppHost did not create; a lock file held open with FileShare.None keeps two
/// AppHosts from running on the same data at once.
/// </summary>
public sealed class DataDirectory : IDisposable
{
    public const string MarkerFileName = ".streamplatform-data";
    public const string LockFileName = ".apphost.lock";

    private readonly FileStream _lock;

    private DataDirectory(string path, FileStream lockStream)
    {
        Path = path;
        _lock = lockStream;
    }

    public string Path { get; }

    /// <summary>Creates the folder if needed, marks it and takes the lock.</summary>
    public static DataDirectory Acquire(string path)
    {
        var full = System.IO.Path.GetFullPath(path);
        Directory.CreateDirectory(full);
        var marker = System.IO.Path.Combine(full, MarkerFileName);
        if (!File.Exists(marker))
            File.WriteAllText(marker, "StreamPlatform cluster data (created by the AppHost; safe to delete with --clean).\n");
        try
        {
            var stream = new FileStream(System.IO.Path.Combine(full, LockFileName), FileMode.OpenOrCreate,
                FileAccess.ReadWrite, FileShare.None);
            return new DataDirectory(full, stream);
        }
        catch (IOException e)
        {
            throw new OrchestrationException(
                $"The data directory {full} is in use by another AppHost (or test). Stop it, or use another --data-dir.", e);
        }
    }

    /// <summary>
    /// Deletes the folder's contents. Refuses a non-empty folder without the marker, so a typo in
    /// --data-dir cannot wipe someone's files.
    /// </summary>
    public static void Clean(string path)
    {
        var full = System.IO.Path.GetFullPath(path);
        if (!Directory.Exists(full))
            return;
        var hasEntries = Directory.EnumerateFileSystemEntries(full).Any();
        if (hasEntries && !File.Exists(System.IO.Path.Combine(full, MarkerFileName)))
        {
            throw new OrchestrationException(
                $"Refusing to clean {full}: it is not empty and has no {MarkerFileName} marker, so the AppHost did not create it.");
        }
        foreach (var dir in Directory.EnumerateDirectories(full))
            Directory.Delete(dir, recursive: true);
        foreach (var file in Directory.EnumerateFiles(full))
        {
            if (System.IO.Path.GetFileName(file) != MarkerFileName)
                File.Delete(file);
        }
    }

    public void Dispose() => _lock.Dispose();
}

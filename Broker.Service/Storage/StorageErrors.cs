namespace StreamPlatform.Broker.Storage;

/// <summary>Classifies I/O failures of the log's files.</summary>
public static class StorageErrors
{
    // On Unix .NET puts the errno into IOException.HResult; on Windows it is the HRESULT of the
    // Win32 error (0x8007xxxx).
    private const int Enospc = 28;
    private const int Edquot = 122; // disk quota exceeded: full, as far as this process is concerned
    private const int ErrorHandleDiskFull = 39;
    private const int ErrorDiskFull = 112;

    /// <summary>True when <paramref name="ex"/> says the device (or the quota) has no space left.</summary>
    public static bool IsDiskFull(IOException ex)
    {
        var code = ex.HResult;
        if (OperatingSystem.IsWindows()) return (uint)code >> 16 == 0x8007 && (code & 0xFFFF) is ErrorHandleDiskFull or ErrorDiskFull;
        return code is Enospc or Edquot;
    }
}

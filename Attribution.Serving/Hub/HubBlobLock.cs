namespace Attribution.Hub;

using Microsoft.Extensions.Logging;

/// <summary>
/// One writer per blob, across processes: the blob's lock file held open with FileShare.None
/// (a flock, as Python's filelock takes), so huggingface_hub and this client wait for each other.
/// </summary>
internal static class HubBlobLock
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan NoticeInterval = TimeSpan.FromSeconds(30);

    /// <summary>Waits for the lock, saying now and then who is waiting; disposing the stream releases it.</summary>
    public static async Task<FileStream> AcquireAsync(string lockPath, string what, ILogger logger, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(lockPath)!);
        var waited = System.Diagnostics.Stopwatch.StartNew();
        var nextNotice = TimeSpan.Zero;
        while (true)
        {
            try
            {
                return new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException e) when (IsLockContention(e))
            {
                if (waited.Elapsed >= nextNotice)
                {
                    logger.LogInformation("Another download of {What} holds {Lock}; waiting", what, lockPath);
                    nextNotice += NoticeInterval;
                }
                await Task.Delay(PollInterval, cancellationToken);
            }
        }
    }

    /// <summary>EWOULDBLOCK from flock (Linux 11, macOS 35), or a Windows sharing/lock violation.</summary>
    private static bool IsLockContention(IOException e) =>
        e.HResult is 11 or 35 || (e.HResult & 0xFFFF) is 32 or 33;
}

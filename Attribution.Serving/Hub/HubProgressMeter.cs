namespace Attribution.Hub;

using Microsoft.Extensions.Logging;

/// <summary>
/// Progress of one blob: the callback at every 5 %, the log at most every ProgressLogInterval,
/// and one closing line with the rate.
/// </summary>
internal sealed class HubProgressMeter(
    HubFile file, long? total, IProgress<HubProgress>? progress, ILogger logger, TimeSpan logInterval)
{
    private readonly System.Diagnostics.Stopwatch clock = System.Diagnostics.Stopwatch.StartNew();
    private long firstByte = -1;
    private int lastStep = -1;
    private TimeSpan lastLog;

    public void Begin(long offset)
    {
        if (firstByte < 0)
        {
            firstByte = offset;
        }
        Report(offset);
    }

    public void Report(long done)
    {
        var step = total is > 0 ? (int)(done * 20 / total.Value) : -1;
        if (step > lastStep)
        {
            lastStep = step;
            progress?.Report(new HubProgress(file.RepoId, file.PathInRepo, done, total, clock.Elapsed));
        }
        if (clock.Elapsed - lastLog >= logInterval)
        {
            lastLog = clock.Elapsed;
            logger.LogInformation("{Repo}/{Path}: {Percent} ({Done} of {Total}, {Rate}/s)",
                file.RepoId, file.PathInRepo, Percent(done), Bytes(done), Bytes(total), Bytes(Rate(done)));
        }
    }

    public void Finish(long done)
    {
        if (lastStep < 20)
        {
            progress?.Report(new HubProgress(file.RepoId, file.PathInRepo, done, total ?? done, clock.Elapsed));
        }
        logger.LogInformation("Downloaded {Repo}/{Path}: {Size} in {Seconds:F1} s ({Rate}/s)",
            file.RepoId, file.PathInRepo, Bytes(done), clock.Elapsed.TotalSeconds, Bytes(Rate(done)));
    }

    public static string Bytes(long? bytes) => bytes switch
    {
        null => "unknown size",
        < 1L << 10 => $"{bytes} B",
        < 1L << 20 => $"{bytes / 1024.0:F1} KiB",
        < 1L << 30 => $"{bytes / (1024.0 * 1024):F1} MiB",
        _ => $"{bytes / (1024.0 * 1024 * 1024):F2} GiB",
    };

    private string Percent(long done) => total is > 0 ? $"{100.0 * done / total.Value:F0}%" : "?%";

    private long Rate(long done) =>
        (long)(Math.Max(0, done - Math.Max(firstByte, 0)) / Math.Max(clock.Elapsed.TotalSeconds, 1e-3));
}

namespace Attribution.Hub;

using System.Buffers;
using System.Net;
using Microsoft.Extensions.Logging;

/// <summary>
/// Fetches one blob into blobs/{etag}: under the blob's lock, GET into blobs/{etag}.incomplete,
/// resuming with Range after each break (with a growing pause), then verify the size and rename
/// into place, so readers see the whole blob or none.
/// </summary>
internal sealed class HubBlobDownloader(HubHttp http, HubOptions options, HubCache cache, ILogger logger)
{
    private const int BufferSize = 1 << 20;
    private static readonly TimeSpan MaxResumeDelay = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Fetches the blob into blobs/{etag} under the blob's lock. Returns false when another process
    /// finished it while we waited for the lock.
    /// </summary>
    public async Task<bool> DownloadAsync(
        HubFile file, HubFileMetadata metadata, string blob, IProgress<HubProgress>? progress, CancellationToken cancellationToken)
    {
        var what = $"{file.RepoId}/{file.PathInRepo}";
        Directory.CreateDirectory(Path.GetDirectoryName(blob)!);
        await using var blobLock = await HubBlobLock.AcquireAsync(cache.LockPath(file.RepoId, metadata.Etag), what, logger, cancellationToken);
        if (HubCache.IsUsableFile(blob))
        {
            return false;
        }

        // 1. Transfer, resuming from the partial file after each break, up to MaxResumeAttempts times.
        var incomplete = blob + ".incomplete";
        var meter = new HubProgressMeter(file, metadata.Size, progress, logger, options.ProgressLogInterval);
        logger.LogInformation("Downloading {What} at commit {Commit} ({Size}) from {Host}",
            what, file.CommitHash, HubProgressMeter.Bytes(metadata.Size), metadata.Location.Host);
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await TransferAsync(file, metadata, incomplete, meter, cancellationToken);
                break;
            }
            catch (Exception e) when (IsBrokenTransfer(e, cancellationToken))
            {
                var have = LengthOf(incomplete);
                if (attempt >= options.MaxResumeAttempts)
                {
                    throw new HubException(
                        HubErrorKind.Interrupted,
                        $"Download of {what} broke off after {have} of {HubProgressMeter.Bytes(metadata.Size)} ({e.Message}). "
                        + $"The partial file {incomplete} is kept; the next call resumes it.",
                        innerException: e);
                }
                var delay = ResumeDelay(attempt);
                logger.LogWarning("Download of {What} broke off at {Bytes} bytes ({Reason}); resuming in {Delay} s (attempt {Attempt} of {Max})",
                    what, have, e.Message, delay.TotalSeconds, attempt + 1, options.MaxResumeAttempts);
                await Task.Delay(delay, cancellationToken);
            }
        }

        // 2. Verify the size, then publish atomically: readers see the whole blob or none.
        var length = LengthOf(incomplete);
        if (metadata.Size is long expected && length != expected)
        {
            File.Delete(incomplete);
            throw new HubException(
                HubErrorKind.InvalidResponse,
                $"Download of {what} produced {length} bytes but the hub announced {expected}; the file was discarded, retry the download.");
        }
        File.Move(incomplete, blob, overwrite: true);
        meter.Finish(length);
        return true;
    }

    /// <summary>One GET of the rest of the blob, appended to the partial file.</summary>
    private async Task TransferAsync(
        HubFile file, HubFileMetadata metadata, string incomplete, HubProgressMeter meter, CancellationToken cancellationToken)
    {
        // 1. Resume from what is on disk, unless it is already whole or longer than the file can be.
        var offset = LengthOf(incomplete);
        if (metadata.Size is long size && offset >= size)
        {
            if (offset == size)
            {
                return;
            }
            File.Delete(incomplete);
            offset = 0;
        }

        // 2. Ask for the rest. A range the server cannot satisfy means the partial file is no good.
        //    Silence longer than ReadTimeout, for the headers or any later read, counts as a break.
        using var stall = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        stall.CancelAfter(options.ReadTimeout);
        var response = await http.SendAsync(HttpMethod.Get, metadata.Location, offset > 0 ? offset : null, followOtherHosts: true, stall.Token);
        if (offset > 0 && response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
        {
            response.Dispose();
            File.Delete(incomplete);
            offset = 0;
            stall.CancelAfter(options.ReadTimeout);
            response = await http.SendAsync(HttpMethod.Get, metadata.Location, rangeStart: null, followOtherHosts: true, stall.Token);
        }

        using (response)
        {
            var requested = response.RequestMessage?.RequestUri ?? metadata.Location;
            if (!response.IsSuccessStatusCode)
            {
                var fromHub = HubHttp.SameOrigin(requested, options.Endpoint);
                throw HubErrors.FromResponse(response, file.RepoId, file.CommitHash, file.PathInRepo, fromHub, fromHub && options.Token is not null);
            }

            // 3. Append only to a 206 that starts where the file ends; a 200 to a range request is the
            //    whole file again, so start over.
            var partial = response.StatusCode == HttpStatusCode.PartialContent;
            if (partial && (offset == 0 || response.Content.Headers.ContentRange?.From != offset))
            {
                throw new HubException(
                    HubErrorKind.InvalidResponse,
                    $"{requested.Host} sent bytes {response.Content.Headers.ContentRange} of {file.PathInRepo} but bytes {offset}- were asked for.");
            }
            if (offset > 0 && !partial)
            {
                logger.LogInformation("{Host} ignored the range request; downloading {Path} from the start", requested.Host, file.PathInRepo);
                offset = 0;
            }

            // 4. Stream the body to disk.
            var done = offset;
            meter.Begin(offset);
            var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
            try
            {
                await using var output = new FileStream(
                    incomplete, partial ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0, useAsync: true);
                await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
                while (true)
                {
                    stall.CancelAfter(options.ReadTimeout);
                    var read = await body.ReadAsync(buffer.AsMemory(0, BufferSize), stall.Token);
                    if (read == 0)
                    {
                        break;
                    }
                    await output.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                    done += read;
                    meter.Report(done);
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            // 5. A body that ended early is a break to resume, not a finished file.
            if (metadata.Size is long expected && done < expected)
            {
                throw new IOException($"the body ended after {done} of {expected} bytes");
            }
        }
    }

    /// <summary>ResumeDelay doubled after each break, up to MaxResumeDelay.</summary>
    private TimeSpan ResumeDelay(int attempt) =>
        TimeSpan.FromTicks(Math.Min(options.ResumeDelay.Ticks << Math.Min(attempt, 16), MaxResumeDelay.Ticks));

    /// <summary>A dropped connection, a short body or a stalled read: worth resuming; the caller's cancellation is not.</summary>
    private static bool IsBrokenTransfer(Exception e, CancellationToken cancellationToken) =>
        e is IOException
        || (e is HttpRequestException { StatusCode: null })
        || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested);

    private static long LengthOf(string path) => File.Exists(path) ? new FileInfo(path).Length : 0;
}

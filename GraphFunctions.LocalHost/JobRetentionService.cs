namespace GraphFunctions.LocalHost;

using GraphFunctions.Orchestration;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

/// <summary>The local host's retention: orphaned workspace folders at start, then expired jobs every hour.</summary>
internal sealed class JobRetentionService(JobRetention retention, DurableTaskClient client, ILogger<JobRetentionService> log, TimeProvider? clock = null) : BackgroundService
{
    private static readonly TimeSpan Period = TimeSpan.FromHours(1);
    private readonly TimeProvider clock = clock ?? TimeProvider.System;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();   // never delay the host's start
        await Housekeep(() => retention.RemoveOrphansAsync(client, stoppingToken));
        using var timer = new PeriodicTimer(Period, clock);
        do
        {
            await Housekeep(() => retention.PurgeExpiredAsync(client, clock.GetUtcNow(), stoppingToken));
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// <summary>Housekeeping that fails is logged and tried again next hour; it never stops the host.</summary>
    private async Task Housekeep(Func<Task<int>> step)
    {
        try
        {
            await step();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            log.LogWarning(e, "Job retention failed; trying again in {Period}", Period);
        }
    }
}

namespace GraphFunctions.Orchestration;

using GraphFunctions.Storage;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;

/// <summary>
/// Keeps finished jobs for the retention setting (JOB_RETENTION_HOURS), then purges their Durable
/// history and workspace files, so neither the task hub nor the workspace grows with every job;
/// at start it also removes workspace folders that no job owns (left by a crash).
/// </summary>
public sealed class JobRetention(IWorkspaceStore workspace, TimeSpan retention, ILogger<JobRetention> log)
{
    private static readonly OrchestrationRuntimeStatus[] Finished =
        [OrchestrationRuntimeStatus.Completed, OrchestrationRuntimeStatus.Failed, OrchestrationRuntimeStatus.Terminated];

    /// <summary>Purges the jobs that finished before <paramref name="now"/> − retention; returns how many.</summary>
    public async Task<int> PurgeExpiredAsync(DurableTaskClient client, DateTimeOffset now, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        var cutoff = now - retention;
        int purged = 0;
        var query = new OrchestrationQuery { Statuses = Finished, PageSize = 100 };
        var expired = new List<string>();
        await foreach (var instance in client.GetAllInstancesAsync(query).WithCancellation(cancellation))
        {
            if (instance.LastUpdatedAt < cutoff) expired.Add(instance.InstanceId);
        }
        foreach (string id in expired)
        {
            await client.PurgeInstanceAsync(id, cancellation: cancellation);
            await workspace.DeletePrefixAsync(JobKeys.Prefix(id), cancellation);
            purged++;
        }
        if (purged > 0) log.LogInformation("Purged {Count} graph jobs finished before {Cutoff}", purged, cutoff);
        return purged;
    }

    /// <summary>Deletes the workspace folders of jobs the task hub does not know; returns how many.</summary>
    public async Task<int> RemoveOrphansAsync(DurableTaskClient client, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        var jobIds = (await workspace.ListAsync(JobKeys.AllJobs, cancellation))
            .Select(key => key[JobKeys.AllJobs.Length..].Split('/')[0]).Distinct(StringComparer.Ordinal).ToList();
        int removed = 0;
        foreach (string id in jobIds)
        {
            if (await client.GetInstanceAsync(id, cancellation) is not null) continue;
            await workspace.DeletePrefixAsync(JobKeys.Prefix(id), cancellation);
            removed++;
        }
        if (removed > 0) log.LogInformation("Removed {Count} workspace folders without a job", removed);
        return removed;
    }
}

namespace GraphFunctions.LocalHost;

using System.Collections;
using System.Collections.Concurrent;
using System.Reflection;
using DurableTask.AzureStorage;
using DurableTask.Core;
using Microsoft.Extensions.Logging;

/// <summary>
/// The Azure Storage provider as the sidecar's dispatchers use it, with two repairs of activity
/// work items.
/// <para>
/// <b>Locks are renewed.</b> A taken activity message stays hidden for the provider's visibility
/// timeout (<see cref="DurableHosting.MessageVisibility"/>); Durable's own dispatcher renews it while
/// the activity runs, the sidecar's does not. An activity that ran or waited for the accelerator
/// longer than that was taken again and ran a second time after the first had finished: a
/// 2,048-token graph's three feature-rows activities ran six times (docs/performance.md, "The
/// host's overhead"). Here every taken work item's lock is renewed every <see cref="DurableHosting.ActivityLockRenewal"/>
/// until it is completed or abandoned.
/// </para>
/// <para>
/// <b>Unsettled items are forgotten.</b> The provider forgets an activity work item it handed out only after a storage call
/// (the response enqueued and the message deleted, or the message abandoned) succeeds. While the
/// account is unreachable both fail, so the item stays "in process" in the provider's memory; when
/// its message becomes visible again the provider refuses it as a duplicate ("is being processed
/// multiple times concurrently"), every time, until the process restarts: a job stopped at 216 of
/// 240 features after a 60 s outage. Here a work item whose completion or abandonment failed is
/// forgotten, so its message runs again once storage is back (activities may run more than once
/// in Durable anyway; a repeated result is ignored).
/// </para>
/// </summary>
/// <remarks>
/// The provider exposes no way to forget an item, so this reaches its private table of active
/// items by name; <see cref="Available"/> says whether this provider version has it (a test holds
/// the pinned version to it). The provider should do this itself.
/// </remarks>
public sealed class SidecarActivityRepairs(IOrchestrationService inner, ILogger log, TimeProvider time, TimeSpan renewEvery) : IOrchestrationService
{
    private readonly ConcurrentDictionary<string, LockRenewal> renewals = new();

    private static readonly FieldInfo? ActiveActivities =
        typeof(AzureStorageOrchestrationService).GetField("activeActivitySessions", BindingFlags.Instance | BindingFlags.NonPublic);

    /// <summary>Whether the provider has the table this repair needs.</summary>
    public static bool Available => ActiveActivities is not null && typeof(IDictionary).IsAssignableFrom(ActiveActivities.FieldType);

    /// <summary>Work items forgotten so far in this process.</summary>
    public static int Forgotten => forgotten;

    private static int forgotten;

    public async Task<TaskActivityWorkItem> LockNextTaskActivityWorkItem(TimeSpan receiveTimeout, CancellationToken cancellationToken)
    {
        var workItem = await inner.LockNextTaskActivityWorkItem(receiveTimeout, cancellationToken);
        if (workItem is not null) renewals[workItem.Id] = new LockRenewal(inner, workItem, log, time, renewEvery);
        return workItem!;
    }

    public async Task CompleteTaskActivityWorkItemAsync(TaskActivityWorkItem workItem, TaskMessage responseMessage)
    {
        await StopRenewingAsync(workItem);
        try
        {
            await inner.CompleteTaskActivityWorkItemAsync(workItem, responseMessage);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Forget(workItem, e);
            throw;
        }
    }

    public async Task AbandonTaskActivityWorkItemAsync(TaskActivityWorkItem workItem)
    {
        await StopRenewingAsync(workItem);
        try
        {
            await inner.AbandonTaskActivityWorkItemAsync(workItem);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Forget(workItem, e);
            throw;
        }
    }

    private async Task StopRenewingAsync(TaskActivityWorkItem workItem)
    {
        if (renewals.TryRemove(workItem.Id, out var renewal)) await renewal.DisposeAsync();
    }

    /// <summary>Work items whose lock is being renewed now (they were taken and are not yet settled).</summary>
    public int Renewing => renewals.Count;

    /// <summary>Drops the provider's record of the work item, so that its message is taken again when it reappears.</summary>
    private void Forget(TaskActivityWorkItem workItem, Exception cause)
    {
        if (inner is not AzureStorageOrchestrationService provider || ActiveActivities?.GetValue(provider) is not IDictionary active || !active.Contains(workItem.Id)) return;
        active.Remove(workItem.Id);
        Interlocked.Increment(ref forgotten);
        log.LogWarning("Activity work item {WorkItem} could not be settled in storage ({Error}); it will run again when its message reappears",
            workItem.Id, cause.GetBaseException().Message);
    }

    // Everything else is the provider's own.
    public int TaskOrchestrationDispatcherCount => inner.TaskOrchestrationDispatcherCount;
    public int MaxConcurrentTaskOrchestrationWorkItems => inner.MaxConcurrentTaskOrchestrationWorkItems;
    public int TaskActivityDispatcherCount => inner.TaskActivityDispatcherCount;
    public int MaxConcurrentTaskActivityWorkItems => inner.MaxConcurrentTaskActivityWorkItems;
    public BehaviorOnContinueAsNew EventBehaviourForContinueAsNew => inner.EventBehaviourForContinueAsNew;
    public Task StartAsync() => inner.StartAsync();
    public Task StopAsync() => inner.StopAsync();
    public Task StopAsync(bool isForced) => inner.StopAsync(isForced);
    public Task CreateAsync() => inner.CreateAsync();
    public Task CreateAsync(bool recreateInstanceStore) => inner.CreateAsync(recreateInstanceStore);
    public Task CreateIfNotExistsAsync() => inner.CreateIfNotExistsAsync();
    public Task DeleteAsync() => inner.DeleteAsync();
    public Task DeleteAsync(bool deleteInstanceStore) => inner.DeleteAsync(deleteInstanceStore);
    public bool IsMaxMessageCountExceeded(int currentMessageCount, OrchestrationRuntimeState runtimeState) => inner.IsMaxMessageCountExceeded(currentMessageCount, runtimeState);
    public int GetDelayInSecondsAfterOnProcessException(Exception exception) => inner.GetDelayInSecondsAfterOnProcessException(exception);
    public int GetDelayInSecondsAfterOnFetchException(Exception exception) => inner.GetDelayInSecondsAfterOnFetchException(exception);
    public Task<TaskOrchestrationWorkItem> LockNextTaskOrchestrationWorkItemAsync(TimeSpan receiveTimeout, CancellationToken cancellationToken) =>
        inner.LockNextTaskOrchestrationWorkItemAsync(receiveTimeout, cancellationToken);
    public Task RenewTaskOrchestrationWorkItemLockAsync(TaskOrchestrationWorkItem workItem) => inner.RenewTaskOrchestrationWorkItemLockAsync(workItem);
    public Task CompleteTaskOrchestrationWorkItemAsync(TaskOrchestrationWorkItem workItem, OrchestrationRuntimeState newOrchestrationRuntimeState,
        IList<TaskMessage> outboundMessages, IList<TaskMessage> orchestratorMessages, IList<TaskMessage> timerMessages, TaskMessage continuedAsNewMessage,
        OrchestrationState orchestrationState) =>
        inner.CompleteTaskOrchestrationWorkItemAsync(workItem, newOrchestrationRuntimeState, outboundMessages, orchestratorMessages, timerMessages, continuedAsNewMessage, orchestrationState);
    public Task AbandonTaskOrchestrationWorkItemAsync(TaskOrchestrationWorkItem workItem) => inner.AbandonTaskOrchestrationWorkItemAsync(workItem);
    public Task ReleaseTaskOrchestrationWorkItemAsync(TaskOrchestrationWorkItem workItem) => inner.ReleaseTaskOrchestrationWorkItemAsync(workItem);
    public Task<TaskActivityWorkItem> RenewTaskActivityWorkItemLockAsync(TaskActivityWorkItem workItem) => inner.RenewTaskActivityWorkItemLockAsync(workItem);

    /// <summary>One taken work item's lock, renewed on a timer; a renewal in flight finishes before the item is settled.</summary>
    private sealed class LockRenewal : IAsyncDisposable
    {
        private readonly IOrchestrationService provider;
        private readonly TaskActivityWorkItem workItem;
        private readonly ILogger log;
        private readonly ITimer timer;
        private readonly Lock gate = new();
        private Task lastRenewal = Task.CompletedTask;
        private bool stopped;

        public LockRenewal(IOrchestrationService provider, TaskActivityWorkItem workItem, ILogger log, TimeProvider time, TimeSpan every)
        {
            this.provider = provider;
            this.workItem = workItem;
            this.log = log;
            timer = time.CreateTimer(_ => Renew(), null, every, every);
        }

        private void Renew()
        {
            lock (gate)
            {
                if (stopped || !lastRenewal.IsCompleted) return;   // settled, or the last renewal is still under way
                lastRenewal = RenewOnceAsync();
            }
        }

        private async Task RenewOnceAsync()
        {
            try
            {
                await provider.RenewTaskActivityWorkItemLockAsync(workItem);
            }
            catch (Exception e)
            {
                // Storage unreachable: the next tick tries again; were the lock lost, the activity would run again, as Durable allows.
                log.LogWarning("The lock of activity work item {WorkItem} could not be renewed ({Error})", workItem.Id, e.GetBaseException().Message);
            }
        }

        /// <summary>Stops renewing, once any renewal under way has ended.</summary>
        public async ValueTask DisposeAsync()
        {
            Task pending;
            lock (gate)
            {
                stopped = true;
                pending = lastRenewal;
            }
            await timer.DisposeAsync();
            await pending;
        }
    }
}

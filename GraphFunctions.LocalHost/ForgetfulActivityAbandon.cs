namespace GraphFunctions.LocalHost;

using System.Collections;
using System.Reflection;
using DurableTask.AzureStorage;
using DurableTask.Core;
using Microsoft.Extensions.Logging;

/// <summary>
/// The Azure Storage provider as the sidecar's dispatchers use it, with one repair for storage
/// outages. The provider forgets an activity work item it handed out only after a storage call
/// (the response enqueued and the message deleted, or the message abandoned) succeeds. While the
/// account is unreachable both fail, so the item stays "in process" in the provider's memory; when
/// its message becomes visible again the provider refuses it as a duplicate ("is being processed
/// multiple times concurrently"), every time, until the process restarts: a job stopped at 216 of
/// 240 features after a 60 s outage. Here a work item whose completion or abandonment failed is
/// forgotten, so its message runs again once storage is back (activities may run more than once
/// in Durable anyway; a repeated result is ignored).
/// </summary>
/// <remarks>
/// The provider exposes no way to forget an item, so this reaches its private table of active
/// items by name; <see cref="Available"/> says whether this provider version has it (a test holds
/// the pinned version to it). The provider should do this itself.
/// </remarks>
public sealed class ForgetfulActivityAbandon(AzureStorageOrchestrationService inner, ILogger log) : IOrchestrationService
{
    private static readonly FieldInfo? ActiveActivities =
        typeof(AzureStorageOrchestrationService).GetField("activeActivitySessions", BindingFlags.Instance | BindingFlags.NonPublic);

    /// <summary>Whether the provider has the table this repair needs.</summary>
    public static bool Available => ActiveActivities is not null && typeof(IDictionary).IsAssignableFrom(ActiveActivities.FieldType);

    /// <summary>Work items forgotten so far in this process.</summary>
    public static int Forgotten => forgotten;

    private static int forgotten;

    public async Task CompleteTaskActivityWorkItemAsync(TaskActivityWorkItem workItem, TaskMessage responseMessage)
    {
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

    /// <summary>Drops the provider's record of the work item, so that its message is taken again when it reappears.</summary>
    private void Forget(TaskActivityWorkItem workItem, Exception cause)
    {
        if (ActiveActivities?.GetValue(inner) is not IDictionary active || !active.Contains(workItem.Id)) return;
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
    public Task<TaskActivityWorkItem> LockNextTaskActivityWorkItem(TimeSpan receiveTimeout, CancellationToken cancellationToken) =>
        inner.LockNextTaskActivityWorkItem(receiveTimeout, cancellationToken);
    public Task<TaskActivityWorkItem> RenewTaskActivityWorkItemLockAsync(TaskActivityWorkItem workItem) => inner.RenewTaskActivityWorkItemLockAsync(workItem);
}

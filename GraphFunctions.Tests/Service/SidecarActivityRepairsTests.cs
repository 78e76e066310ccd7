namespace GraphFunctions.Tests.Service;

using System.Reflection;
using DurableTask.Core;
using GraphFunctions.LocalHost;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

/// <summary>
/// The local host's sidecar does not renew the locks of running activities, so a long one's
/// message reappeared and ran again: the repair renews each taken work item's lock until it is
/// completed or abandoned, and never after.
/// </summary>
public class SidecarActivityRepairsTests
{
    private static readonly TimeSpan Every = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task A_taken_activity_keeps_its_lock_until_it_is_settled()
    {
        var time = new FakeTimeProvider();
        var provider = FakeProvider.Create();
        var repairs = new SidecarActivityRepairs(provider, NullLogger.Instance, time, Every);

        var running = await repairs.LockNextTaskActivityWorkItem(TimeSpan.FromSeconds(1), CancellationToken.None);
        var waiting = await repairs.LockNextTaskActivityWorkItem(TimeSpan.FromSeconds(1), CancellationToken.None);
        Assert.Equal(2, repairs.Renewing);
        time.Advance(Every - TimeSpan.FromSeconds(1));
        Assert.Empty(Fake(provider).Renewed);

        // Three renewals each while both are held (for a minute: the provider's visibility timeout).
        time.Advance(Every * 3 - TimeSpan.FromSeconds(19));
        Assert.Equal(3, Fake(provider).Renewed.Count(id => id == running.Id));
        Assert.Equal(3, Fake(provider).Renewed.Count(id => id == waiting.Id));

        // Settled: no renewal after completion or abandonment.
        await repairs.CompleteTaskActivityWorkItemAsync(running, new TaskMessage());
        await repairs.AbandonTaskActivityWorkItemAsync(waiting);
        Assert.Equal([running.Id], Fake(provider).Completed);
        Assert.Equal([waiting.Id], Fake(provider).Abandoned);
        Assert.Equal(0, repairs.Renewing);
        time.Advance(Every * 5);
        Assert.Equal(6, Fake(provider).Renewed.Count);
    }

    [Fact]
    public async Task A_failed_renewal_is_tried_again_at_the_next_tick()
    {
        var time = new FakeTimeProvider();
        var provider = FakeProvider.Create();
        var repairs = new SidecarActivityRepairs(provider, NullLogger.Instance, time, Every);
        var workItem = await repairs.LockNextTaskActivityWorkItem(TimeSpan.FromSeconds(1), CancellationToken.None);

        Fake(provider).FailRenewals = true;   // storage unreachable
        time.Advance(Every * 2);
        Assert.Equal(2, Fake(provider).Failures);
        Fake(provider).FailRenewals = false;
        time.Advance(Every);
        Assert.Equal([workItem.Id], Fake(provider).Renewed);
        await repairs.CompleteTaskActivityWorkItemAsync(workItem, new TaskMessage());
    }

    private static FakeProvider Fake(IOrchestrationService provider) => (FakeProvider)(object)provider;

    /// <summary>The provider's activity work-item calls, recorded; every other member is unused here.</summary>
    public class FakeProvider : DispatchProxy
    {
        private int taken;

        public List<string> Renewed { get; } = [];
        public List<string> Completed { get; } = [];
        public List<string> Abandoned { get; } = [];
        public bool FailRenewals { get; set; }
        public int Failures { get; private set; }

        public static IOrchestrationService Create() => Create<IOrchestrationService, FakeProvider>();

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
        {
            var workItem = args?.OfType<TaskActivityWorkItem>().FirstOrDefault();
            switch (targetMethod?.Name)
            {
                case nameof(IOrchestrationService.LockNextTaskActivityWorkItem):
                    return Task.FromResult(new TaskActivityWorkItem { Id = $"item-{++taken}", LockedUntilUtc = DateTime.UtcNow.AddMinutes(1) });
                case nameof(IOrchestrationService.RenewTaskActivityWorkItemLockAsync):
                    if (FailRenewals)
                    {
                        Failures++;
                        return Task.FromException<TaskActivityWorkItem>(new IOException("storage is unreachable"));
                    }
                    Renewed.Add(workItem!.Id);
                    return Task.FromResult(workItem);
                case nameof(IOrchestrationService.CompleteTaskActivityWorkItemAsync):
                    Completed.Add(workItem!.Id);
                    return Task.CompletedTask;
                case nameof(IOrchestrationService.AbandonTaskActivityWorkItemAsync):
                    Abandoned.Add(workItem!.Id);
                    return Task.CompletedTask;
                default:
                    throw new NotSupportedException(targetMethod?.Name);
            }
        }
    }
}

namespace GraphFunctions.Workers;

/// <summary>
/// The deliveries this process runs at once: one fewer than the activities its Durable worker
/// runs (at least one), so uploads to slow or hung hosts — each bounded only by
/// UPLOAD_TIMEOUT_SECONDS — never hold the last activity slot that graph work needs. A delivery
/// that finds every slot taken does not wait in its activity: it answers "deferred", and its
/// orchestration tries again after a durable timer, which holds no slot.
/// </summary>
public sealed class DeliverySlots : IDisposable
{
    private readonly SemaphoreSlim slots;

    /// <param name="activitySlots">The activities the Durable worker of this process runs at once.</param>
    public DeliverySlots(int activitySlots)
    {
        Capacity = Math.Max(1, activitySlots - 1);
        slots = new SemaphoreSlim(Capacity, Capacity);
    }

    public int Capacity { get; }

    /// <summary>A slot at once, or null when all are taken.</summary>
    public IDisposable? TryTake() => slots.Wait(0) ? new SlotRelease(slots) : null;

    public void Dispose() => slots.Dispose();
}

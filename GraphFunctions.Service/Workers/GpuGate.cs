namespace GraphFunctions.Workers;

/// <summary>
/// One model computation at a time on this worker's accelerator: steering and forward passes
/// wait a bounded time (then the caller answers 503 "Server busy", like the Neuronpedia graph server); graph
/// activities wait their turn.
/// </summary>
public sealed class GpuGate : IDisposable
{
    private readonly SemaphoreSlim slot = new(1, 1);

    public bool Busy => slot.CurrentCount == 0;

    /// <summary>The slot, or null when it stayed taken for <paramref name="wait"/>.</summary>
    public async Task<IDisposable?> TryEnterAsync(TimeSpan wait, CancellationToken cancellation = default) =>
        await slot.WaitAsync(wait, cancellation) ? new SlotRelease(slot) : null;

    public async Task<IDisposable> EnterAsync(CancellationToken cancellation = default)
    {
        await slot.WaitAsync(cancellation);
        return new SlotRelease(slot);
    }

    public void Dispose() => slot.Dispose();
}

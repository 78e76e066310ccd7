namespace GraphFunctions.Workers;

/// <summary>
/// One model computation at a time on this worker's accelerator: steering and forward passes
/// wait a bounded time (then the caller answers 503 "Server busy", like the Neuronpedia graph server); graph
/// activities wait their turn.
/// <para>
/// The gate also decides when the native allocator's freed pages go back to the system: once no
/// computation has run for <see cref="IdleRelease"/>, not after every job. The next job of a busy
/// worker reuses them instead of faulting them in again (the mid model's 64-token graph: its clean
/// and frozen passes took 1.6 s after a purge, 0.7 s without; docs/performance.md, "The host's
/// overhead"), and with one jemalloc arena what stays is bounded by the largest job's peak.
/// </para>
/// </summary>
public sealed class GpuGate : IDisposable
{
    /// <summary>How long the gate stays unused before the freed pages are released.</summary>
    public static readonly TimeSpan IdleRelease = TimeSpan.FromSeconds(30);

    private readonly SemaphoreSlim slot = new(1, 1);
    private readonly TimeSpan idleRelease;
    private readonly Action releaseMemory;
    private readonly TimeProvider time;
    private readonly ITimer releaseCheck;
    private long lastUsed;          // timestamp of the last computation's end
    private int usedSinceRelease;   // 1 when a computation ran since the last release

    public GpuGate()
        : this(IdleRelease, () => Attribution.TorchInfo.ReleaseFreedMemory(), TimeProvider.System)
    {
    }

    /// <param name="idleRelease">How long without a computation before <paramref name="releaseMemory"/> runs (it is checked 4 times as often).</param>
    public GpuGate(TimeSpan idleRelease, Action releaseMemory, TimeProvider time)
    {
        this.idleRelease = idleRelease;
        this.releaseMemory = releaseMemory;
        this.time = time;
        lastUsed = time.GetTimestamp();
        releaseCheck = time.CreateTimer(_ => ReleaseIfIdle(), null, idleRelease / 4, idleRelease / 4);
    }

    public bool Busy => slot.CurrentCount == 0;

    /// <summary>The slot, or null when it stayed taken for <paramref name="wait"/>.</summary>
    public async Task<IDisposable?> TryEnterAsync(TimeSpan wait, CancellationToken cancellation = default) =>
        await slot.WaitAsync(wait, cancellation) ? new Use(this) : null;

    public async Task<IDisposable> EnterAsync(CancellationToken cancellation = default)
    {
        await slot.WaitAsync(cancellation);
        return new Use(this);
    }

    /// <summary>
    /// Releases the freed memory when a computation ran since the last release and none has for
    /// the idle time; it holds the slot meanwhile, so no computation starts during the release.
    /// </summary>
    private void ReleaseIfIdle()
    {
        try
        {
            if (Volatile.Read(ref usedSinceRelease) == 0 || !slot.Wait(0)) return;
        }
        catch (ObjectDisposedException)
        {
            return;   // a check already under way as the worker shut down
        }
        try
        {
            if (time.GetElapsedTime(Interlocked.Read(ref lastUsed)) < idleRelease) return;
            Volatile.Write(ref usedSinceRelease, 0);
            releaseMemory();
        }
        finally
        {
            slot.Release();
        }
    }

    public void Dispose()
    {
        releaseCheck.Dispose();
        slot.Dispose();
    }

    /// <summary>One computation's hold on the slot; its end is the start of the idle time.</summary>
    private sealed class Use(GpuGate gate) : IDisposable
    {
        private int ended;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref ended, 1) != 0) return;
            Interlocked.Exchange(ref gate.lastUsed, gate.time.GetTimestamp());
            Volatile.Write(ref gate.usedSinceRelease, 1);
            gate.slot.Release();
        }
    }
}

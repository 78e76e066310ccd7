namespace GraphFunctions.Tests.Service;

using GraphFunctions.Workers;
using Microsoft.Extensions.Time.Testing;

/// <summary>
/// The gate releases the allocator's freed memory once the worker has been idle for its idle time:
/// not during a computation, not while jobs follow each other closely, and once per idle spell.
/// </summary>
public class GpuGateTests
{
    private static readonly TimeSpan Idle = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Freed_memory_is_released_once_the_worker_has_been_idle_for_the_idle_time()
    {
        var time = new FakeTimeProvider();
        int releases = 0;
        bool heldDuringRelease = false;
        GpuGate? gate = null;
        gate = new GpuGate(Idle, () =>
        {
            releases++;
            heldDuringRelease = gate!.Busy;   // no computation may start during a release
        }, time);
        using var _ = gate;

        // Nothing ran yet: nothing to release.
        time.Advance(Idle * 2);
        Assert.Equal(0, releases);

        // A computation longer than the idle time: no release while it holds the gate.
        var computation = await gate.EnterAsync();
        time.Advance(Idle * 3);
        Assert.Equal(0, releases);
        computation.Dispose();

        // Jobs that follow each other within the idle time keep the memory.
        time.Advance(Idle / 2);
        using (await gate.EnterAsync()) time.Advance(TimeSpan.FromSeconds(1));
        time.Advance(Idle * 3 / 4);
        Assert.Equal(0, releases);

        // Idle for the idle time (and one check): released once, holding the gate.
        time.Advance(Idle / 2);
        Assert.Equal(1, releases);
        Assert.True(heldDuringRelease);
        Assert.False(gate.Busy);
        time.Advance(Idle * 4);
        Assert.Equal(1, releases);

        // The next computation's memory goes too, once it has been idle.
        using (await gate.TryEnterAsync(TimeSpan.Zero) ?? throw new InvalidOperationException("the gate was taken")) time.Advance(TimeSpan.FromSeconds(1));
        time.Advance(Idle + Idle / 4);
        Assert.Equal(2, releases);
    }
}

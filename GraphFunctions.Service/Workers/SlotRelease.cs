namespace GraphFunctions.Workers;

/// <summary>Gives back one taken slot of a semaphore, once, however often it is disposed.</summary>
internal sealed class SlotRelease(SemaphoreSlim slots) : IDisposable
{
    private int released;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref released, 1) == 0) slots.Release();
    }
}

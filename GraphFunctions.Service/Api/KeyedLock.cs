namespace GraphFunctions.Api;

/// <summary>
/// One asynchronous lock per key (a slug), held only while someone holds or waits for it, so
/// the table never grows beyond the requests in flight. (No keyed async lock is served on this
/// machine's NuGet feed; this is the small one the job-identity rule needs.)
/// </summary>
public sealed class KeyedLock
{
    private readonly Dictionary<string, (SemaphoreSlim Gate, int Users)> gates = new(StringComparer.Ordinal);

    public int HeldKeys
    {
        get
        {
            lock (gates) return gates.Count;
        }
    }

    public async Task<IDisposable> EnterAsync(string key, CancellationToken cancellation)
    {
        SemaphoreSlim gate;
        lock (gates)
        {
            (SemaphoreSlim Gate, int Users) entry = gates.TryGetValue(key, out var found) ? found : (new SemaphoreSlim(1, 1), 0);
            gates[key] = (entry.Gate, entry.Users + 1);
            gate = entry.Gate;
        }
        try
        {
            await gate.WaitAsync(cancellation);
        }
        catch
        {
            Leave(key, release: false);
            throw;
        }
        return new Holder(this, key);
    }

    private void Leave(string key, bool release)
    {
        lock (gates)
        {
            var (gate, users) = gates[key];
            if (release) gate.Release();
            if (users == 1)
            {
                gates.Remove(key);
                gate.Dispose();
            }
            else
            {
                gates[key] = (gate, users - 1);
            }
        }
    }

    private sealed class Holder(KeyedLock owner, string key) : IDisposable
    {
        private int disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref disposed, 1) == 0) owner.Leave(key, release: true);
        }
    }
}

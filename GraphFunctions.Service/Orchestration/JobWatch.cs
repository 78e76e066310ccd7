namespace GraphFunctions.Orchestration;

using Microsoft.DurableTask.Client;

/// <summary>
/// Lets an activity stop work nobody waits for any more: a token cancelled once its orchestration
/// has finished — terminated, typically — checked every second. Durable itself never cancels a
/// running activity. Without a client (the Functions app, whose client is a binding) it never fires.
/// </summary>
public sealed class JobWatch(DurableTaskClient? client)
{
    public static readonly TimeSpan Period = TimeSpan.FromSeconds(1);
    private int cancellations;

    /// <summary>How many activities were stopped because their job had finished.</summary>
    public int Cancellations => Volatile.Read(ref cancellations);

    /// <summary>
    /// Whether the job has finished (terminated, typically) or is gone: work queued for it is then
    /// skipped. Without a client it never has.
    /// </summary>
    public async Task<bool> HasFinishedAsync(string instanceId, CancellationToken cancellation = default) =>
        client is not null && await client.GetInstanceAsync(instanceId, cancellation) is null or { IsCompleted: true };

    /// <summary>A source whose token is cancelled when <paramref name="instanceId"/> has finished; dispose it when the work is done.</summary>
    public CancellationTokenSource WhileRunning(string instanceId)
    {
        var source = new CancellationTokenSource();
        if (client is not null) _ = WatchAsync(client, instanceId, source);
        return source;
    }

    private async Task WatchAsync(DurableTaskClient durable, string instanceId, CancellationTokenSource source)
    {
        try
        {
            while (true)
            {
                await Task.Delay(Period, source.Token);
                if (await durable.GetInstanceAsync(instanceId, source.Token) is { IsCompleted: false }) continue;
                Interlocked.Increment(ref cancellations);
                await source.CancelAsync();
                return;
            }
        }
        catch (OperationCanceledException)
        {
            // The work ended first (the source was cancelled or disposed).
        }
        catch (ObjectDisposedException)
        {
        }
    }
}

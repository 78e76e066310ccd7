namespace Benchmarks;

using System.Text.Json;
using GraphFunctions.Orchestration;
using GraphFunctions.Service;
using Microsoft.DurableTask;
using Microsoft.Extensions.DependencyInjection;

/// <summary>
/// Wraps every activity of the graph orchestration to count the bytes of its serialised input and
/// result — what the orchestration history stores for it (the in-process engine does not expose
/// its history) — and to time it, so a job's wall time splits into activity work and dispatch.
/// </summary>
internal sealed class HistoryMeter
{
    private long bytes;
    private int calls;
    private readonly List<(string Activity, DateTime Start, DateTime End)> runs = [];

    public void Register(DurableTaskRegistry registry)
    {
        registry.AddOrchestrator<GraphOrchestrator>();
        foreach (var type in ServiceRegistration.ActivityTypes)
            registry.AddActivity(type.Name, services => new Metered(type.Name, (ITaskActivity)ActivatorUtilities.CreateInstance(services, type), this));
    }

    public (int Calls, long Bytes) TakeTotals() => (Interlocked.Exchange(ref calls, 0), Interlocked.Exchange(ref bytes, 0));

    /// <summary>The activities run since the last call, with their start and end times.</summary>
    public List<(string Activity, DateTime Start, DateTime End)> TakeRuns()
    {
        lock (runs)
        {
            var taken = runs.ToList();
            runs.Clear();
            return taken;
        }
    }

    private sealed class Metered(string name, ITaskActivity inner, HistoryMeter meter) : ITaskActivity
    {
        public Type InputType => inner.InputType;

        public Type OutputType => inner.OutputType;

        public async Task<object?> RunAsync(TaskActivityContext context, object? input)
        {
            var start = DateTime.UtcNow;
            var output = await inner.RunAsync(context, input);
            lock (meter.runs) meter.runs.Add((name, start, DateTime.UtcNow));
            Interlocked.Increment(ref meter.calls);
            Interlocked.Add(ref meter.bytes, JsonSerializer.SerializeToUtf8Bytes(input, InputType).Length + JsonSerializer.SerializeToUtf8Bytes(output, OutputType).Length);
            return output;
        }
    }
}

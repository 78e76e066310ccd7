namespace Benchmarks;

using System.Text.Json;
using GraphFunctions.Orchestration;
using GraphFunctions.Service;
using Microsoft.DurableTask;
using Microsoft.Extensions.DependencyInjection;

/// <summary>
/// Wraps every activity of the graph orchestration to count the bytes of its serialised input and
/// result: what the orchestration history stores for it (the in-process engine does not expose
/// its history).
/// </summary>
internal sealed class HistoryMeter
{
    private long bytes;
    private int calls;

    public void Register(DurableTaskRegistry registry)
    {
        registry.AddOrchestrator<GraphOrchestrator>();
        foreach (var type in ServiceRegistration.ActivityTypes)
            registry.AddActivity(type.Name, services => new Metered((ITaskActivity)ActivatorUtilities.CreateInstance(services, type), this));
    }

    public (int Calls, long Bytes) TakeTotals() => (Interlocked.Exchange(ref calls, 0), Interlocked.Exchange(ref bytes, 0));

    private sealed class Metered(ITaskActivity inner, HistoryMeter meter) : ITaskActivity
    {
        public Type InputType => inner.InputType;

        public Type OutputType => inner.OutputType;

        public async Task<object?> RunAsync(TaskActivityContext context, object? input)
        {
            var output = await inner.RunAsync(context, input);
            Interlocked.Increment(ref meter.calls);
            Interlocked.Add(ref meter.bytes, JsonSerializer.SerializeToUtf8Bytes(input, InputType).Length + JsonSerializer.SerializeToUtf8Bytes(output, OutputType).Length);
            return output;
        }
    }
}

using Benchmarks;

var benchmarks = new Dictionary<string, Func<string[], Task<int>>>
{
    ["attribution"] = a => Task.FromResult(AttributionBenchmark.Run(a)),
    ["clt-loading"] = a => Task.FromResult(CltLoadingBenchmark.Run(a)),
    ["steering"] = SteeringBenchmark.RunAsync,
    ["orchestration"] = OrchestrationBenchmark.RunAsync,
    ["scale"] = ScaleBenchmark.RunAsync,
    ["service-memory"] = ServiceMemoryBenchmark.RunAsync,
    ["long-prompts"] = LongPromptBenchmark.RunAsync,
    ["attention-tracing"] = AttentionTracingBenchmark.RunAsync,
};

if (args.Length == 0 || !benchmarks.TryGetValue(args[0], out var run))
{
    Console.Error.WriteLine($"usage: Benchmarks <{string.Join('|', benchmarks.Keys)}> [options]");
    return 2;
}
return await run(args[1..]);

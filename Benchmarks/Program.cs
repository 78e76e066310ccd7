using Benchmarks;

var benchmarks = new Dictionary<string, Func<string[], int>>
{
    ["attribution"] = AttributionBenchmark.Run,
};

if (args.Length == 0 || !benchmarks.TryGetValue(args[0], out var run))
{
    Console.Error.WriteLine($"usage: Benchmarks <{string.Join('|', benchmarks.Keys)}> [options]");
    return 2;
}
return run(args[1..]);

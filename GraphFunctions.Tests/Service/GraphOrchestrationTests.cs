namespace GraphFunctions.Tests.Service;

using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Attribution.Pipeline;
using GraphFunctions.Orchestration;
using GraphFunctions.Service;
using GraphFunctions.Storage;
using GraphFunctions.Tests.Support;
using GraphFunctions.Workers;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;

/// <summary>
/// The graph orchestration on the real Durable Task engine, in process: its graph must equal the
/// one the engine computes directly, whatever happens to workers and activities on the way.
/// </summary>
[Collection(UsesLocalService.Name)]
public class GraphOrchestrationTests
{
    /// <summary>Forgets every prepared state before it ranks (the rounds after the first): the next activities meet an empty cache.</summary>
    public sealed class ForgetfulRankFeatures : RankFeaturesActivity
    {
        private static int forgot;
        private readonly JobStates cache;

        public ForgetfulRankFeatures(JobStates states, GpuGate gpu, IWorkspaceStore workspace) : base(states, gpu, workspace) => cache = states;

        public static int Forgot => forgot;

        public static void Reset() => forgot = 0;

        public override Task<RankedFeatures> RunAsync(TaskActivityContext context, RankInput input)
        {
            Interlocked.Increment(ref forgot);
            cache.Clear();
            return base.RunAsync(context, input);
        }
    }

    /// <summary>Throws on its first call only, as a transient failure would.</summary>
    public sealed class FailOnceFeatureRows(JobStates states, GpuGate gpu, IWorkspaceStore workspace, ModelHost models, JobWatch watch) : FeatureRowsActivity(states, gpu, workspace, models, watch)
    {
        private static int calls;

        public static int Calls => calls;

        public static void Reset() => calls = 0;

        public override Task<RowBlock> RunAsync(TaskActivityContext context, FeatureBatch input) =>
            Interlocked.Increment(ref calls) == 1 ? throw new IOException("transient failure (test)") : base.RunAsync(context, input);
    }

    /// <summary>Claims every full-size batch runs out of memory: the orchestrator must halve them.</summary>
    public sealed class TightMemoryFeatureRows(JobStates states, GpuGate gpu, IWorkspaceStore workspace, ModelHost models, JobWatch watch) : FeatureRowsActivity(states, gpu, workspace, models, watch)
    {
        private static int refused;

        public static int Refused => refused;

        public static void Reset() => refused = 0;

        public override Task<RowBlock> RunAsync(TaskActivityContext context, FeatureBatch input)
        {
            if (input.Count <= 8) return base.RunAsync(context, input);
            Interlocked.Increment(ref refused);
            return Task.FromResult(new RowBlock(input.Block, 0, OutOfMemory: true));
        }
    }

    /// <summary>Stores the first batch's rows, then finds the disk full, as a workspace volume that filled up would.</summary>
    public sealed class DiskFullFeatureRows(JobStates states, GpuGate gpu, IWorkspaceStore workspace, ModelHost models, JobWatch watch) : FeatureRowsActivity(states, gpu, workspace, models, watch)
    {
        private static int refusals;

        public static int Refusals => refusals;

        public override Task<RowBlock> RunAsync(TaskActivityContext context, FeatureBatch input)
        {
            if (input.Block == "r0-b0") return base.RunAsync(context, input);
            Interlocked.Increment(ref refusals);
            throw new IOException($"No space left on device : '/workspace/jobs/{input.JobId}/rows/{input.Block}'");
        }
    }

    /// <summary>The app's tasks, with one activity replaced by a subclass under the same name.</summary>
    internal static void RegisterReplacing<TActivity, TReplacement>(DurableTaskRegistry registry) where TReplacement : class, ITaskActivity
    {
        registry.AddOrchestrator<GraphOrchestrator>();
        foreach (var activity in ServiceRegistration.ActivityTypes.Where(t => t != typeof(TActivity))) registry.AddActivity(activity);
        registry.AddActivity<TReplacement>(typeof(TActivity).Name);
    }

    private static GraphRequest Request(string slug, int maxFeatureNodes, int updateInterval = 2) => new()
    {
        Prompt = "The cat sat on the",
        Slug = slug,
        MaxFeatureNodes = maxFeatureNodes,
        BatchSize = 16,
        UpdateInterval = updateInterval,
        MaxNLogits = 5,
        EdgeThreshold = 0.9,
    };

    /// <summary>Runs the orchestration for <paramref name="request"/> and the engine directly; returns both graphs without their timestamps.</summary>
    private static async Task<(JsonNode Orchestrated, JsonNode Direct, OrchestrationMetadata Instance)> RunBothAsync(LocalService service, GraphRequest request, int batchesPerActivity = 1)
    {
        var model = await service.Services.GetRequiredService<ModelHost>().GetAsync();
        var job = new GraphJob(request.Slug, request, model.Tokenize(request.Prompt), null, false, false, batchesPerActivity);
        await JobStates.WriteJobAsync(service.Workspace, job);
        await service.Durable.ScheduleNewOrchestrationInstanceAsync(nameof(GraphOrchestrator), job, new StartOrchestrationOptions(job.JobId));
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var instance = await service.Durable.WaitForInstanceCompletionAsync(job.JobId, getInputsAndOutputs: true, timeout.Token);
        Assert.True(instance.RuntimeStatus == OrchestrationRuntimeStatus.Completed, $"orchestration ended {instance.RuntimeStatus}: {instance.FailureDetails?.ErrorMessage}");

        var result = instance.ReadOutputAs<GraphJobResult>()!;
        await using var stored = await service.Workspace.OpenReadAsync(result.Graph.GraphKey);
        var orchestrated = WithoutTimestamp(JsonNode.Parse(stored)!);

        var direct = new MemoryStream();
        GraphPipeline.Generate(model, request, direct);
        return (orchestrated, WithoutTimestamp(JsonNode.Parse(direct.ToArray())!), instance);
    }

    private static JsonNode WithoutTimestamp(JsonNode graph)
    {
        graph["metadata"]!["info"]!.AsObject().Remove("create_time_ms");
        return graph;
    }

    private static void AssertSameGraph(JsonNode expected, JsonNode actual)
    {
        Assert.True(actual["nodes"]!.AsArray().Count > 0);
        Assert.Equal(expected["nodes"]!.ToJsonString(), actual["nodes"]!.ToJsonString());
        Assert.Equal(expected["links"]!.ToJsonString(), actual["links"]!.ToJsonString());
        Assert.Equal(expected.ToJsonString(), actual.ToJsonString());
    }

    [Theory]
    [InlineData(40, 1, 2)]          // below the active count: ranked in rounds of update_interval × batch (whole rows)
    [InlineData(40, 1, 1000)]       // one ranked round takes the whole selection, as Neuronpedia asks (compact rows)
    [InlineData(100_000, 1, 2)]     // above it: every feature, no ranking (compact rows)
    [InlineData(40, 3, 2)]          // several batches per activity
    public async Task Orchestrated_graph_equals_the_graph_computed_directly(int maxFeatureNodes, int batchesPerActivity, int updateInterval)
    {
        await using var service = await LocalService.StartAsync();
        var request = Request($"equal-{maxFeatureNodes}-{batchesPerActivity}-{updateInterval}", maxFeatureNodes, updateInterval);
        var (orchestrated, direct, instance) = await RunBothAsync(service, request, batchesPerActivity);
        AssertSameGraph(direct, orchestrated);

        var status = JsonDocument.Parse(instance.SerializedCustomStatus!).RootElement;
        Assert.Equal("done", status.GetProperty("phase").GetString());
        Assert.Equal(status.GetProperty("features_to_visit").GetInt32(), status.GetProperty("features_visited").GetInt32());
        var keys = await service.Workspace.ListAsync(JobKeys.Prefix(instance.InstanceId));
        Assert.DoesNotContain(keys, k => k.Contains("/rows/", StringComparison.Ordinal));   // row blocks cleaned up, graph kept
        Assert.Contains(JobKeys.Graph(instance.InstanceId), keys);
    }

    [Fact]
    public async Task A_job_prepares_once_and_its_worker_keeps_no_state_after_it()
    {
        await using var service = await LocalService.StartAsync();
        var states = service.Services.GetRequiredService<JobStates>();
        int before = states.Rebuilds;
        var (orchestrated, direct, instance) = await RunBothAsync(service, Request("released", 40));
        AssertSameGraph(direct, orchestrated);
        // Assembly released the frozen pass and clean-up dropped the state, without preparing again.
        Assert.Equal(1, states.Rebuilds - before);
        Assert.False(states.Holds(instance.InstanceId));
    }

    [Fact]
    public async Task A_worker_with_an_empty_cache_mid_job_rebuilds_the_same_state()
    {
        ForgetfulRankFeatures.Reset();
        await using var service = await LocalService.StartAsync(tasks: registry => RegisterReplacing<RankFeaturesActivity, ForgetfulRankFeatures>(registry));
        var states = service.Services.GetRequiredService<JobStates>();
        int before = states.Rebuilds;
        var (orchestrated, direct, _) = await RunBothAsync(service, Request("forgetful", 40));
        // The fault happened: every ranking activity (the rounds after the first) forgot the state, so it was prepared again after each.
        Assert.True(ForgetfulRankFeatures.Forgot >= 1, "no ranking activity ran");
        Assert.True(states.Rebuilds - before >= 1 + ForgetfulRankFeatures.Forgot, $"{states.Rebuilds - before} preparations, {ForgetfulRankFeatures.Forgot} forgotten");
        AssertSameGraph(direct, orchestrated);
    }

    [Fact]
    public async Task An_activity_that_throws_once_is_retried()
    {
        FailOnceFeatureRows.Reset();
        await using var service = await LocalService.StartAsync(tasks: registry => RegisterReplacing<FeatureRowsActivity, FailOnceFeatureRows>(registry));
        var (orchestrated, direct, _) = await RunBothAsync(service, Request("flaky", 40));
        Assert.True(FailOnceFeatureRows.Calls > 3, "the failed batch and the others ran");
        AssertSameGraph(direct, orchestrated);
    }

    [Fact]
    public async Task A_batch_that_runs_out_of_memory_is_split_in_halves()
    {
        TightMemoryFeatureRows.Reset();
        await using var service = await LocalService.StartAsync(tasks: registry => RegisterReplacing<FeatureRowsActivity, TightMemoryFeatureRows>(registry));
        var (orchestrated, direct, _) = await RunBothAsync(service, Request("tight", 40));
        Assert.True(TightMemoryFeatureRows.Refused >= 2, $"{TightMemoryFeatureRows.Refused} batches refused");   // 16-row batches, halved to 8
        AssertSameGraph(direct, orchestrated);
    }

    [Fact]
    public async Task A_full_disk_fails_the_job_with_507_naming_it_and_frees_its_rows()
    {
        await using var service = await LocalService.StartAsync(tasks: registry => RegisterReplacing<FeatureRowsActivity, DiskFullFeatureRows>(registry));
        int before = DiskFullFeatureRows.Refusals;

        using var response = await service.Http.PostAsync("/generate-graph",
            LocalService.Json("""{"prompt": "The cat sat on the mat", "model_id": "graphfunctions/tiny-gemma-2", "slug_identifier": "disk-full", "batch_size": 4, "max_feature_nodes": 40}"""));
        using var answer = await LocalService.JsonOf(response);

        Assert.True(DiskFullFeatureRows.Refusals > before, "the injected full disk was never hit");
        Assert.Equal(HttpStatusCode.InsufficientStorage, response.StatusCode);
        Assert.Contains("the workspace disk is full", answer.RootElement.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Empty(await service.Workspace.ListAsync(JobKeys.RowsPrefix("disk-full")));   // the first batch's rows went with the failure
        using var status = await LocalService.JsonOf(await service.Http.GetAsync("/jobs/disk-full"));
        Assert.Contains("No space left on device", status.RootElement.GetProperty("failure").GetString(), StringComparison.Ordinal);
    }
}

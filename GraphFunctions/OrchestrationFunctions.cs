namespace GraphFunctions;

using GraphFunctions.Orchestration;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;

/// <summary>
/// The orchestrator and activities as Durable Functions. Class-based tasks need hand-written
/// wrappers here (the Durable source generator is not available), each a one-line hand-off.
/// </summary>
public static class OrchestrationFunctions
{
    [Function(nameof(GraphOrchestrator))]
    public static Task<GraphJobResult> Orchestrate([OrchestrationTrigger] TaskOrchestrationContext context) =>
        new GraphOrchestrator().RunAsync(context, context.GetInput<GraphJob>()!);

    [Function(nameof(BeginGraphActivity))]
    public static Task<PreparedGraph> BeginGraph([ActivityTrigger] GraphJob job, FunctionContext function) =>
        Run<BeginGraphActivity, GraphJob, PreparedGraph>(function, job);

    [Function(nameof(RankFeaturesActivity))]
    public static Task<RankedFeatures> RankFeatures([ActivityTrigger] RankInput input, FunctionContext function) =>
        Run<RankFeaturesActivity, RankInput, RankedFeatures>(function, input);

    /// <summary>Feature rows watch their job through the Durable client binding, so a terminated job's slices are skipped here too.</summary>
    [Function(nameof(FeatureRowsActivity))]
    public static Task<RowBlock> FeatureRows([ActivityTrigger] FeatureBatch input, [DurableClient] DurableTaskClient client, FunctionContext function) =>
        RunWatching<FeatureRowsActivity, FeatureBatch, RowBlock>(function, client, input);

    [Function(nameof(AssembleGraphActivity))]
    public static Task<GraphOutput> AssembleGraph([ActivityTrigger] AssembleInput input, FunctionContext function) =>
        Run<AssembleGraphActivity, AssembleInput, GraphOutput>(function, input);

    /// <summary>Delivery watches its job through the Durable client binding, so a terminate stops the upload here too.</summary>
    [Function(nameof(DeliverGraphActivity))]
    public static Task<DeliveryOutcome> DeliverGraph([ActivityTrigger] string jobId, [DurableClient] DurableTaskClient client, FunctionContext function) =>
        RunWatching<DeliverGraphActivity, string, DeliveryOutcome>(function, client, jobId);

    [Function(nameof(CleanupJobActivity))]
    public static Task<bool> CleanupJob([ActivityTrigger] string jobId, FunctionContext function) =>
        Run<CleanupJobActivity, string, bool>(function, jobId);

    [Function(nameof(RecordFailureActivity))]
    public static Task<bool> RecordFailure([ActivityTrigger] FailedJob input, FunctionContext function) =>
        Run<RecordFailureActivity, FailedJob, bool>(function, input);

    /// <summary>Hourly: purge the jobs past JOB_RETENTION_HOURS (the workspace container's lifecycle rule catches any orphan).</summary>
    [Function("PurgeExpiredJobs")]
    public static Task PurgeExpiredJobs([TimerTrigger("0 17 * * * *")] TimerInfo timer, [DurableClient] DurableTaskClient client, FunctionContext function) =>
        function.InstanceServices.GetRequiredService<JobRetention>().PurgeExpiredAsync(client, DateTimeOffset.UtcNow, function.CancellationToken);

    private static Task<TOut> Run<TActivity, TIn, TOut>(FunctionContext function, TIn input) where TActivity : TaskActivity<TIn, TOut> =>
        function.InstanceServices.GetRequiredService<TActivity>().RunAsync(new FunctionActivityContext(typeof(TActivity).Name, InstanceId(function)), input);

    /// <summary>An activity that watches its job: its <see cref="JobWatch"/> asks the function's Durable client binding (none is in DI here).</summary>
    private static Task<TOut> RunWatching<TActivity, TIn, TOut>(FunctionContext function, DurableTaskClient client, TIn input) where TActivity : TaskActivity<TIn, TOut> =>
        ActivatorUtilities.CreateInstance<TActivity>(function.InstanceServices, new JobWatch(client))
            .RunAsync(new FunctionActivityContext(typeof(TActivity).Name, InstanceId(function)), input);

    /// <summary>The orchestration instance that scheduled the activity, from the trigger's binding data.</summary>
    private static string InstanceId(FunctionContext function) =>
        function.BindingContext.BindingData.TryGetValue("instanceId", out var id) && id is not null ? id.ToString()! : function.InvocationId;

    private sealed class FunctionActivityContext(string name, string invocation) : TaskActivityContext
    {
        public override TaskName Name { get; } = new(name);

        public override string InstanceId { get; } = invocation;
    }
}

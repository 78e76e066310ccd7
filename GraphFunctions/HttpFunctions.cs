namespace GraphFunctions;

using GraphFunctions.Api;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;

/// <summary>
/// The HTTP routes as Azure Functions (routePrefix "" in host.json): each only hands the request
/// to the same handler the local host uses. Authorization is the x-secret-key check inside.
/// </summary>
public sealed class HttpFunctions(GraphApi graphs, ModelApi models, ViewerApi viewer)
{
    [Function("GenerateGraph")]
    public async Task<IActionResult> GenerateGraph(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = Routes.GenerateGraph)] HttpRequest request,
        [DurableClient] DurableTaskClient client, CancellationToken cancellation) =>
        new ResultAction(await graphs.GenerateGraphAsync(request, client, cancellation));

    [Function("ListJobs")]
    public async Task<IActionResult> ListJobs(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = Routes.Jobs)] HttpRequest request,
        [DurableClient] DurableTaskClient client, CancellationToken cancellation) =>
        new ResultAction(await graphs.ListAsync(request, client, cancellation));

    [Function("JobStatus")]
    public async Task<IActionResult> JobStatus(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = Routes.Job)] HttpRequest request, string id,
        [DurableClient] DurableTaskClient client, CancellationToken cancellation) =>
        new ResultAction(await graphs.StatusAsync(request, client, id, cancellation));

    [Function("JobAnnotations")]
    public async Task<IActionResult> JobAnnotations(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = Routes.JobAnnotations)] HttpRequest request, string id,
        [DurableClient] DurableTaskClient client, CancellationToken cancellation) =>
        new ResultAction(await graphs.AnnotationsAsync(request, client, id, cancellation));

    [Function("SaveJobAnnotations")]
    public async Task<IActionResult> SaveJobAnnotations(
        [HttpTrigger(AuthorizationLevel.Anonymous, "put", Route = Routes.JobAnnotations)] HttpRequest request, string id,
        [DurableClient] DurableTaskClient client, CancellationToken cancellation) =>
        new ResultAction(await graphs.SaveAnnotationsAsync(request, client, id, cancellation));

    [Function("JobResult")]
    public async Task<IActionResult> JobResult(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = Routes.JobResult)] HttpRequest request, string id,
        [DurableClient] DurableTaskClient client, CancellationToken cancellation) =>
        new ResultAction(await graphs.ResultAsync(request, client, id, cancellation));

    [Function("TerminateJob")]
    public async Task<IActionResult> TerminateJob(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = Routes.JobTerminate)] HttpRequest request, string id,
        [DurableClient] DurableTaskClient client, CancellationToken cancellation) =>
        new ResultAction(await graphs.TerminateAsync(request, client, id, cancellation));

    [Function("PurgeJob")]
    public async Task<IActionResult> PurgeJob(
        [HttpTrigger(AuthorizationLevel.Anonymous, "delete", Route = Routes.Job)] HttpRequest request, string id,
        [DurableClient] DurableTaskClient client, CancellationToken cancellation) =>
        new ResultAction(await graphs.PurgeAsync(request, client, id, cancellation));

    [Function("RaiseJobEvent")]
    public async Task<IActionResult> RaiseJobEvent(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = Routes.JobEvent)] HttpRequest request, string id, string eventName,
        [DurableClient] DurableTaskClient client, CancellationToken cancellation) =>
        new ResultAction(await graphs.RaiseEventAsync(request, client, id, eventName, cancellation));

    [Function("Steer")]
    public async Task<IActionResult> Steer(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = Routes.Steer)] HttpRequest request, CancellationToken cancellation) =>
        new ResultAction(await models.SteerAsync(request, cancellation));

    [Function("ForwardPass")]
    public async Task<IActionResult> ForwardPass(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = Routes.ForwardPass)] HttpRequest request, CancellationToken cancellation) =>
        new ResultAction(await models.ForwardPassAsync(request, cancellation));

    [Function("ParseChatPrompt")]
    public async Task<IActionResult> ParseChatPrompt(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = Routes.ParseChatPrompt)] HttpRequest request, CancellationToken cancellation) =>
        new ResultAction(await models.ParseChatPromptAsync(request, cancellation));

    [Function("Feature")]
    public async Task<IActionResult> Feature(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = Routes.Feature)] HttpRequest request, string layer, string index) =>
        new ResultAction(await models.FeatureAsync(request, layer, index));

    [Function("FeatureDensities")]
    public async Task<IActionResult> FeatureDensities(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = Routes.FeatureDensities)] HttpRequest request, CancellationToken cancellation) =>
        new ResultAction(await models.FeatureDensitiesAsync(request, cancellation));

    [Function("CheckBusy")]
    public IActionResult CheckBusy(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = Routes.CheckBusy)] HttpRequest request) =>
        new ResultAction(models.CheckBusy());

    [Function("OpenApi")]
    public static IActionResult OpenApi(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = Routes.OpenApi)] HttpRequest request) =>
        new ResultAction(DocsApi.OpenApi());

    [Function("Docs")]
    public static IActionResult Docs(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = Routes.Docs)] HttpRequest request) =>
        new ResultAction(DocsApi.Docs());

    /// <remarks>Not at "/": the Functions host answers that with its own landing page (Routes).</remarks>
    [Function("ViewerJobs")]
    public IActionResult ViewerJobs(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = Routes.ViewerJobs)] HttpRequest request) =>
        new ResultAction(viewer.Page(request, ViewerApi.JobsPage));

    [Function("ViewerGraph")]
    public IActionResult ViewerGraph(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = Routes.ViewerGraph)] HttpRequest request) =>
        new ResultAction(viewer.Page(request, ViewerApi.GraphPage));

    [Function("ViewerSettings")]
    public async Task<IActionResult> ViewerSettings(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = Routes.ViewerSettings)] HttpRequest request) =>
        new ResultAction(await viewer.SettingsAsync(request));

    [Function("ViewerAsset")]
    public IActionResult ViewerAsset(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = Routes.ViewerAsset)] HttpRequest request, string file) =>
        new ResultAction(viewer.Asset(request, file));

    /// <summary>Runs a minimal-API result inside the Functions ASP.NET Core pipeline.</summary>
    private sealed class ResultAction(IResult result) : IActionResult
    {
        public Task ExecuteResultAsync(ActionContext context) => result.ExecuteAsync(context.HttpContext);
    }
}

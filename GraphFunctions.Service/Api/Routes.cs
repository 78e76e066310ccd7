namespace GraphFunctions.Api;

/// <summary>
/// Every HTTP route of the service, once: the Functions triggers (Http/HttpFunctions.cs) and the
/// local host's map use these templates, and openapi.json lists the same paths (RouteTableTests
/// holds all three together). Templates have no leading slash, as the Functions host takes them
/// (routePrefix "" in host.json).
/// </summary>
/// <remarks>
/// The real Functions host maps an empty route to the function's name and answers "/" with its own
/// homepage, and it matches routes in its own order, so a parameter route can shadow a literal one
/// with as many segments. Hence no empty route, and no literal route that a parameter route of the
/// same method and length also matches: the jobs page is <see cref="ViewerJobs"/>, the pages'
/// files sit one level below <see cref="ViewerSettings"/>.
/// </remarks>
public static class Routes
{
    public const string GenerateGraph = "generate-graph";
    public const string Jobs = "jobs";
    public const string Job = "jobs/{id}";
    public const string JobResult = "jobs/{id}/result";
    public const string JobTerminate = "jobs/{id}/terminate";
    public const string JobAnnotations = "jobs/{id}/annotations";
    public const string JobEvent = "jobs/{id}/raiseEvent/{eventName}";
    public const string Steer = "steer";
    public const string ForwardPass = "forward-pass";
    public const string ParseChatPrompt = "parse-chat-prompt";
    public const string CheckBusy = "check-busy";
    public const string Feature = "features/{layer}/{index}";
    public const string FeatureDensities = "features/densities";
    public const string OpenApi = "openapi.json";
    public const string Docs = "docs";
    public const string ViewerJobs = "viewer";
    public const string ViewerGraph = "graphs/{slug}";
    public const string ViewerSettings = "viewer/settings";
    public const string ViewerAsset = "viewer/assets/{file}";

    /// <summary>The URL path of a template without parameters, as a client requests it.</summary>
    public static string PathOf(string template) => "/" + template;
}

namespace GraphFunctions.Tests.Support;

using System.Text.Json;

/// <summary>Graph jobs on host processes as a client sees them over HTTP: the request, the status it polls (GET /jobs/{id}).</summary>
public static class HostJobs
{
    /// <summary>A tiny-model job of many one-batch activities (batch 4, 240 features: 60), so a fault lands mid-job.</summary>
    public static string Body(string slug, string extra = "") =>
        $$"""{"prompt": "The cat sat on the mat", "model_id": "graphfunctions/tiny-gemma-2", "slug_identifier": "{{slug}}", "batch_size": 4, "max_feature_nodes": 240{{extra}}}""";

    public static readonly TimeSpan JobLimit = TimeSpan.FromMinutes(4);

    /// <summary>POST /generate-graph without waiting for the job (Prefer: respond-async).</summary>
    public static async Task<HttpResponseMessage> StartAsync(HttpClient client, string body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/generate-graph") { Content = HostProcess.Json(body) };
        request.Headers.Add("Prefer", "respond-async");
        return await client.SendAsync(request);
    }

    public static async Task<JsonElement> StatusAsync(HttpClient client, string id)
    {
        using var response = await client.GetAsync($"/jobs/{id}");
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.Clone();
    }

    public static int Visited(JsonElement status) =>
        status.TryGetProperty("customStatus", out var custom) && custom.ValueKind == JsonValueKind.Object ? custom.GetProperty("features_visited").GetInt32() : 0;

    public static bool Finished(JsonElement status) => status.TryGetProperty("runtimeStatus", out var s) && s.GetString() is "Completed" or "Failed" or "Terminated";

    public static string RuntimeStatus(JsonElement status) => status.GetProperty("runtimeStatus").GetString()!;

    /// <summary>Polls until <paramref name="done"/> holds, within <see cref="JobLimit"/>.</summary>
    public static async Task<JsonElement> WaitAsync(HttpClient client, string id, Func<JsonElement, bool> done)
    {
        var deadline = DateTime.UtcNow + JobLimit;
        while (DateTime.UtcNow < deadline)
        {
            var status = await StatusAsync(client, id);
            if (done(status)) return status;
            await Task.Delay(250);
        }
        throw new TimeoutException($"job {id} did not get there within {JobLimit}: {await StatusAsync(client, id)}");
    }
}

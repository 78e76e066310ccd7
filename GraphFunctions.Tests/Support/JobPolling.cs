namespace GraphFunctions.Tests.Support;

using System.Text.Json;

/// <summary>A job's status as a client polls it over HTTP (GET /jobs/{id}), for tests against host processes.</summary>
public static class JobPolling
{
    public static readonly TimeSpan JobLimit = TimeSpan.FromMinutes(4);

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

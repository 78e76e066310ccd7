namespace Benchmarks;

using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using GraphFunctions.LocalHost;

/// <summary>
/// The local host in a process of its own, started as scripts/run.sh starts it (its process settings,
/// a port it picks and announces), so its memory is measured alone: peak resident memory (VmHWM)
/// can be reset before each graph and read after it.
/// </summary>
internal sealed class ServiceProcess : IAsyncDisposable
{
    private readonly Process process;
    private readonly Queue<string> lastLines = new();   // the service's last words, shown if it fails

    private ServiceProcess(Process process, HttpClient http)
    {
        this.process = process;
        Http = http;
    }

    public HttpClient Http { get; }

    public int Id => process.Id;

    /// <summary>Starts the host with <paramref name="settings"/> (plus run.sh's process settings) and waits for its ready line.</summary>
    public static async Task<ServiceProcess> StartAsync(IReadOnlyDictionary<string, string> settings, string secret)
    {
        var start = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "GraphFunctions.LocalHost.dll"));
        // On the command line, not in the environment: the in-memory Durable sidecar reads a
        // `urls` variable too and would take the address itself.
        start.ArgumentList.Add("--urls");
        start.ArgumentList.Add("http://127.0.0.1:0");
        start.Environment["DOTNET_PROCESSOR_COUNT"] = "8";
        start.Environment["MALLOC_ARENA_MAX"] = "1";
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        start.Environment["Logging__LogLevel__GraphFunctions.LocalHost"] = "Information";
        foreach (var (name, value) in settings) start.Environment[name] = value;
        var process = Process.Start(start)!;
        var listening = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var service = new ServiceProcess(process, new HttpClient { Timeout = TimeSpan.FromHours(2) });
        void Keep(string? line)
        {
            if (line is null) return;
            const string Announcement = LocalHostApp.ReadyAnnouncement;
            if (line.Contains(Announcement, StringComparison.Ordinal)) listening.TrySetResult(line[(line.IndexOf(Announcement, StringComparison.Ordinal) + Announcement.Length)..].Split(' ')[0]);
            lock (service.lastLines)
            {
                service.lastLines.Enqueue(line);
                if (service.lastLines.Count > 40) service.lastLines.Dequeue();
            }
        }
        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            service.Http.BaseAddress = new Uri(await listening.Task.WaitAsync(TimeSpan.FromMinutes(2)));
        }
        catch
        {
            await service.DisposeAsync();
            throw;
        }
        service.Http.DefaultRequestHeaders.Add("x-secret-key", secret);
        return service;
    }

    /// <summary>Starts a new peak of the service's resident memory (VmHWM).</summary>
    public void ResetPeak() => Measure.ResetPeakResident(Id.ToString(CultureInfo.InvariantCulture));

    public double PeakMiB => Measure.StatusMiB(Id.ToString(CultureInfo.InvariantCulture), "VmHWM");

    public double ResidentMiB => Measure.StatusMiB(Id.ToString(CultureInfo.InvariantCulture), "VmRSS");

    /// <summary>One graph through /generate-graph, waited for: its wall time as the client sees it.</summary>
    public async Task<double> GraphAsync(string modelId, string prompt, int features, int batch, string slug)
    {
        string body = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["prompt"] = prompt, ["model_id"] = modelId, ["slug_identifier"] = slug, ["max_feature_nodes"] = features, ["batch_size"] = batch,
        });
        using var content = new StringContent(body, new MediaTypeHeaderValue("application/json"));
        var clock = Stopwatch.StartNew();
        using var response = await Http.PostAsync("/generate-graph?wait_seconds=3600", content);
        string answer = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode) throw new HttpRequestException($"{(int)response.StatusCode}: {answer[..Math.Min(answer.Length, 500)]}");
        // Past the longest wait the answer is 202: the job's status says when it is done.
        while (response.StatusCode == HttpStatusCode.Accepted)
        {
            using var status = await Http.GetAsync($"/jobs/{slug}");
            if (status.StatusCode != HttpStatusCode.Accepted)
            {
                status.EnsureSuccessStatusCode();
                break;
            }
            await Task.Delay(TimeSpan.FromSeconds(1));
        }
        return clock.Elapsed.TotalSeconds;
    }

    /// <summary>The memory estimate the service made before it started the job (its status's memory_estimate_gb).</summary>
    public async Task<double> EstimateGbAsync(string slug)
    {
        using var status = JsonDocument.Parse(await Http.GetStringAsync($"/jobs/{slug}"));
        return status.RootElement.GetProperty("customStatus").GetProperty("memory_estimate_gb").GetDouble();
    }

    public string LastWords()
    {
        lock (lastLines) return string.Join('\n', lastLines);
    }

    public ValueTask DisposeAsync()
    {
        Http.Dispose();
        if (!process.HasExited) process.Kill(entireProcessTree: true);
        process.Dispose();
        return ValueTask.CompletedTask;
    }
}

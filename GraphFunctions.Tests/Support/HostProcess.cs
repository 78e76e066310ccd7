namespace GraphFunctions.Tests.Support;

using System.Diagnostics;
using System.Net.Http.Headers;
using System.Reflection;
using Attribution.Loading;
using Attribution.Synthetic;

/// <summary>
/// The local host as a real process (`dotnet GraphFunctions.LocalHost.dll`), on the Azure
/// Storage provider against Azurite: what the persistence tests kill with SIGKILL and restart.
/// Its output is kept line by line.
/// </summary>
public sealed class HostProcess : IDisposable
{
    public const string Secret = "process-secret";
    private readonly Process process;
    private readonly List<string> lines = [];

    private HostProcess(Process process, Uri? address)
    {
        this.process = process;
        Address = address;
        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    /// <summary>Null for a worker, which serves no routes.</summary>
    public Uri? Address { get; }

    public int Id => process.Id;

    /// <summary>Raised on the reader's thread as each line of output arrives, before the next is read.</summary>
    public event Action<string>? LineArrived;

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (lines) return [.. lines];
        }
    }

    /// <summary>Starts a host (or, with <paramref name="worker"/>, a worker) on task hub <paramref name="taskHub"/> sharing <paramref name="workspace"/>.</summary>
    public static HostProcess Start(string taskHub, string workspace, bool worker = false, IDictionary<string, string>? settings = null)
    {
        TinyRandomModelWriter.EnsureWritten();   // the model the host serves
        string dll = typeof(HostProcess).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "LocalHostAssembly").Value!;
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(dll);
        if (worker) start.ArgumentList.Add("--worker");
        Uri? address = worker ? null : new Uri($"http://127.0.0.1:{GraphFunctions.LocalHost.LocalHostApp.FreeLoopbackPort()}");
        var environment = new Dictionary<string, string>
        {
            ["DURABLE_STORAGE"] = "azure-storage",
            ["DURABLE_TASK_HUB"] = taskHub,
            ["AzureWebJobsStorage"] = "UseDevelopmentStorage=true",
            ["WORKSPACE_PATH"] = workspace,
            ["WORKSPACE_BLOB_CONTAINER"] = "",
            ["SECRET"] = Secret,
            ["MODEL_ID"] = TinyRandomModel.Id,
            ["MODEL_PATH"] = "",
            ["TRANSCODER_SET"] = "",
            ["BATCHES_PER_ACTIVITY"] = "1",
            ["UPDATE_INTERVAL"] = "1000",
            ["DOTNET_PROCESSOR_COUNT"] = "8",
        };
        if (address is not null) environment["urls"] = address.ToString().TrimEnd('/');
        foreach (var (name, value) in settings ?? new Dictionary<string, string>()) environment[name] = value;
        foreach (var (name, value) in environment) start.Environment[name] = value;
        return new HostProcess(Process.Start(start)!, address);
    }

    /// <summary>A client with the secret, for a host.</summary>
    public HttpClient Client()
    {
        var client = new HttpClient { BaseAddress = Address ?? throw new InvalidOperationException("a worker serves no routes"), Timeout = TimeSpan.FromMinutes(5) };
        client.DefaultRequestHeaders.Add("x-secret-key", Secret);
        return client;
    }

    /// <summary>Waits until the host answers (a worker: until it prints that it is ready).</summary>
    public async Task WaitReadyAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        using var probe = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited) throw new InvalidOperationException($"host exited ({process.ExitCode}):\n{string.Join('\n', Lines.TakeLast(40))}");
            if (Address is null ? Lines.Any(l => l.StartsWith(GraphFunctions.LocalHost.LocalHostApp.WorkerReadyAnnouncement, StringComparison.Ordinal)) : await AnswersAsync(probe)) return;
            await Task.Delay(200);
        }
        throw new TimeoutException($"host not ready after {timeout}:\n{string.Join('\n', Lines.TakeLast(40))}");
    }

    /// <summary>SIGKILL: no shutdown, no flushing — a crash.</summary>
    public void KillHard()
    {
        if (!process.HasExited) process.Kill(entireProcessTree: true);
        process.WaitForExit();
    }

    public void Dispose()
    {
        KillHard();
        process.Dispose();
    }

    public static StringContent Json(string body) => new(body, new MediaTypeHeaderValue("application/json"));

    private async Task<bool> AnswersAsync(HttpClient probe)
    {
        try
        {
            using var response = await probe.GetAsync(new Uri(Address!, "/check-busy"));
            return response.IsSuccessStatusCode;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return false;
        }
    }

    private void Keep(string? line)
    {
        if (line is null) return;
        lock (lines)
        {
            if (lines.Count < 100_000) lines.Add(line);
        }
        LineArrived?.Invoke(line);
    }
}

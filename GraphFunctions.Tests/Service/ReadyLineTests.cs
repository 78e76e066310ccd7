namespace GraphFunctions.Tests.Service;

using Attribution.Tests.Support;
using GraphFunctions.LocalHost;
using GraphFunctions.Tests.Support;

/// <summary>
/// The README's "ready" line: the local host, started as scripts/run.sh starts it (the same
/// assembly, the Azure Storage provider on Azurite, the bundled default model, run.sh's process
/// settings; on a free port instead of 5004), prints the address to open only once that address
/// answers, and run.sh prints no address of its own before the host starts.
/// </summary>
[Collection(UsesLocalService.Name)]
public sealed class ReadyLineTests : IDisposable
{
    private readonly TempFolder folder = new("gf-ready");

    public void Dispose() => folder.Dispose();

    [Fact]
    public async Task The_host_prints_its_ready_line_only_once_its_address_answers()
    {
        var settings = new Dictionary<string, string> { ["MODEL_ID"] = "", ["MALLOC_ARENA_MAX"] = "1" };   // run.sh: the default model, one arena
        using var host = HostProcess.Start($"t{Guid.NewGuid():N}"[..24], folder["workspace"], settings: settings);
        string address = host.Address!.ToString().TrimEnd('/');
        using var probe = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var answeredAtTheLine = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        // On the reader's thread as the line arrives: the host has printed it, so its address must already answer.
        host.LineArrived += line =>
        {
            if (line.StartsWith(LocalHostApp.ReadyAnnouncement, StringComparison.Ordinal)) answeredAtTheLine.TrySetResult(Answers(probe, address));
        };

        await host.WaitReadyAsync(TimeSpan.FromMinutes(2));
        bool answered = await answeredAtTheLine.Task.WaitAsync(TimeSpan.FromMinutes(1));
        Assert.True(answered, $"the ready line came before {address}/check-busy answered:\n{string.Join('\n', host.Lines)}");
        Assert.Equal(
            [$"GraphFunctions local host ready: open {address}/viewer (graph viewer; API docs: {address}/docs)"],
            host.Lines.Where(l => l.Contains(LocalHostApp.ReadyAnnouncement, StringComparison.Ordinal)));
        using var docs = await probe.GetAsync(new Uri($"{address}/docs"));
        Assert.True(docs.IsSuccessStatusCode, $"{address}/docs: {(int)docs.StatusCode}");
        // Its allocator: with jemalloc installed (scripts/test.sh installs it, as run.sh does) the host
        // re-executed itself with it, keeping its pid; without it, the C library's.
        bool mapsJemalloc = File.ReadLines($"/proc/{host.Id}/maps").Any(l => l.Contains("libjemalloc.so.2", StringComparison.Ordinal));
        Assert.Equal(Attribution.NativeAllocator.Installed is not null, mapsJemalloc);
        // …with its settings (freed pages kept for reuse), unless the environment named others.
        var environment = File.ReadAllText($"/proc/{host.Id}/environ").Split('\0');
        if (mapsJemalloc && Environment.GetEnvironmentVariable("MALLOC_CONF") is null)
            Assert.Contains($"MALLOC_CONF={Attribution.NativeAllocator.Settings}", environment);
    }

    [Fact]
    public void Run_sh_leaves_the_ready_line_to_the_host()
    {
        var printing = File.ReadAllLines(Infra.RepositoryFiles.PathOf("scripts/run.sh"))
            .Where(l => l.TrimStart().StartsWith("echo", StringComparison.Ordinal) || l.TrimStart().StartsWith("printf", StringComparison.Ordinal));
        Assert.DoesNotContain(printing, l => l.Contains("http", StringComparison.Ordinal));
        Assert.Contains("GraphFunctions.LocalHost.dll \"$@\"", File.ReadAllText(Infra.RepositoryFiles.PathOf("scripts/run.sh")), StringComparison.Ordinal);
    }

    [Fact]
    public void A_wildcard_address_reads_as_loopback()
    {
        Assert.Equal("GraphFunctions local host ready: open http://127.0.0.1:5004/viewer (graph viewer; API docs: http://127.0.0.1:5004/docs)", LocalHostApp.ReadyLine("http://0.0.0.0:5004"));
        Assert.Equal("GraphFunctions local host ready: open http://127.0.0.1:8080/viewer (graph viewer; API docs: http://127.0.0.1:8080/docs)", LocalHostApp.ReadyLine("http://[::]:8080"));
    }

    private static bool Answers(HttpClient probe, string address)
    {
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"{address}/check-busy");
            using var response = probe.Send(request);
            return response.IsSuccessStatusCode;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return false;
        }
    }
}

namespace GraphFunctions.Tests.Support;

using System.Diagnostics;
using GraphFunctions.Tests.Infra;

/// <summary>
/// Azurite stopped for real (its process ended, its ports closed) and started again on the same
/// data when disposed: a storage account that is unreachable for a while and then comes back.
/// Requires the Azurite that scripts/test-services.sh started.
/// </summary>
public sealed class AzuriteOutage : IAsyncDisposable
{
    private AzuriteOutage()
    {
    }

    public static async Task<AzuriteOutage> BeginAsync()
    {
        await RunAsync("stop-azurite");
        return new AzuriteOutage();
    }

    public async ValueTask DisposeAsync() => await RunAsync("resume-azurite");

    private static async Task RunAsync(string command)
    {
        var start = new ProcessStartInfo("bash", [RepositoryFiles.PathOf("scripts/test-services.sh"), command])
        {
            WorkingDirectory = RepositoryFiles.PathOf(""), RedirectStandardError = true, RedirectStandardOutput = true,
        };
        using var process = Process.Start(start)!;
        string errors = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0) throw new InvalidOperationException($"test-services.sh {command} failed: {errors}");
    }
}

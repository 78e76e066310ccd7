namespace GraphFunctions.Tests.Support;

using System.Diagnostics;
using System.Reflection;

/// <summary>The graphfunctions CLI as a user runs it: a process of its own, its output kept.</summary>
public sealed class CliProcess : IDisposable
{
    private readonly Process process;
    private readonly List<string> lines = [];

    private CliProcess(Process process)
    {
        this.process = process;
        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    /// <summary>Runs a command to its end.</summary>
    public static (int Exit, string Output) Run(params string[] arguments)
    {
        using var process = Process.Start(StartInfo(arguments))!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout + stderr.Result);
    }

    /// <summary>Starts a command that serves until it is disposed (killed).</summary>
    public static CliProcess Start(params string[] arguments) => new(Process.Start(StartInfo(arguments))!);

    /// <summary>The rest of the first line of output that starts with <paramref name="prefix"/>, once it is printed.</summary>
    public async Task<string> WaitForLineAsync(string prefix, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            lock (lines)
            {
                if (lines.FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal)) is { } line) return line[prefix.Length..];
            }
            if (process.HasExited) break;
            await Task.Delay(100);
        }
        lock (lines) throw new TimeoutException($"no line '{prefix}…' (exited: {process.HasExited}):\n{string.Join('\n', lines)}");
    }

    public void Dispose()
    {
        if (!process.HasExited) process.Kill(entireProcessTree: true);
        process.WaitForExit();
        process.Dispose();
    }

    private static ProcessStartInfo StartInfo(string[] arguments)
    {
        string cli = typeof(CliProcess).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "CliAssembly").Value!;
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(cli);
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        return start;
    }

    private void Keep(string? line)
    {
        if (line is null) return;
        lock (lines) lines.Add(line);
    }
}

namespace GraphFunctions.Tests.Support;

using System.Diagnostics;
using System.Reflection;

/// <summary>The graphfunctions CLI as a user runs it: a process of its own, its output kept.</summary>
public static class CliProcess
{
    public static (int Exit, string Output) Run(params string[] arguments)
    {
        string cli = typeof(CliProcess).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "CliAssembly").Value!;
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(cli);
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout + stderr.Result);
    }
}

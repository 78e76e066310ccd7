namespace Attribution.Tests.Support;

using System.Globalization;

/// <summary>Resident memory of this process, from /proc (page cache not included).</summary>
public static class ProcessMemory
{
    public static long ResidentBytes()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        }
        throw new InvalidOperationException("no VmRSS in /proc/self/status");
    }
}

/// <summary>Tests that measure the process's memory run alone, after the parallel ones.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MeasuresProcessMemory
{
    public const string Name = "measures process memory";
}

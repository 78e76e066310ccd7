namespace Benchmarks;

using System.Diagnostics;

/// <summary>Small helpers for timing and memory figures printed by the benchmarks.</summary>
internal static class Measure
{
    /// <summary>The middle value (the upper one of an even count); NaN for none.</summary>
    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length == 0 ? double.NaN : sorted[sorted.Length / 2];
    }

    public static double Seconds(Action work)
    {
        var clock = Stopwatch.StartNew();
        work();
        return clock.Elapsed.TotalSeconds;
    }

    /// <summary>Peak resident set size of this process so far (VmHWM), in MiB.</summary>
    public static double PeakResidentMiB() => StatusMiB("self", "VmHWM");

    /// <summary>Starts a new peak (VmHWM) for a process: Linux resets it on "5" written to clear_refs.</summary>
    public static void ResetPeakResident(string process = "self") => File.WriteAllText($"/proc/{process}/clear_refs", "5");

    /// <summary>Current resident set size (VmRSS), in MiB.</summary>
    public static double ResidentMiB() => StatusMiB("self", "VmRSS");

    /// <summary>A figure of /proc/PROCESS/status in MiB ("VmHWM:\t10485760 kB": a tab, no space, from 10 GB); 0 when absent.</summary>
    public static double StatusMiB(string process, string field)
    {
        foreach (var line in File.ReadLines($"/proc/{process}/status"))
        {
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
                return long.Parse(line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) / 1024.0;
        }
        return 0;
    }

    public static string Machine() =>
        $"{File.ReadLines("/proc/cpuinfo").Count(l => l.StartsWith("processor", StringComparison.Ordinal))} cores, {File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':')[1].Trim() ?? "unknown CPU"}";
}

namespace Attribution.Loading;

using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using Attribution.Tracing;

/// <summary>
/// The memory a graph may use: the configured limit (the service's MEMORY_LIMIT_GB, the CLI's
/// --memory-limit-gb), else what the device has: on the CPU what the machine gives this process
/// (its cgroup's limit or the physical memory), on a CUDA device its memory as the driver reports
/// it (nvidia-smi, which the GPU hosts mount into a container with the driver).
/// </summary>
public sealed record MemoryLimit(long Bytes, string Source)
{
    public double Gb => Bytes / 1e9;

    /// <summary>The limit for <paramref name="device"/>; null when nothing is configured and the device's memory cannot be read.</summary>
    /// <param name="gpuMemoryMiB">Reads a CUDA device's memory in MiB by its index (default: nvidia-smi); null when it cannot.</param>
    public static MemoryLimit? Resolve(double? configuredGb, string configuredName, string device, Func<int, long?>? gpuMemoryMiB = null)
    {
        if (configuredGb is double gb) return new((long)(gb * 1e9), configuredName);
        if (device.StartsWith("cuda", StringComparison.OrdinalIgnoreCase))
        {
            int index = device.Split(':') is [_, var ordinal] && int.TryParse(ordinal, CultureInfo.InvariantCulture, out int n) ? n : 0;
            return (gpuMemoryMiB ?? NvidiaSmiMemoryMiB)(index) is long mib ? new(mib * 1024 * 1024, $"the memory of GPU {index}, as its driver reports it") : null;
        }
        if (!device.StartsWith("cpu", StringComparison.OrdinalIgnoreCase)) return null;
        if (CgroupLimit() is long cgroup) return new(cgroup, "this container's memory limit");
        return PhysicalMemory() is long physical ? new(physical, "this machine's memory") : null;
    }

    /// <summary>A CUDA device's total memory in MiB from nvidia-smi; null without the tool or the device.</summary>
    private static long? NvidiaSmiMemoryMiB(int index)
    {
        var start = new ProcessStartInfo("nvidia-smi", ["--query-gpu=memory.total", "--format=csv,noheader,nounits", $"--id={index}"])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        try
        {
            using var process = Process.Start(start)!;
            string output = process.StandardOutput.ReadToEnd();
            if (!process.WaitForExit(TimeSpan.FromSeconds(10)) || process.ExitCode != 0) return null;
            return ParseMiB(output);
        }
        catch (Win32Exception)
        {
            return null;   // no nvidia-smi on this machine
        }
    }

    /// <summary>nvidia-smi's "81559" (MiB, one line per device asked for).</summary>
    public static long? ParseMiB(string output) =>
        long.TryParse(output.Trim().Split('\n')[0].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out long mib) && mib > 0 ? mib : null;

    /// <summary>Why a graph with <paramref name="estimate"/> cannot run under this limit, or null when it fits.</summary>
    public string? Refusal(MemoryEstimate estimate)
    {
        ArgumentNullException.ThrowIfNull(estimate);
        if (estimate.PeakBytes <= Bytes) return null;
        return $"this graph would need about {estimate.Describe()} for {estimate.Positions} tokens and {estimate.SelectedFeatures} features, "
            + $"more than the {Gb.ToString("0.0##", CultureInfo.InvariantCulture)} GB limit ({Source}); use a shorter prompt or fewer max_feature_nodes";
    }

    private static long? CgroupLimit()
    {
        const string path = "/sys/fs/cgroup/memory.max";
        string? text = File.Exists(path) ? File.ReadAllText(path).Trim() : null;
        return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long bytes) ? bytes : null;
    }

    private static long? PhysicalMemory()
    {
        if (!File.Exists("/proc/meminfo")) return null;
        var total = File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemTotal:", StringComparison.Ordinal));
        var parts = total?.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return parts is { Length: >= 2 } && long.TryParse(parts[1], CultureInfo.InvariantCulture, out long kib) ? kib * 1024 : null;
    }
}

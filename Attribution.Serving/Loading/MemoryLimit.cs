namespace Attribution.Loading;

using System.Globalization;
using Attribution.Tracing;

/// <summary>
/// The memory a graph may use: the configured limit (the service's MEMORY_LIMIT_GB, the CLI's
/// --memory-limit-gb), else on the CPU what the machine gives this process (its cgroup's limit or
/// the physical memory). A GPU's own memory is not read here: set the limit to use one.
/// </summary>
public sealed record MemoryLimit(long Bytes, string Source)
{
    public double Gb => Bytes / 1e9;

    /// <summary>The limit for <paramref name="device"/>; null when nothing is configured and the device is not the CPU.</summary>
    public static MemoryLimit? Resolve(double? configuredGb, string configuredName, string device)
    {
        if (configuredGb is double gb) return new((long)(gb * 1e9), configuredName);
        if (!device.StartsWith("cpu", StringComparison.OrdinalIgnoreCase)) return null;
        if (CgroupLimit() is long cgroup) return new(cgroup, "this container's memory limit");
        return PhysicalMemory() is long physical ? new(physical, "this machine's memory") : null;
    }

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

namespace Attribution;

using System.Runtime.InteropServices;
using System.Text;

/// <summary>
/// The native allocator of a host process (docs/performance.md, "Memory"). libtorch allocates CPU
/// tensors with malloc; glibc's heap keeps the freed fragments of a batched pass resident (the
/// 64-token frozen pass of the mid model peaked 1.0 GB above what it keeps), where jemalloc returns
/// them and is faster too. A host calls <see cref="Adopt"/> first thing in Main: when Debian's
/// libjemalloc2 is installed and not yet loaded, the process re-executes itself (same pid, argv and
/// streams) with it preloaded, since an allocator must be in place before the runtime starts.
/// </summary>
public static partial class NativeAllocator
{
    /// <summary>Set to "system" to keep the C library's allocator.</summary>
    public const string Setting = "GRAPHFUNCTIONS_ALLOCATOR";

    private const string Library = "libjemalloc.so.2";

    /// <summary>
    /// jemalloc's settings unless MALLOC_CONF names others. Freed pages stay mapped for reuse: with
    /// its default decay it hands the pages of a pass's freed tensors back to the system within
    /// seconds, and the next pass faults them in again (the frozen passes of head loadings and QK
    /// tracing spent more time in the kernel than computing). One arena for every thread: a
    /// service's activities run on whichever pool thread is free, and with an arena per thread each
    /// kept its own pages, so every job faulted in new ones and the resident memory climbed from job
    /// to job (docs/performance.md, "The allocator").
    /// </summary>
    public const string Settings = "narenas:1,dirty_decay_ms:-1,muzzy_decay_ms:-1";

    /// <summary>Where Debian and Ubuntu's libjemalloc2 puts the library, by architecture.</summary>
    private static readonly string[] Folders = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"];

    /// <summary>The installed jemalloc, or null.</summary>
    public static string? Installed => Folders.Select(folder => Path.Combine(folder, Library)).FirstOrDefault(File.Exists);

    /// <summary>Whether this process allocates with jemalloc (it is mapped in).</summary>
    public static bool InUse => OperatingSystem.IsLinux() && File.ReadLines("/proc/self/maps").Any(line => line.Contains(Library, StringComparison.Ordinal));

    /// <summary>Re-executes this process with jemalloc preloaded when it is installed and not in use; returns only when it stays as it is.</summary>
    public static void Adopt()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable(Setting) == "system" || Installed is not { } library || InUse) return;
        // The exact argv this process started with ("dotnet app.dll ..." or the apphost's), NUL-separated.
        var argv = Encoding.UTF8.GetString(File.ReadAllBytes("/proc/self/cmdline")).TrimEnd('\0').Split('\0');
        string preload = Environment.GetEnvironmentVariable("LD_PRELOAD") is { Length: > 0 } other ? $"{library}:{other}" : library;
        var environment = Environment.GetEnvironmentVariables().Keys.Cast<string>()
            .Where(name => name != "LD_PRELOAD")
            .Select(name => $"{name}={Environment.GetEnvironmentVariable(name)}")
            .Append($"LD_PRELOAD={preload}")
            .Concat(Environment.GetEnvironmentVariable("MALLOC_CONF") is { Length: > 0 } ? [] : [$"MALLOC_CONF={Settings}"])
            .Append($"{Setting}=system")   // had the preload failed, the new process must not try again
            .ToArray();
        // The binary itself (dotnet, or the app's own launcher), so the process keeps its name.
        _ = execve(Environment.ProcessPath ?? "/proc/self/exe", [.. argv, null], [.. environment, null]);
        // Only on failure does execve return: carry on with the system allocator.
    }

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int execve(string path, string?[] argv, string?[] envp);
}

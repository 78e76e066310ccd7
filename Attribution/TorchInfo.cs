namespace Attribution;

using System.Runtime.InteropServices;
using TorchSharp;

/// <summary>Process-wide settings of the native stack, applied once by every host at start-up.</summary>
public static partial class TorchInfo
{
    public static string Describe() =>
        $"TorchSharp {typeof(torch).Assembly.GetName().Version}, libtorch CUDA available: {torch.cuda.is_available()}, threads: {torch.get_num_threads()}";

    /// <summary>
    /// Returns the memory freed tensors left in glibc's heap to the system (malloc_trim), once a
    /// job is over: a long-lived service should not keep hundreds of MB of a finished graph's
    /// batches. It is called between jobs, never in the hot loop — serving large tensors from
    /// fresh mappings instead (mallopt M_MMAP_THRESHOLD 1 MiB, tried before) made feature rows
    /// 2.3× slower on a 12-layer model (a page fault per touched page of every new tensor).
    /// No effect off glibc.
    /// </summary>
    public static void ReleaseFreedMemory()
    {
        if (!OperatingSystem.IsLinux()) return;
        try
        {
            _ = malloc_trim(0);
        }
        catch (DllNotFoundException)
        {
            // Not glibc (e.g. musl): nothing to return.
        }
        catch (EntryPointNotFoundException)
        {
        }
    }

    [LibraryImport("libc")]
    private static partial int malloc_trim(nuint pad);
}

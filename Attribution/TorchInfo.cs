namespace Attribution;

using System.Runtime.InteropServices;
using TorchSharp;

/// <summary>Process-wide settings of the native stack, applied once by every host at start-up.</summary>
public static partial class TorchInfo
{
    public static string Describe() =>
        $"TorchSharp {typeof(torch).Assembly.GetName().Version}, libtorch CUDA available: {torch.cuda.is_available()}, threads: {torch.get_num_threads()}";

    /// <summary>
    /// Returns the memory freed tensors left in the allocator to the system: after a model is loaded,
    /// and in the service once its worker has been idle a while (a long-lived service should not
    /// keep a finished graph's batches, but the next job of a busy one reuses them). Under jemalloc,
    /// which keeps freed pages mapped (<see cref="NativeAllocator.Settings"/>), every arena's are purged; under glibc, its heap is trimmed (malloc_trim). It is called between
    /// jobs, never in the hot loop — serving large tensors from fresh mappings instead (mallopt
    /// M_MMAP_THRESHOLD 1 MiB, tried before) made feature rows 2.3× slower on a 12-layer model
    /// (a page fault per touched page of every new tensor).
    /// </summary>
    /// <param name="midJob">
    /// Called while a job goes on: jemalloc's pages are left alone, since the batches that follow
    /// reuse them (purged, they would fault them in again: the 64-token graph's prepare took
    /// 2.0 s instead of 1.2–1.3 s); glibc's heap is still trimmed, as it would not reuse them well.
    /// </param>
    public static void ReleaseFreedMemory(bool midJob = false)
    {
        if (!OperatingSystem.IsLinux()) return;
        if (JemallocInUse.Value)
        {
            if (midJob) return;
            // MALLCTL_ARENAS_ALL (4096): every arena at once.
            _ = mallctl("arena.4096.purge", 0, 0, 0, 0);
            return;
        }
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

    private static readonly Lazy<bool> JemallocInUse = new(() => NativeAllocator.InUse);

    [LibraryImport("libjemalloc.so.2", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mallctl(string name, nint oldValue, nint oldLength, nint newValue, nuint newLength);
}

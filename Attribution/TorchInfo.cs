namespace Attribution;

using System.Runtime.InteropServices;
using TorchSharp;

/// <summary>Process-wide settings of the native stack, applied once by every host at start-up.</summary>
public static partial class TorchInfo
{
    private const int MmapThresholdOption = -3;   // glibc mallopt M_MMAP_THRESHOLD

    public static string Describe() =>
        $"TorchSharp {typeof(torch).Assembly.GetName().Version}, libtorch CUDA available: {torch.cuda.is_available()}, threads: {torch.get_num_threads()}";

    /// <summary>
    /// Makes glibc serve every allocation of 1 MiB or more with its own mapping, returned to the
    /// OS on free. Without it glibc raises that threshold after the first large free and keeps
    /// freed tensors (streamed encoder chunks, per-batch rows) in its heap: the process then
    /// looks hundreds of MB larger than what it holds. No effect off glibc.
    /// </summary>
    public static void ReturnFreedTensorMemoryToTheSystem()
    {
        if (!OperatingSystem.IsLinux()) return;
        try
        {
            _ = mallopt(MmapThresholdOption, 1 << 20);
        }
        catch (DllNotFoundException)
        {
            // Not glibc (e.g. musl): nothing to tune.
        }
        catch (EntryPointNotFoundException)
        {
        }
    }

    [LibraryImport("libc")]
    private static partial int mallopt(int parameter, int value);
}

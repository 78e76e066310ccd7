namespace Attribution;

using TorchSharp;

/// <summary>Which libtorch this process runs on, for logs and the health of a deployment.</summary>
public static class TorchInfo
{
    public static string Describe() =>
        $"TorchSharp {typeof(torch).Assembly.GetName().Version}, libtorch CUDA available: {torch.cuda.is_available()}, threads: {torch.get_num_threads()}";
}

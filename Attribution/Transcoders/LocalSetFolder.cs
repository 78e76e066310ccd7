namespace Attribution.Transcoders;

/// <summary>The folder of a local transcoder set, named by its config.yaml or by the folder itself; null for a hub set.</summary>
internal static class LocalSetFolder
{
    public static string? Of(string transcoderSet) =>
        Directory.Exists(transcoderSet) ? transcoderSet : File.Exists(transcoderSet) ? Path.GetDirectoryName(Path.GetFullPath(transcoderSet)) : null;
}

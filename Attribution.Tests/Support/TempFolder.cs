namespace Attribution.Tests.Support;

/// <summary>A folder under the system temp directory, deleted when disposed.</summary>
public sealed class TempFolder : IDisposable
{
    public TempFolder(string prefix = "gf-test")
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string this[string relative] => System.IO.Path.Combine(Path, relative);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A file still open by a finalizer-owned handle; the OS temp cleaner gets it.
        }
    }
}

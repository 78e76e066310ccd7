namespace Attribution.Tokenization;

using System.Text.Encodings.Web;
using System.Text.Json;

/// <summary>One entry of tokenizer.json's <c>added_tokens</c>.</summary>
internal sealed record AddedToken(int Id, string Content, bool Special);

/// <summary>
/// The facts this product needs from a Hugging Face tokenizer.json that the native library does
/// not expose: special tokens, vocabulary size, the BOS its post-processor adds.
/// </summary>
internal sealed class TokenizerDefinition
{
    private TokenizerDefinition(IReadOnlyList<AddedToken> addedTokens, int vocabSize, int? postProcessorBosId)
    {
        AddedTokens = addedTokens;
        VocabSize = vocabSize;
        PostProcessorBosId = postProcessorBosId;
    }

    public IReadOnlyList<AddedToken> AddedTokens { get; }

    /// <summary>One past the highest id of the model vocabulary and the added tokens.</summary>
    public int VocabSize { get; }

    /// <summary>The special token the post-processor puts first when it adds special tokens, if any.</summary>
    public int? PostProcessorBosId { get; }

    /// <summary>
    /// Reads the facts from tokenizer.json and writes its "plain" copy to <paramref name="plainCopy"/>:
    /// the same file with no post-processor, no truncation or padding, and no added token marked
    /// special, so that the native library's encode adds nothing and its decode drops nothing.
    /// </summary>
    /// <remarks>
    /// Tokenizers.DotNet always encodes with <c>add_special_tokens = true</c> and always decodes with
    /// <c>skip_special_tokens = true</c>. Without a post-processor nothing is added. Clearing the
    /// <c>special</c> flag makes decode keep every token's text; it does not change how text is
    /// split, since added tokens are matched by their <c>normalized</c>/<c>lstrip</c>/<c>rstrip</c>
    /// fields whether special or not (the flag would matter only with <c>split_special_tokens</c>,
    /// which tokenizer.json leaves off). Truncation and padding are cleared because transformers
    /// ignores them unless a call asks for them.
    /// </remarks>
    public static TokenizerDefinition Read(string path, Stream plainCopy)
    {
        using var file = File.OpenRead(path);
        using var document = JsonDocument.Parse(file);
        var root = document.RootElement;

        var addedTokens = ReadAddedTokens(root);
        var highestId = Math.Max(HighestModelId(root.GetProperty("model")), addedTokens.Select(t => t.Id).DefaultIfEmpty(-1).Max());
        var bosId = root.TryGetProperty("post_processor", out var processor) ? LeadingSpecialTokenId(processor) : null;
        WritePlain(root, plainCopy);
        return new TokenizerDefinition(addedTokens, highestId + 1, bosId);
    }

    private static List<AddedToken> ReadAddedTokens(JsonElement root)
    {
        if (!root.TryGetProperty("added_tokens", out var added) || added.ValueKind != JsonValueKind.Array)
        {
            return [];
        }

        return [.. added.EnumerateArray().Select(t => new AddedToken(
            t.GetProperty("id").GetInt32(),
            t.GetProperty("content").GetString() ?? "",
            t.TryGetProperty("special", out var special) && special.ValueKind == JsonValueKind.True))];
    }

    /// <summary>BPE, WordPiece and WordLevel map piece → id; Unigram lists [piece, score] by id.</summary>
    private static int HighestModelId(JsonElement model)
    {
        if (!model.TryGetProperty("vocab", out var vocab))
        {
            return -1;
        }

        return vocab.ValueKind switch
        {
            JsonValueKind.Object => vocab.EnumerateObject().Select(p => p.Value.GetInt32()).DefaultIfEmpty(-1).Max(),
            JsonValueKind.Array => vocab.GetArrayLength() - 1,
            _ => -1,
        };
    }

    /// <summary>
    /// The id of the special token a post-processor places before the text: the first item of a
    /// template's <c>single</c> sequence, or BERT/RoBERTa's <c>cls</c>; in a Sequence, the first found.
    /// </summary>
    private static int? LeadingSpecialTokenId(JsonElement processor)
    {
        if (processor.ValueKind != JsonValueKind.Object || !processor.TryGetProperty("type", out var type))
        {
            return null;
        }

        switch (type.GetString())
        {
            case "TemplateProcessing":
                var single = processor.GetProperty("single");
                if (single.GetArrayLength() == 0 || !single[0].TryGetProperty("SpecialToken", out var first))
                {
                    return null;
                }

                var name = first.GetProperty("id").GetString() ?? "";
                var ids = processor.GetProperty("special_tokens").GetProperty(name).GetProperty("ids");
                return ids.GetArrayLength() > 0 ? ids[0].GetInt32() : null;
            case "BertProcessing" or "RobertaProcessing":
                return processor.GetProperty("cls")[1].GetInt32();
            case "Sequence":
                return processor.GetProperty("processors").EnumerateArray()
                    .Select(LeadingSpecialTokenId).FirstOrDefault(id => id is not null);
            default:
                return null;
        }
    }

    private static void WritePlain(JsonElement root, Stream plainCopy)
    {
        // Relaxed escaping writes non-ASCII pieces as UTF-8 rather than \u escapes (same JSON, smaller).
        var options = new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        using var json = new Utf8JsonWriter(plainCopy, options);
        json.WriteStartObject();
        foreach (var property in root.EnumerateObject())
        {
            switch (property.Name)
            {
                case "post_processor" or "truncation" or "padding":
                    json.WriteNull(property.Name);
                    break;
                case "added_tokens" when property.Value.ValueKind == JsonValueKind.Array:
                    WriteAddedTokensAsNotSpecial(json, property.Value);
                    break;
                default:
                    property.WriteTo(json);
                    break;
            }
        }

        json.WriteEndObject();
    }

    private static void WriteAddedTokensAsNotSpecial(Utf8JsonWriter json, JsonElement addedTokens)
    {
        json.WriteStartArray("added_tokens");
        foreach (var token in addedTokens.EnumerateArray())
        {
            json.WriteStartObject();
            foreach (var field in token.EnumerateObject())
            {
                if (field.NameEquals("special"))
                {
                    json.WriteBoolean("special", false);
                }
                else
                {
                    field.WriteTo(json);
                }
            }

            json.WriteEndObject();
        }

        json.WriteEndArray();
    }
}

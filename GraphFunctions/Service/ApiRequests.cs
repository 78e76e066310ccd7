namespace GraphFunctions.Service;

using System.Text;
using Attribution.Loading;
using Microsoft.AspNetCore.Http;

/// <summary>The checks every model route shares: body size and JSON, model_id, the prompt and its token count.</summary>
public static class ApiRequests
{
    public const int MaxBodyBytes = 1 << 20;
    public const int MaxPromptCharacters = 20_000;

    /// <summary>A model route's request after the common checks: its fields, the served model and the prompt.</summary>
    public sealed record ModelRequest(RequestFields Fields, LoadedModel Model, string? Prompt);

    /// <summary>
    /// What every model route does first: the secret, the JSON body, model_id against the served
    /// model, the prompt. Field problems are collected in the fields; a refusal is returned at once.
    /// </summary>
    public static async Task<(ModelRequest? Request, IResult? Refusal)> BeginAsync(HttpRequest request, SecretCheck secret, ModelHost models,
        bool modelIdRequired, CancellationToken cancellation)
    {
        if (secret.Refusal(request) is { } refused) return (null, refused);
        var (fields, bodyRefusal) = await ReadBodyAsync(request, cancellation);
        if (fields is null) return (null, bodyRefusal);
        LoadedModel model;
        try
        {
            model = await models.GetAsync();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return (null, ApiResults.Error(StatusCodes.Status503ServiceUnavailable, $"the model {models.ModelId} could not be loaded: {e.Message}"));
        }
        CheckModelId(fields, model.ModelId, modelIdRequired);
        return (new ModelRequest(fields, model, Prompt(fields)), null);
    }

    /// <summary>The JSON body as fields, or the 4xx answer explaining why not.</summary>
    public static async Task<(RequestFields? Fields, IResult? Refusal)> ReadBodyAsync(HttpRequest request, CancellationToken cancellation)
    {
        if (request.ContentLength > MaxBodyBytes)
            return (null, ApiResults.Error(StatusCodes.Status413PayloadTooLarge, $"request body is larger than {MaxBodyBytes} bytes"));
        var buffer = new MemoryStream();
        var chunk = new byte[16384];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, cancellation)) > 0)
        {
            buffer.Write(chunk, 0, read);
            if (buffer.Length > MaxBodyBytes)
                return (null, ApiResults.Error(StatusCodes.Status413PayloadTooLarge, $"request body is larger than {MaxBodyBytes} bytes"));
        }
        string body;
        try
        {
            body = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
        }
        catch (DecoderFallbackException)
        {
            return (null, ApiResults.BadRequest("request body is not valid UTF-8"));
        }
        var fields = RequestFields.Parse(body, out string? error);
        return fields is null ? (null, ApiResults.BadRequest(error!)) : (fields, null);
    }

    /// <summary>model_id must name the model this server runs.</summary>
    public static void CheckModelId(RequestFields fields, string servedModelId, bool required)
    {
        string? modelId = fields.Text("model_id", required, maxLength: 256);
        if (modelId is not null && modelId != servedModelId)
            fields.Fail($"model_id '{modelId}' is not served here: this server runs '{servedModelId}'");
    }

    /// <summary>The prompt field: present, a string, not empty, well-formed Unicode, not huge.</summary>
    public static string? Prompt(RequestFields fields)
    {
        if (fields.Has("messages") && !fields.Has("prompt"))
        {
            fields.Fail("messages (chat input) is not supported: send the prompt as text in prompt");
            return null;
        }
        string? prompt = fields.Text("prompt", required: true, maxLength: MaxPromptCharacters);
        if (prompt is null) return null;
        if (prompt.Length == 0)
        {
            fields.Fail("prompt must not be empty");
            return null;
        }
        if (!IsWellFormed(prompt))
        {
            fields.Fail("prompt contains an unpaired UTF-16 surrogate (\\ud800-\\udfff escape without its pair)");
            return null;
        }
        return prompt;
    }

    /// <summary>Tokens of the prompt (BOS added) after the token-limit check of SPEC 2; null when over the limit.</summary>
    public static int[]? Tokenize(RequestFields fields, LoadedModel model, string prompt, int tokenLimit)
    {
        var tokens = model.Tokenizer.Encode(prompt);   // counted without the BOS the service adds
        if (tokens.Length > tokenLimit)
        {
            fields.Fail($"Prompt exceeds token limit ({tokens.Length} > {tokenLimit})");
            return null;
        }
        return model.Tokenizer.WithBos(tokens);
    }

    private static bool IsWellFormed(string text)
    {
        for (int i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) i++;
            else if (char.IsSurrogate(text[i])) return false;
        }
        return true;
    }
}

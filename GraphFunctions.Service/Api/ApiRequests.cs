namespace GraphFunctions.Api;

using System.Text;
using Attribution.Chat;
using Attribution.Loading;
using Attribution.Requests;
using GraphFunctions.Workers;
using Microsoft.AspNetCore.Http;

/// <summary>The checks every model route shares: body size and JSON, model_id, the prompt and its token count.</summary>
public static class ApiRequests
{
    public const int MaxBodyBytes = 1 << 20;

    /// <summary>
    /// Prompt tokens the synchronous routes (steer, forward-pass) accept. Graphs obey TOKEN_LIMIT;
    /// the webapp counts a graph prompt's tokens with /forward-pass, so that route must answer
    /// longer prompts too, and the steer modal sends a graph's rendered prompt back.
    /// </summary>
    public const int SynchronousTokenLimit = 4096;

    /// <summary>
    /// The busy answer. The webapp shows its "GPUs busy" message only when an error's text
    /// contains "503", so the text says it.
    /// </summary>
    public const string ServerBusy = "Server busy (503): the accelerator is in use, please try again later.";

    /// <summary>A model route's request after the common checks: its fields, the served model and the prompt.</summary>
    public sealed record ModelRequest(RequestFields Fields, LoadedModel Model, string? Prompt);

    /// <summary>
    /// What every model route does first: the secret, the JSON body, model_id against the served
    /// model, the prompt. Field problems are collected in the fields; a refusal is returned at once.
    /// </summary>
    public static async Task<(ModelRequest? Request, IResult? Refusal)> BeginAsync(HttpRequest request, SecretCheck secret, ModelHost models,
        TextField modelIdField, CancellationToken cancellation)
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
        CheckModelId(fields, model, modelIdField);
        return (new ModelRequest(fields, model, Prompt(fields, model)), null);
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

    /// <summary>
    /// model_id must name the model this server runs: its Hugging Face id, or its Neuronpedia id
    /// (the webapp sends that for models it has no Hugging Face mapping for).
    /// </summary>
    public static void CheckModelId(RequestFields fields, LoadedModel model, TextField modelIdField)
    {
        string? modelId = fields.Read(modelIdField);
        if (modelId is not null && modelId != model.ModelId && modelId != model.Scan)
            fields.Fail($"model_id '{modelId}' is not served here: this server runs '{model.ModelId}' (Neuronpedia id '{model.Scan}')");
    }

    public static IResult Busy() => ApiResults.Error(StatusCodes.Status503ServiceUnavailable, ServerBusy);

    /// <summary>
    /// The prompt: <c>messages</c> rendered with the model's chat template when they are sent (they
    /// win over <c>prompt</c>, as in the reference server), else the prompt field — present, a
    /// string, not empty, well-formed Unicode, not huge.
    /// </summary>
    public static string? Prompt(RequestFields fields, LoadedModel model)
    {
        var messages = fields.Read(RequestSchema.Messages, m => new ChatMessage(m.Read(RequestSchema.Role) ?? "", m.Read(RequestSchema.Content) ?? ""));
        if (messages.Count > 0)
        {
            if (!fields.Valid) return null;
            try
            {
                return model.Chat.Render(messages);
            }
            catch (ChatTemplateException e)
            {
                fields.Fail($"messages could not be rendered with the model's chat template: {e.Message}");
                return null;
            }
        }
        if (!fields.Has(RequestSchema.Prompt))
        {
            fields.Fail("prompt is required (or messages)");
            return null;
        }
        string? prompt = fields.Read(RequestSchema.Prompt);
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

    /// <summary>Tokens of the prompt (BOS added) after the token-limit check (docs/api.md); null when over the limit.</summary>
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

namespace GraphFunctions.Api;

using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Attribution.Chat;
using Attribution.Loading;
using Attribution.Requests;
using Attribution.Steering;
using Attribution.Tracing;
using GraphFunctions.Configuration;
using GraphFunctions.Workers;
using Microsoft.AspNetCore.Http;
using static TorchSharp.torch;

/// <summary>
/// The synchronous model routes (docs/api.md): POST /steer, POST /forward-pass, POST /parse-chat-prompt, GET /check-busy and GET /features/{layer}/{index}.
/// They run in the request, one at a time on the accelerator; a second caller waits a bounded
/// time, then gets 503 "Server busy".
/// </summary>
public sealed class ModelApi(ServiceOptions options, ModelHost models, SecretCheck secret, GpuGate gpu)
{
    public async Task<IResult> SteerAsync(HttpRequest request, CancellationToken cancellation)
    {
        var (begun, refusal) = await ApiRequests.BeginAsync(request, secret, models, RequestSchema.ModelId, cancellation);
        if (begun is null) return refusal!;
        var (fields, model, prompt) = begun;
        var features = fields.Read(RequestSchema.Features, ReadFeature);
        var generation = new GenerationOptions
        {
            NTokens = fields.Read(RequestSchema.NTokens),
            TopK = fields.Read(RequestSchema.TopK),
            Temperature = fields.Read(RequestSchema.Temperature),
            FreqPenalty = fields.Read(RequestSchema.FreqPenalty),
            Seed = fields.ReadOptional(RequestSchema.Seed),
            FreezeAttention = fields.Read(RequestSchema.FreezeAttention),
        };
        // The steer modal sends a graph's rendered prompt, which starts with the BOS text: the BOS rule keeps it single.
        int[]? tokens = prompt is null ? null : ApiRequests.Tokenize(fields, model, prompt, ApiRequests.SynchronousTokenLimit);
        if (!fields.Valid) return ApiResults.BadRequest(fields.ErrorMessage);

        var transcoders = model.Replacement.Transcoders;
        var problems = SteeringValidation.Validate(features, tokens!.Length, transcoders.NLayers, transcoders.DTranscoder);
        if (problems.Count > 0) return ApiResults.BadRequest(string.Join("; ", problems));

        using var slot = await gpu.TryEnterAsync(options.SteerWait, cancellation);
        if (slot is null) return ApiRequests.Busy();
        var vocabulary = new SteeringVocabulary(model.Tokenizer.BosId, model.Tokenizer.EosIds);
        // The request's token is cancelled when the client disconnects: generation stops and the slot frees.
        SteeringResult result;
        try
        {
            // Its freed memory stays for the next computation until the worker is idle (GpuGate).
            result = await Task.Run(() => Steerer.Steer(model.Replacement, tokens, features, generation, vocabulary, cancellation: cancellation), cancellation);
        }
        catch (NonFiniteLogitsException e)
        {
            return ApiResults.BadRequest(e.Message);
        }

        var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            SteeringResponse.Write(json, result, model.Tokenizer.DecodeToken, model.UnseenIn(tokens).Warnings);
        return Results.Bytes(buffer.ToArray(), "application/json; charset=utf-8");
    }

    public async Task<IResult> ForwardPassAsync(HttpRequest request, CancellationToken cancellation)
    {
        var (begun, refusal) = await ApiRequests.BeginAsync(request, secret, models, RequestSchema.OptionalModelId, cancellation);
        if (begun is null) return refusal!;
        var (fields, model, prompt) = begun;
        int maxLogits = fields.Read(RequestSchema.MaxNLogits);
        double desired = fields.Read(RequestSchema.DesiredLogitProb);
        int[]? tokens = prompt is null ? null : ApiRequests.Tokenize(fields, model, prompt, ApiRequests.SynchronousTokenLimit);
        if (!fields.Valid) return ApiResults.BadRequest(fields.ErrorMessage);

        using var slot = await gpu.TryEnterAsync(options.SteerWait, cancellation);
        if (slot is null) return ApiRequests.Busy();
        var (ids, probabilities) = await Task.Run(() => SalientLogits(model, tokens!, maxLogits, desired), cancellation);
        var answer = JsonSerializer.SerializeToNode(new
        {
            prompt,
            input_tokens = tokens!.Select(model.Tokenizer.DecodeToken).ToArray(),
            salient_logits = ids.Select((id, i) => new { token = model.Tokenizer.DecodeToken((int)id), token_id = id, probability = probabilities[i] }).ToArray(),
            total_salient_tokens = ids.Length,
            cumulative_probability = probabilities.Sum(),
        }, ApiResults.Json)!.AsObject();
        // Only when the prompt holds tokens the model never saw: otherwise the reference server's shape, unchanged.
        var unseen = model.UnseenIn(tokens!);
        if (unseen.Any)
        {
            answer["warnings"] = new JsonArray([.. unseen.Warnings.Select(w => JsonValue.Create(w))]);
            answer["unseen_positions"] = new JsonArray([.. unseen.Positions.Select(p => JsonValue.Create(p))]);
        }
        return Results.Json(answer, ApiResults.Json);
    }

    /// <summary>
    /// POST /parse-chat-prompt: a rendered prompt back into chat turns, as the reference server
    /// answers it (the webapp's Remix flow and steer modal): the prompt without its leading BOS,
    /// its messages (null for plain text) and the positions /steer will not steer — those holding
    /// the BOS in the tokens /steer makes of the prompt. No model run, so no accelerator slot.
    /// </summary>
    public async Task<IResult> ParseChatPromptAsync(HttpRequest request, CancellationToken cancellation)
    {
        var (begun, refusal) = await ApiRequests.BeginAsync(request, secret, models, RequestSchema.OptionalModelId, cancellation);
        if (begun is null) return refusal!;
        var (fields, model, sent) = begun;
        if (!fields.Valid) return ApiResults.BadRequest(fields.ErrorMessage);
        string prompt = model.Chat.StripLeadingBos(sent!);
        List<ChatMessage>? messages;
        try
        {
            messages = model.Chat.Parse(prompt);
        }
        catch (ChatTemplateException e)
        {
            return ApiResults.BadRequest($"the model's chat template cannot be used here: {e.Message}");
        }
        var tokens = model.Tokenizer.EncodePrompt(prompt);
        return Results.Json(new
        {
            messages = messages?.Select(m => new { role = m.Role, content = m.Content }).ToArray(),
            is_chat = messages is not null,
            prompt,
            unsteerable_positions = Enumerable.Range(0, tokens.Length).Where(i => tokens[i] == model.Tokenizer.BosId).ToArray(),
        }, ApiResults.Json);
    }

    public IResult CheckBusy() => Results.Json(new { busy = gpu.Busy });

    /// <summary>
    /// GET /features/{layer}/{index}: a feature's dashboard from the served set's features source
    /// (its top activating examples, logit effects and density, in circuit-tracer's feature JSON),
    /// with its address and the set's label; 404 naming what is missing.
    /// </summary>
    public async Task<IResult> FeatureAsync(HttpRequest request, string layer, string index)
    {
        if (secret.Refusal(request) is { } refused) return refused;
        if (FeatureRoute.ParseAddress(layer, index, out int l, out long i) is { } malformed) return malformed;
        var model = await models.GetAsync();
        var transcoders = model.Replacement.Transcoders;
        if (l >= transcoders.NLayers || i >= transcoders.DTranscoder)
            return ApiResults.Error(StatusCodes.Status404NotFound, $"{model.TranscoderSet} has layers 0-{transcoders.NLayers - 1} of {transcoders.DTranscoder} features: there is no L{l} #{i}");
        return FeatureRoute.Answer(model.Dashboards, model.TranscoderSet, l, i, model.Labels.Of(l, i));
    }

    /// <summary>POST /features/densities: the densities of many features of the served set (<see cref="FeatureRoute.DensitiesAsync"/>).</summary>
    public async Task<IResult> FeatureDensitiesAsync(HttpRequest request, CancellationToken cancellation)
    {
        if (secret.Refusal(request) is { } refused) return refused;
        var model = await models.GetAsync();
        return await FeatureRoute.DensitiesAsync(request, model.Dashboards, model.TranscoderSet, cancellation);
    }

    private static (long[] Ids, float[] Probabilities) SalientLogits(LoadedModel model, int[] tokens, int maxLogits, double desired)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        using var ids = tensor(tokens.Select(t => (long)t).ToArray(), device: model.Replacement.Model.Device).unsqueeze(0);
        var logits = model.Replacement.Model.ForwardLogits(ids);
        return LogitTargets.SalientTokens(logits[0, -1], maxLogits, desired);
    }

    /// <summary>One entry of features, as the schema describes it; unknown keys (the webapp adds some) are ignored.</summary>
    private static FeatureSteer ReadFeature(RequestFields f) => new(
        Layer: f.Read(RequestSchema.Layer),
        Index: f.Read(RequestSchema.Index),
        TokenActivePosition: f.Read(RequestSchema.TokenActivePosition),
        SteerPosition: f.ReadOptional(RequestSchema.SteerPosition),
        SteerGeneratedTokens: f.Read(RequestSchema.SteerGeneratedTokens),
        Delta: f.ReadOptional(RequestSchema.Delta),
        Ablate: f.Read(RequestSchema.Ablate));
}

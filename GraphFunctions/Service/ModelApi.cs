namespace GraphFunctions.Service;

using System.Text.Encodings.Web;
using System.Text.Json;
using Attribution.Loading;
using Attribution.Steering;
using Attribution.Tracing;
using GraphFunctions.Configuration;
using Microsoft.AspNetCore.Http;
using static TorchSharp.torch;

/// <summary>
/// The synchronous model routes (SPEC 2): POST /steer, POST /forward-pass and GET /check-busy.
/// They run in the request, one at a time on the accelerator; a second caller waits a bounded
/// time, then gets 503 "Server busy" as from the seed.
/// </summary>
public sealed class ModelApi(ServiceOptions options, ModelHost models, SecretCheck secret, GpuGate gpu)
{
    public const int MaxNewTokens = 512;

    public async Task<IResult> SteerAsync(HttpRequest request, CancellationToken cancellation)
    {
        var (begun, refusal) = await ApiRequests.BeginAsync(request, secret, models, modelIdRequired: true, cancellation);
        if (begun is null) return refusal!;
        var (fields, model, prompt) = begun;
        var features = fields.Objects("features", ReadFeature, required: true);
        var generation = new GenerationOptions(
            NTokens: fields.WholeNumber("n_tokens", 10, 1, MaxNewTokens),
            TopK: fields.WholeNumber("top_k", 5, 1, 1000),
            Temperature: fields.Number("temperature", 0, 0, 100),
            FreqPenalty: fields.Number("freq_penalty", 0, 0, 100),
            Seed: fields.OptionalWholeNumber("seed", int.MinValue, int.MaxValue),
            FreezeAttention: fields.Flag("freeze_attention", false));
        int[]? tokens = prompt is null ? null : ApiRequests.Tokenize(fields, model, prompt, options.TokenLimit);
        if (!fields.Valid) return ApiResults.BadRequest(fields.ErrorMessage);

        var transcoders = model.Replacement.Transcoders;
        var problems = SteeringValidation.Validate(features, generation, tokens!.Length, transcoders.NLayers, transcoders.DTranscoder);
        if (problems.Count > 0) return ApiResults.BadRequest(string.Join("; ", problems));

        using var slot = await gpu.TryEnterAsync(options.SteerWait, cancellation);
        if (slot is null) return ApiResults.Error(StatusCodes.Status503ServiceUnavailable, "Server busy");
        var result = await Task.Run(() => Steerer.Steer(model.Replacement, tokens, features, generation, model.Tokenizer.EosIds.ToHashSet()), cancellation);

        var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            SteeringResponse.Write(json, result, ids => model.Tokenizer.Decode(ids, skipSpecialTokens: true), model.Tokenizer.DecodeToken);
        return Results.Bytes(buffer.ToArray(), "application/json; charset=utf-8");
    }

    public async Task<IResult> ForwardPassAsync(HttpRequest request, CancellationToken cancellation)
    {
        var (begun, refusal) = await ApiRequests.BeginAsync(request, secret, models, modelIdRequired: false, cancellation);
        if (begun is null) return refusal!;
        var (fields, model, prompt) = begun;
        int maxLogits = fields.WholeNumber("max_n_logits", 10, 1, 1000);
        double desired = fields.Number("desired_logit_prob", 0.95, 0, 1);
        int[]? tokens = prompt is null ? null : ApiRequests.Tokenize(fields, model, prompt, options.TokenLimit);
        if (!fields.Valid) return ApiResults.BadRequest(fields.ErrorMessage);

        using var slot = await gpu.TryEnterAsync(options.SteerWait, cancellation);
        if (slot is null) return ApiResults.Error(StatusCodes.Status503ServiceUnavailable, "Server busy");
        var (ids, probabilities) = await Task.Run(() => SalientLogits(model, tokens!, maxLogits, desired), cancellation);
        return Results.Json(new
        {
            prompt,
            input_tokens = tokens!.Select(model.Tokenizer.DecodeToken).ToArray(),
            salient_logits = ids.Select((id, i) => new { token = model.Tokenizer.DecodeToken((int)id), token_id = id, probability = probabilities[i] }).ToArray(),
            total_salient_tokens = ids.Length,
            cumulative_probability = probabilities.Sum(),
        }, ApiResults.Json);
    }

    public IResult CheckBusy() => Results.Json(new { busy = gpu.Busy });

    private static (long[] Ids, float[] Probabilities) SalientLogits(LoadedModel model, int[] tokens, int maxLogits, double desired)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        using var ids = tensor(tokens.Select(t => (long)t).ToArray(), device: model.Replacement.Model.Device).unsqueeze(0);
        var logits = model.Replacement.Model.ForwardLogits(ids);
        return LogitTargets.SalientTokens(logits[0, -1], maxLogits, desired);
    }

    private static readonly string[] RequiredFeatureFields = ["layer", "index", "token_active_position"];

    /// <summary>One entry of features; layer, index and token_active_position have no defaults.</summary>
    private static FeatureSteer ReadFeature(RequestFields f)
    {
        foreach (var name in RequiredFeatureFields)
            if (!f.Has(name)) f.Fail($"{name} is required");
        return new FeatureSteer(
            Layer: f.WholeNumber("layer", -1, 0, 10_000),
            Index: f.WholeNumber("index", -1, 0, int.MaxValue),
            TokenActivePosition: f.WholeNumber("token_active_position", -1, 0, 100_000),
            SteerPosition: f.OptionalWholeNumber("steer_position", int.MinValue, int.MaxValue),
            SteerGeneratedTokens: f.Flag("steer_generated_tokens", false),
            Delta: f.OptionalNumber("delta", -1e6, 1e6),
            Ablate: f.Flag("ablate", false));
    }
}

namespace Attribution.Tracing;

using Attribution.Graphs;

using static TorchSharp.torch;

/// <summary>
/// The prepare phase of attribution for one prompt (docs/algorithm.md §2–§3): the clean forward pass, the active
/// features, the error vectors, the token vectors, and the encoder and (activation-scaled)
/// decoder vectors of the active features. Deterministic in its inputs, so any worker can
/// rebuild it.
/// </summary>
public sealed class PreparedPrompt : IDisposable
{
    private PreparedPrompt(int[] tokens, CleanRecording clean, Tensor logits, ActiveFeatures active, Tensor[] scaledDecoders,
        Tensor encoderRows, Tensor errors, Tensor tokenVectors)
    {
        Tokens = tokens;
        Clean = clean;
        LastLogits = logits;
        Active = active;
        ScaledDecoders = scaledDecoders;
        EncoderRows = encoderRows;
        Errors = errors;
        TokenVectors = tokenVectors;
    }

    public int[] Tokens { get; }

    public int NPos => Tokens.Length;

    public CleanRecording Clean { get; }

    /// <summary>Logits at the last position, [vocab] (soft cap included).</summary>
    public Tensor LastLogits { get; }

    public ActiveFeatures Active { get; }

    /// <summary>Per source layer: a_s · W_dec[s] for its active features, [n_layer, writes, d_model].</summary>
    public Tensor[] ScaledDecoders { get; }

    /// <summary>Encoder rows of the active features, in node order: [n_active, d_model].</summary>
    public Tensor EncoderRows { get; }

    /// <summary>Reconstruction errors e = y − ŷ at each write point: [n_layers, positions, d_model].</summary>
    public Tensor Errors { get; }

    /// <summary>Token vectors as they enter the residual stream: [positions, d_model].</summary>
    public Tensor TokenVectors { get; }

    /// <param name="silence">Zero features and errors at the replacement model's <see cref="ReplacementModel.SilencedPositions"/> (the BOS).</param>
    public static PreparedPrompt Prepare(ReplacementModel replacement, int[] tokens, bool silence = true)
    {
        var model = replacement.Model;
        var transcoders = replacement.Transcoders;
        int nLayers = replacement.NLayers, nPos = tokens.Length, d = model.Config.DModel;
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();

        using var ids = tensor(tokens.Select(t => (long)t).ToArray(), device: model.Device).unsqueeze(0);
        var (clean, logits) = CleanRecording.Record(model, transcoders.ReadAt, transcoders.WriteAt, ids);

        // 1. Activations of every layer at every position, the BOS silenced.
        int silenced = silence ? Math.Min(replacement.SilencedPositions, nPos) : 0;
        var activations = new Tensor[nLayers];
        for (int l = 0; l < nLayers; l++)
        {
            activations[l] = transcoders.Encode(l, clean.Reads[l][0]);
            activations[l].narrow(0, 0, silenced).zero_();
        }
        var active = ActiveFeatures.FromDense(activations);

        // 2. Decoder vectors of the active features, scaled by their activations; encoder rows.
        var scaledDecoders = new Tensor[nLayers];
        var encoderRows = new List<Tensor>();
        var reconstruction = zeros(nLayers, nPos, d, model.DType, model.Device);
        for (int l = 0; l < nLayers; l++)
        {
            var (start, end) = active.RangeOfLayer(l);
            var features = active.Indices[start..end];
            using var values = tensor(active.Values[start..end], device: model.Device).to(model.DType);
            scaledDecoders[l] = transcoders.DecoderRows(l, features) * values.view(-1, 1, 1);
            encoderRows.Add(transcoders.EncoderRows(l, features));

            // Each feature adds its vector at every layer it writes to, at its position.
            using var positions = tensor(active.Positions[start..end], device: model.Device);
            for (int w = 0; w < transcoders.WriteCount(l); w++)
                reconstruction[l + w].index_add_(0, positions, scaledDecoders[l].select(1, w), 1);
        }

        // 3. Errors: the true MLP output minus the reconstruction (biases and skip included).
        var errors = empty(nLayers, nPos, d, model.DType, model.Device);
        for (int l = 0; l < nLayers; l++)
        {
            var predicted = reconstruction[l] + transcoders.DecoderBias(l);
            if (transcoders.Skip(l, clean.Reads[l][0]) is { } skip) predicted = predicted + skip;
            errors[l] = clean.Writes[l][0] - predicted;
        }
        errors.narrow(1, 0, silenced).zero_();

        var tokenVectors = model.Embed(ids)[0];
        var prepared = new PreparedPrompt(tokens, clean, logits[0, -1].to(ScalarType.Float32), active,
            scaledDecoders, cat(encoderRows, 0), errors, tokenVectors);
        prepared.DetachTensors();
        return prepared;
    }

    private void DetachTensors()
    {
        foreach (var t in ScaledDecoders.Append(LastLogits).Append(EncoderRows).Append(Errors).Append(TokenVectors))
            t.DetachFromDisposeScope();
    }

    public void Dispose()
    {
        Clean.Dispose();
        foreach (var t in ScaledDecoders) t.Dispose();
        LastLogits.Dispose();
        EncoderRows.Dispose();
        Errors.Dispose();
        TokenVectors.Dispose();
    }
}

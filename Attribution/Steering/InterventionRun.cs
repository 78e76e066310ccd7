namespace Attribution.Steering;

using Attribution.Models;
using Attribution.Tracing;
using Attribution.Transcoders;
using static TorchSharp.torch;

/// <summary>A feature set to a value at some positions: one prompt position, or every position from <see cref="FromPosition"/> on.</summary>
public sealed record FeatureSetting(int Layer, int Index, double Target, int? AtPosition, int FromPosition);

/// <summary>
/// A forward pass with features held at target values (docs/algorithm.md §9): at each source layer the
/// feature's current activation is read from the transcoder input of this very run, and
/// (target − current) × its decoder vector is added at the transcoder's write point — for a
/// cross-layer transcoder at every layer it writes. With <c>freeze</c>, prompt positions keep the
/// clean run's attention patterns — only those, as circuit-tracer freezes them: norm scales
/// and everything else follow the steered run. Works for whole sequences and for KV-cached
/// steps (it is told each pass's positions).
/// </summary>
public sealed class InterventionRun : RunPolicy
{
    private readonly TranscoderSet transcoders;
    private readonly ILookup<int, FeatureSetting> settingsByLayer;
    private readonly CleanRecording? frozen;
    private readonly int frozenPositions;
    private readonly Tensor?[] pending;
    private int offset;
    private int length;

    /// <param name="frozen">The clean run of the prompt, when attention is frozen; null otherwise.</param>
    public InterventionRun(TranscoderSet transcoders, IEnumerable<FeatureSetting> settings, CleanRecording? frozen, int promptLength)
    {
        this.transcoders = transcoders;
        settingsByLayer = settings.ToLookup(s => s.Layer);
        this.frozen = frozen;
        frozenPositions = frozen is null ? 0 : promptLength;
        pending = new Tensor?[transcoders.NLayers];
    }

    public override ReadHook ReadAt => transcoders.ReadAt;

    public override WriteHook WriteAt => transcoders.WriteAt;

    public override void BeginForward(int positionOffset, int positions)
    {
        offset = positionOffset;
        length = positions;
        Array.Clear(pending);
    }

    public override Tensor AttentionPattern(int layer, Func<Tensor> compute) =>
        frozen is null ? compute() : FreezePromptQueries(compute(), frozen.Patterns[layer]);

    public override void OnRead(int layer, Tensor read)
    {
        var here = settingsByLayer[layer].Select(s => (Setting: s, Positions: LocalPositions(s))).Where(x => x.Positions.Count > 0).ToList();
        if (here.Count == 0) return;

        // Current activations of this run at the positions touched, then the correction per position.
        var positions = here.SelectMany(x => x.Positions).Distinct().Order().ToArray();
        using var positionIndex = tensor(positions.Select(p => (long)p).ToArray(), device: read.device);
        using var activations = transcoders.Encode(layer, read.index_select(1, positionIndex));   // [batch, touched, d_tc]
        using var decoders = transcoders.DecoderRows(layer, here.Select(x => (long)x.Setting.Index).ToArray());   // [n, writes, d]

        long batch = read.shape[0];
        var corrections = zeros(transcoders.WriteCount(layer), batch, length, transcoders.DModel, transcoders.DType, read.device);
        for (int i = 0; i < here.Count; i++)
        {
            var (setting, settingPositions) = here[i];
            foreach (int p in settingPositions)
            {
                int touched = Array.IndexOf(positions, p);
                using var current = activations.select(1, touched).select(1, setting.Index);    // [batch]
                using var change = (setting.Target - current).view(1, batch, 1);
                corrections.select(2, p).add_(change * decoders[i].unsqueeze(1));                // [writes, batch, d]
            }
        }
        for (int w = 0; w < corrections.shape[0]; w++)
        {
            var addition = corrections[w];
            pending[layer + w] = pending[layer + w] is { } earlier ? earlier + addition : addition;
        }
    }

    public override Tensor Write(int layer, Tensor read, Func<Tensor> mlp)
    {
        var output = mlp();
        return pending[layer] is { } correction ? output + correction : output;
    }

    /// <summary>This pass's local positions where a setting applies.</summary>
    private List<int> LocalPositions(FeatureSetting setting)
    {
        if (setting.AtPosition is int p) return p >= offset && p < offset + length ? [p - offset] : [];
        return Enumerable.Range(Math.Max(setting.FromPosition, offset), Math.Max(0, offset + length - Math.Max(setting.FromPosition, offset)))
            .Select(q => q - offset).ToList();
    }

    /// <summary>Replaces the attention weights [batch, heads, queries, keys] of prompt queries by the clean run's.</summary>
    private Tensor FreezePromptQueries(Tensor computed, Tensor clean)
    {
        int frozenCount = Math.Clamp(frozenPositions - offset, 0, length);
        if (frozenCount == 0) return computed;
        using var cleanRows = clean.narrow(2, offset, frozenCount);
        if (frozenCount == length && computed.shape.Skip(1).SequenceEqual(cleanRows.shape.Skip(1)))
            return cleanRows.expand(computed.shape).clone();
        var result = computed.clone();
        // Keys beyond the clean run's length are masked for prompt queries, so those weights stay 0.
        var target = result.narrow(2, 0, frozenCount).narrow(3, 0, cleanRows.shape[3]);
        target.copy_(cleanRows.expand(target.shape));
        return result;
    }
}

namespace Attribution.Tracing;

using Attribution.Graphs;
using static TorchSharp.torch;

/// <summary>
/// The vectors source nodes put into the frozen replacement model (docs/algorithm.md §4), placed in
/// one batch row of a forward pass's inputs: the embeddings [rows, positions, d_model] and the
/// write deltas, one such tensor per layer. Head loadings and QK attributions propagate sources
/// this way.
/// </summary>
internal static class NodeVectors
{
    /// <summary>Puts a source's vectors in batch row <paramref name="row"/> (its embedding or its writes); returns its position.</summary>
    public static int Place(PreparedPrompt prompt, NodeLayout layout, int source, int row, Tensor embeddings, Tensor[] writes)
    {
        var place = layout.Locate(source);
        switch (place.Kind)
        {
            case NodeKind.Token:
                embeddings[row, place.Position] = prompt.TokenVectors[place.Position];
                return place.Position;
            case NodeKind.Error:
                writes[place.Layer][row, place.Position] = prompt.Errors[place.Layer][place.Position];
                return place.Position;
            case NodeKind.Feature:
                int layer = (int)prompt.Active.Layers[source], position = (int)prompt.Active.Positions[source];
                var (first, _) = prompt.Active.RangeOfLayer(layer);
                var vectors = prompt.ScaledDecoders[layer][source - first];   // [writes, d]: a·W_dec at each layer it writes
                for (int w = 0; w < vectors.shape[0]; w++) writes[layer + w][row, position] = vectors[w];
                return position;
            default:
                throw new ArgumentException($"node {source} is a logit: logits are targets only", nameof(source));
        }
    }

    /// <summary>Adds <paramref name="sign"/> × the writes of every active feature that <paramref name="include"/> accepts to batch row <paramref name="row"/>.</summary>
    public static void AddFeatures(PreparedPrompt prompt, Func<int, bool> include, double sign, int row, Tensor[] writes)
    {
        var active = prompt.Active;
        for (int layer = 0; layer < prompt.ScaledDecoders.Length; layer++)
        {
            var (first, end) = active.RangeOfLayer(layer);
            var chosen = Enumerable.Range(first, end - first).Where(include).Select(f => (long)(f - first)).ToArray();
            if (chosen.Length == 0) continue;
            using var scope = NewDisposeScope();
            var index = tensor(chosen, device: writes[0].device);
            var positions = tensor(chosen.Select(i => active.Positions[first + i]).ToArray(), device: writes[0].device);
            var vectors = prompt.ScaledDecoders[layer].index_select(0, index) * sign;   // [chosen, writes, d]
            for (int w = 0; w < vectors.shape[1]; w++) writes[layer + w][row].index_add_(0, positions, vectors.select(1, w), 1);
        }
    }
}

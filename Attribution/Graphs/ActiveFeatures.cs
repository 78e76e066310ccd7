namespace Attribution.Graphs;

using static TorchSharp.torch;

/// <summary>
/// The features that fire on a prompt, in node order (docs/algorithm.md §3): by layer, then position, then
/// feature index. Index i here is feature node i of the graph.
/// </summary>
public sealed class ActiveFeatures
{
    public ActiveFeatures(long[] layers, long[] positions, long[] indices, float[] values)
    {
        Layers = layers;
        Positions = positions;
        Indices = indices;
        Values = values;
    }

    public long[] Layers { get; }

    public long[] Positions { get; }

    public long[] Indices { get; }

    public float[] Values { get; }

    public int Count => Layers.Length;

    /// <summary>The node range [start, end) of the features of one layer (layers are contiguous).</summary>
    public (int Start, int End) RangeOfLayer(int layer)
    {
        int start = Array.BinarySearch(Layers, (long)layer);
        if (start < 0) return (~start, ~start);
        while (start > 0 && Layers[start - 1] == layer) start--;
        int end = start;
        while (end < Layers.Length && Layers[end] == layer) end++;
        return (start, end);
    }

    /// <summary>Collects the nonzero entries of per-layer activations [positions, d_transcoder].</summary>
    public static ActiveFeatures FromDense(IReadOnlyList<Tensor> activationsByLayer)
    {
        var layers = new List<long>();
        var positions = new List<long>();
        var indices = new List<long>();
        var values = new List<float>();
        for (int l = 0; l < activationsByLayer.Count; l++)
        {
            using var scope = NewDisposeScope();
            var dense = activationsByLayer[l].to(ScalarType.Float32).cpu();
            var nonzero = dense.nonzero();                       // row-major: position, then feature
            if (nonzero.shape[0] == 0) continue;
            var pos = nonzero.select(1, 0).data<long>().ToArray();
            var idx = nonzero.select(1, 1).data<long>().ToArray();
            var val = dense.index(nonzero.select(1, 0), nonzero.select(1, 1)).data<float>().ToArray();
            layers.AddRange(Enumerable.Repeat((long)l, pos.Length));
            positions.AddRange(pos);
            indices.AddRange(idx);
            values.AddRange(val);
        }
        return new ActiveFeatures([.. layers], [.. positions], [.. indices], [.. values]);
    }
}

namespace Attribution.Models;

using static TorchSharp.torch;

/// <summary>Keys and values of the positions seen so far, per layer, for incremental decoding.</summary>
public sealed class KvCache(int layers) : IDisposable
{
    private readonly Tensor?[] keys = new Tensor?[layers];
    private readonly Tensor?[] values = new Tensor?[layers];

    /// <summary>Positions already in the cache: the offset of the next forward pass.</summary>
    public int Length { get; private set; }

    /// <summary>Appends this step's keys/values [batch, kv_heads, positions, head_dim]; returns all so far.</summary>
    public (Tensor Keys, Tensor Values) Append(int layer, Tensor newKeys, Tensor newValues)
    {
        var k = keys[layer] is { } oldK ? cat([oldK, newKeys], 2) : newKeys.alias();
        var v = values[layer] is { } oldV ? cat([oldV, newValues], 2) : newValues.alias();
        keys[layer]?.Dispose();
        values[layer]?.Dispose();
        keys[layer] = k.DetachFromDisposeScope();
        values[layer] = v.DetachFromDisposeScope();
        return (k, v);
    }

    internal void Advance(long positions) => Length += (int)positions;

    public void Dispose()
    {
        foreach (var t in keys) t?.Dispose();
        foreach (var t in values) t?.Dispose();
    }
}

namespace Attribution.Tracing;

using static TorchSharp.torch;

/// <summary>
/// A block of attribution rows as both executors keep them until assembly — in memory
/// (<see cref="Attributor"/>) or in the workspace (the Durable activities). Two forms:
/// <list type="bullet">
/// <item><b>whole</b>: every column of a row (<see cref="AttributionContext.RowLength"/>), float32 —
/// for rows that later rounds rank features from (logit rows; feature rows of multi-round plans);</item>
/// <item><b>compact</b>: when the plan selects every feature in its first round, only the columns the
/// graph can use (<see cref="GraphColumns"/>: the selected features ascending, then errors and tokens),
/// at the precision they were computed in. Rows of a float32 model stay float32 (exact). Rows of a
/// 16-bit model already carry its rounding (bfloat16: 2^-9 relative), so they are stored as float16
/// with one float32 scale per row, which adds less (2^-11): the scale maps the row's largest |value|
/// to 2^15, so every value down to ~1e-9 of it is a normal float16.</item>
/// </list>
/// </summary>
public sealed class StoredRows : IDisposable
{
    /// <summary>A 16-bit row's largest |value| after scaling: well inside float16's range (max 65504).</summary>
    public const float ScaledMaximum = 32768f;

    private StoredRows(long[] nodes, Tensor values, Tensor? scales, bool compact)
    {
        Nodes = nodes;
        Values = values;
        Scales = scales;
        IsCompact = compact;
    }

    /// <summary>The node of each row: a feature's index into the active features, or a logit's node index.</summary>
    public long[] Nodes { get; }

    /// <summary>[rows, columns] on the CPU: float32, or float16 (compact rows of a 16-bit model).</summary>
    public Tensor Values { get; }

    /// <summary>[rows] float32 when the values are float16: value = stored × scale.</summary>
    public Tensor? Scales { get; }

    /// <summary>Whether the rows hold only the graph's columns.</summary>
    public bool IsCompact { get; }

    public int Count => Nodes.Length;

    /// <summary>Bytes the rows occupy (values and scales), as written to the workspace.</summary>
    public long ValueBytes => Values.NumberOfElements * Values.ElementSize + (Scales?.NumberOfElements ?? 0) * 4;

    /// <summary>The columns a graph with these selected features keeps: the features ascending, then every error and token column.</summary>
    public static Tensor GraphColumns(IEnumerable<long> selectedFeatures, int activeCount, int rowLength) =>
        tensor(selectedFeatures.Order().Concat(Enumerable.Range(activeCount, rowLength - activeCount).Select(i => (long)i)).ToArray());

    /// <summary>Whole rows; the block takes ownership of <paramref name="rows"/> (float32 on the CPU, as the context returns them).</summary>
    public static StoredRows Whole(long[] nodes, Tensor rows)
    {
        if (rows.dtype != ScalarType.Float32 || rows.device_type != TorchSharp.DeviceType.CPU || !rows.is_contiguous())
            throw new ArgumentException("whole rows are stored as contiguous float32 on the CPU", nameof(rows));
        return new(nodes, rows, null, compact: false);
    }

    /// <summary>The element type of compact rows for a model computing in <paramref name="computeType"/>.</summary>
    public static ScalarType CompactValueType(ScalarType computeType) =>
        computeType is ScalarType.Float32 or ScalarType.Float64 ? ScalarType.Float32 : ScalarType.Float16;

    /// <summary>Rows already cut to <see cref="GraphColumns"/>, stored compact for a model that computes in <paramref name="computeType"/>.</summary>
    public static StoredRows Compact(long[] nodes, Tensor graphColumnRows, ScalarType computeType)
    {
        using var scope = NewDisposeScope();
        var rows = graphColumnRows.to(ScalarType.Float32).cpu().contiguous();
        if (CompactValueType(computeType) == ScalarType.Float32)
            return new(nodes, rows.clone().MoveToOuterDisposeScope(), null, compact: true);
        var scales = rows.abs().amax([1]).div_(ScaledMaximum);
        scales.masked_fill_(scales.eq(0), 1f);   // an all-zero row stays zero
        var values = rows.div(scales.unsqueeze(1)).to(ScalarType.Float16).contiguous();
        return new(nodes, values.MoveToOuterDisposeScope(), scales.contiguous().MoveToOuterDisposeScope(), compact: true);
    }

    /// <summary>Rows read back from storage, as written.</summary>
    public static StoredRows FromParts(long[] nodes, Tensor values, Tensor? scales, bool compact) => new(nodes, values, scales, compact);

    /// <summary>
    /// These rows copied into <paramref name="store"/> from row <paramref name="firstRow"/> on
    /// (same columns and element type); this block is disposed and the result views the store,
    /// which the caller keeps alive for as long as the result.
    /// </summary>
    public StoredRows MovedInto(Tensor store, long firstRow)
    {
        var place = store.narrow(0, firstRow, Count);
        place.copy_(Values);
        Values.Dispose();
        return new(Nodes, place, Scales, IsCompact);
    }

    /// <summary>The rows as float32 [rows, columns], a handle the caller disposes (whole rows: an alias, no copy).</summary>
    public Tensor ToFloat32() => Scales is null ? Values.alias() : Values.to(ScalarType.Float32).mul_(Scales.unsqueeze(1));

    public void Dispose()
    {
        Values.Dispose();
        Scales?.Dispose();
    }
}

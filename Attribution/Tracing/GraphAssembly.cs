namespace Attribution.Tracing;

using Attribution.Graphs;
using static TorchSharp.torch;

/// <summary>
/// The assemble phase: from rows keyed by node to the graph's rows over the final node list
/// (selected features ascending, errors, tokens, logits), as circuit-tracer packages its adjacency
/// but without its all-zero rows and columns (<see cref="AttributionGraph.Rows"/>). Row blocks stream
/// in one at a time, so assembly holds the graph's rows and one block, never all rows twice.
/// </summary>
public sealed class GraphAssembly : IDisposable
{
    private readonly int[] tokens;
    private readonly int nLayers;
    private readonly ActiveFeatures active;
    private readonly long[] logitTokens;
    private readonly float[] logitProbabilities;
    private readonly long[] selected;
    private readonly Tensor columns;
    private Tensor? rows;

    /// <param name="featureNodes">The features that will get rows (any order).</param>
    /// <param name="rowLength">Columns of a whole row (<see cref="AttributionContext.RowLength"/>).</param>
    public GraphAssembly(int[] tokens, int nLayers, ActiveFeatures active, long[] logitTokens, float[] logitProbabilities,
        IEnumerable<long> featureNodes, int rowLength)
    {
        this.tokens = tokens;
        this.nLayers = nLayers;
        this.active = active;
        this.logitTokens = logitTokens;
        this.logitProbabilities = logitProbabilities;
        selected = [.. featureNodes.Order()];
        columns = StoredRows.GraphColumns(selected, active.Count, rowLength);
        rows = zeros(selected.Length + logitTokens.Length, columns.shape[0]);
    }

    /// <summary>The logit rows (whole) become the last rows.</summary>
    public void AddLogitRows(StoredRows logitRows)
    {
        if (logitRows.IsCompact || logitRows.Count != logitTokens.Length) throw new ArgumentException("logit rows are whole, one per logit target", nameof(logitRows));
        using var kept = logitRows.Values.index_select(1, columns);
        Rows.narrow(0, selected.Length, logitTokens.Length).copy_(kept);
    }

    /// <summary>A block of feature rows goes to its features' rows; whole rows are cut to the graph's columns.</summary>
    public void AddFeatureRows(StoredRows block)
    {
        if (block.Count == 0) return;
        using var scope = NewDisposeScope();
        var values = block.ToFloat32();
        if (!block.IsCompact) values = values.index_select(1, columns);
        else if (values.shape[1] != columns.shape[0])
            throw new ArgumentException($"a compact block has {values.shape[1]} columns, this graph {columns.shape[0]}: it was cut for another selection");
        var targets = tensor(block.Nodes.Select(RowOf).ToArray());
        Rows.index_copy_(0, targets, values);
    }

    /// <summary>The graph; the assembly gives up its rows to it.</summary>
    public AttributionGraph Build()
    {
        var graph = new AttributionGraph(tokens, nLayers, active, selected, logitTokens, logitProbabilities, Rows);
        rows = null;
        return graph;
    }

    /// <summary>Assembles the graph of rows held in memory.</summary>
    public static AttributionGraph Assemble(int[] tokens, int nLayers, ActiveFeatures active, long[] logitTokens, float[] logitProbabilities,
        StoredRows logitRows, IReadOnlyList<StoredRows> featureBlocks)
    {
        using var assembly = new GraphAssembly(tokens, nLayers, active, logitTokens, logitProbabilities,
            featureBlocks.SelectMany(b => b.Nodes), (int)logitRows.Values.shape[1]);
        assembly.AddLogitRows(logitRows);
        foreach (var block in featureBlocks) assembly.AddFeatureRows(block);
        return assembly.Build();
    }

    public void Dispose()
    {
        columns.Dispose();
        rows?.Dispose();
    }

    private Tensor Rows => rows ?? throw new InvalidOperationException("the graph was already built");

    private long RowOf(long feature)
    {
        int row = Array.BinarySearch(selected, feature);
        if (row < 0) throw new ArgumentException($"feature {feature} has a row but was not announced to the assembly");
        return row;
    }
}

namespace Attribution.Tracing;

using Attribution.Graphs;
using static TorchSharp.torch;

/// <summary>
/// The assemble phase: from rows keyed by node to the square adjacency over the final node list
/// (selected features ascending, errors, tokens, logits), as circuit-tracer packages its graph.
/// Row blocks stream in one at a time, so assembly holds the adjacency and one block, never all rows.
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
    private Tensor? adjacency;

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
        int nodeCount = (int)columns.shape[0] + logitTokens.Length;
        adjacency = zeros(nodeCount, nodeCount);
    }

    /// <summary>The logit rows (whole) become the last rows.</summary>
    public void AddLogitRows(StoredRows logitRows)
    {
        if (logitRows.IsCompact || logitRows.Count != logitTokens.Length) throw new ArgumentException("logit rows are whole, one per logit target", nameof(logitRows));
        using var kept = logitRows.Values.index_select(1, columns);
        Adjacency.narrow(0, Adjacency.shape[0] - logitTokens.Length, logitTokens.Length).narrow(1, 0, columns.shape[0]).copy_(kept);
    }

    /// <summary>A block of feature rows goes to its features' rows; whole rows are cut to the graph's columns.</summary>
    public void AddFeatureRows(StoredRows block)
    {
        if (block.Count == 0) return;
        using var scope = NewDisposeScope();
        var rows = block.ToFloat32();
        if (!block.IsCompact) rows = rows.index_select(1, columns);
        else if (rows.shape[1] != columns.shape[0])
            throw new ArgumentException($"a compact block has {rows.shape[1]} columns, this graph {columns.shape[0]}: it was cut for another selection");
        var targets = tensor(block.Nodes.Select(RowOf).ToArray());
        Adjacency.narrow(1, 0, columns.shape[0]).index_copy_(0, targets, rows);
    }

    /// <summary>The graph; the assembly gives up its adjacency to it.</summary>
    public AttributionGraph Build()
    {
        var graph = new AttributionGraph(tokens, nLayers, active, selected, logitTokens, logitProbabilities, Adjacency);
        adjacency = null;
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
        adjacency?.Dispose();
    }

    private Tensor Adjacency => adjacency ?? throw new InvalidOperationException("the graph was already built");

    private long RowOf(long feature)
    {
        int row = Array.BinarySearch(selected, feature);
        if (row < 0) throw new ArgumentException($"feature {feature} has a row but was not announced to the assembly");
        return row;
    }
}

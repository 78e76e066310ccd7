namespace Attribution.Tests.Engine;

using Attribution.Graphs;
using Attribution.Models;
using Attribution.Synthetic;
using Attribution.Tests.Support;
using Attribution.Tracing;
using static TorchSharp.torch;

/// <summary>
/// Compact rows (<see cref="StoredRows"/>): when the plan selects every feature in its first round,
/// feature rows keep only the graph's columns — exactly for float32 models, as scaled float16 for
/// 16-bit ones — and the pruned graph is the one whole float32 rows give.
/// </summary>
public class CompactRowsTests
{
    private const int BatchSize = 16;
    private const int MaxFeatures = 40;

    public static TheoryData<ModelArchitecture, string> Models => new()
    {
        { ModelArchitecture.Gemma2, "jump_relu" },
        { ModelArchitecture.Llama, "relu" },
        { ModelArchitecture.Qwen3, "topk" },
    };

    [Theory]
    [MemberData(nameof(Models))]
    public void Compact_rows_of_a_float32_model_give_the_same_graph_bit_for_bit(ModelArchitecture architecture, string activation)
    {
        using var tiny = Tiny(architecture, activation, ScalarType.Float32);
        using var rows = Rows.Compute(tiny, out int nPos);
        Assert.All(rows.Compact, block => Assert.Equal(ScalarType.Float32, block.Values.dtype));
        Assert.Null(rows.Compact[0].Scales);
        AssertOnlyGraphColumns(rows, tiny.Replacement.NLayers, nPos);

        using var compact = rows.Assemble(rows.Compact);
        using var whole = rows.Assemble(rows.Whole);
        Assert.True(Identical(compact.Rows, whole.Rows), "compact float32 rows changed the adjacency");
        AssertSamePruning(whole, compact);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Compact_rows_of_a_bfloat16_model_are_float16_and_prune_the_same(ModelArchitecture architecture, string activation)
    {
        using var tiny = Tiny(architecture, activation, ScalarType.BFloat16);
        using var rows = Rows.Compute(tiny, out int nPos);
        Assert.All(rows.Compact, block => Assert.Equal(ScalarType.Float16, block.Values.dtype));
        AssertOnlyGraphColumns(rows, tiny.Replacement.NLayers, nPos);
        // Half the bytes per value, beyond the columns dropped.
        long compactBytes = rows.Compact.Sum(b => b.ValueBytes), wholeBytes = rows.Whole.Sum(b => b.ValueBytes);
        long keptColumns = rows.Compact[0].Values.shape[1], allColumns = rows.Whole[0].Values.shape[1];
        Assert.True(compactBytes <= wholeBytes * keptColumns / allColumns / 2 + MaxFeatures * 4, $"{compactBytes} of {wholeBytes} bytes");

        using var compact = rows.Assemble(rows.Compact);
        using var whole = rows.Assemble(rows.Whole);
        // Rounding happened (the test would pass trivially otherwise) and stays within 1e-3 relative.
        Assert.False(Identical(compact.Rows, whole.Rows), "float16 storage should round some weights");
        using var error = (compact.Rows - whole.Rows).abs();
        using var rowScale = whole.Rows.abs().amax([1], keepdim: true);
        using var allowed = whole.Rows.abs() * 1e-3 + rowScale * 1e-8;
        Assert.True(error.le(allowed).all().item<bool>(), $"worst error {error.max().item<float>():E2}");
        AssertSamePruning(whole, compact);
    }

    [Fact]
    public void The_in_process_executor_stores_compact_rows_when_one_round_selects_all()
    {
        using var tiny = Tiny(ModelArchitecture.Gemma2, "jump_relu", ScalarType.BFloat16);
        using var rows = Rows.Compute(tiny, out _);
        using var expected = rows.Assemble(rows.Compact);
        var settings = new AttributionSettings { BatchSize = BatchSize, MaxFeatureNodes = MaxFeatures, UpdateInterval = 1000, MaxNLogits = 5, DesiredLogitProb = 0.99 };
        using var result = Attributor.Attribute(tiny.Replacement, rows.Tokens, settings);
        // Equal to the float16-compact graph, so not to the whole-row one: the executor stored compact rows.
        Assert.True(Identical(result.Graph.Rows, expected.Rows));
    }

    [Fact]
    public void A_compact_block_cut_for_another_selection_is_refused()
    {
        using var tiny = Tiny(ModelArchitecture.Llama, "relu", ScalarType.Float32);
        using var rows = Rows.Compute(tiny, out _);
        var fewer = rows.Queue[..^1];
        using var assembly = new GraphAssembly(rows.Tokens, tiny.Replacement.NLayers, rows.Prompt.Active, rows.Targets.TokenIds,
            rows.Targets.Probabilities, fewer, rows.Context.RowLength);
        var error = Assert.Throws<ArgumentException>(() => assembly.AddFeatureRows(rows.Compact[0]));
        Assert.Contains("another selection", error.Message);
    }

    private static bool Identical(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    private static TinyReplacement Tiny(ModelArchitecture architecture, string activation, ScalarType dtype) =>
        new(new TinyModelSpec { Architecture = architecture, Seed = 41 }, new TinyTranscoderSpec { Skip = true, Activation = activation, Seed = 6 }, dtype);

    private static void AssertOnlyGraphColumns(Rows rows, int nLayers, int nPos)
    {
        Assert.All(rows.Compact, block => Assert.True(block.IsCompact));
        Assert.All(rows.Whole, block => Assert.False(block.IsCompact));
        Assert.Equal(MaxFeatures + (nLayers + 1) * nPos, rows.Compact[0].Values.shape[1]);
        Assert.True(rows.Whole[0].Values.shape[1] > 2 * rows.Compact[0].Values.shape[1], "the tiny prompt should have many more active features than selected");
    }

    private static void AssertSamePruning(AttributionGraph expected, AttributionGraph actual)
    {
        using var expectedPruning = Pruning.Prune(expected, 0.8, 0.98);
        using var actualPruning = Pruning.Prune(actual, 0.8, 0.98);
        Assert.Equal(expectedPruning.NodeMask, actualPruning.NodeMask);
        Assert.True(Identical(expectedPruning.EdgeMask, actualPruning.EdgeMask), "pruning kept different links");
        Assert.True(expectedPruning.EdgeMask.sum().item<long>() > 10);
    }

    /// <summary>One prompt's rows for a one-round ranked plan, stored both compact and whole.</summary>
    private sealed class Rows : IDisposable
    {
        public required int[] Tokens { get; init; }
        public required int NLayers { get; init; }
        public required PreparedPrompt Prompt { get; init; }
        public required AttributionContext Context { get; init; }
        public required LogitTargets Targets { get; init; }
        public required StoredRows LogitRows { get; init; }
        public required long[] Queue { get; init; }
        public required List<StoredRows> Compact { get; init; }
        public required List<StoredRows> Whole { get; init; }

        public static Rows Compute(TinyReplacement tiny, out int nPos)
        {
            var tokens = tiny.Prompt(10);
            nPos = tokens.Length;
            var prompt = PreparedPrompt.Prepare(tiny.Replacement, tokens);
            var context = new AttributionContext(tiny.Replacement, prompt, BatchSize);
            var targets = LogitTargets.Select(prompt.LastLogits, tiny.Replacement.Model.Unembedding, 5, 0.99);
            var plan = AttributionPlan.For(prompt.Active.Count, new AttributionSettings { MaxFeatureNodes = MaxFeatures, BatchSize = BatchSize, UpdateInterval = 1000 });
            Assert.True(plan.Ranks && plan.SelectsInFirstRound);
            var logitRows = AttributionPlan.LogitRows(context, targets);
            var queue = plan.RankedQueue(logitRows, [], targets.Probabilities, plan.QueueSize(0));
            using var columns = plan.GraphColumnsFor(queue, context.RowLength);
            return new Rows
            {
                Tokens = tokens, NLayers = tiny.Replacement.NLayers, Prompt = prompt, Context = context, Targets = targets, LogitRows = logitRows, Queue = queue,
                Compact = [.. queue.Chunk(BatchSize).Select(batch => AttributionPlan.FeatureRows(context, batch, columns))],
                Whole = [.. queue.Chunk(BatchSize).Select(batch => AttributionPlan.FeatureRows(context, batch, null))],
            };
        }

        public AttributionGraph Assemble(IReadOnlyList<StoredRows> blocks) =>
            GraphAssembly.Assemble(Tokens, NLayers, Prompt.Active, Targets.TokenIds, Targets.Probabilities, LogitRows, blocks);

        public void Dispose()
        {
            foreach (var block in Compact.Concat(Whole)) block.Dispose();
            LogitRows.Dispose();
            Targets.Dispose();
            Context.Dispose();
            Prompt.Dispose();
        }
    }
}

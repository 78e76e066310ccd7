namespace Attribution.Demo;

using System.Diagnostics;
using Attribution.Models;
using Attribution.Synthetic;
using Attribution.Tracing;
using Attribution.Transcoders;
using TorchSharp.Modules;
using static TorchSharp.torch;

/// <summary>How the demo's transcoders are shaped and trained.</summary>
public sealed record TranscoderTraining
{
    public TranscoderKind Kind { get; init; } = TranscoderKind.PerLayer;
    public int DTranscoder { get; init; } = 512;

    /// <summary>Features kept per position by the TopK activation (the L0).</summary>
    public int K { get; init; } = 16;

    public int Steps { get; init; } = 1500;

    /// <summary>A cross-layer transcoder's steps after TopK, as JumpReLU at its calibrated thresholds.</summary>
    public int ThresholdSteps { get; init; } = 500;

    /// <summary>Corpus sentences with one word swapped at random, added to the training positions.</summary>
    public int PerturbedSentences { get; init; } = 4000;

    /// <summary>Positions per step, drawn at random from the training positions.</summary>
    public int BatchSize { get; init; } = 4096;

    public double LearningRate { get; init; } = 2e-3;
    public ulong Seed { get; init; } = 7;
}

/// <summary>How well one layer's MLP output is reconstructed on positions the transcoders never trained on.</summary>
public sealed record LayerFit(int Layer, double VarianceExplained, double MeanL0, int DeadFeatures);

/// <summary>The MLP inputs and outputs of every layer over a set of sentences, BOS positions left out.</summary>
public sealed class MlpActivations(Tensor[] reads, Tensor[] writes) : IDisposable
{
    /// <summary>Per layer: [positions, d_model].</summary>
    public Tensor[] Reads { get; } = reads;

    public Tensor[] Writes { get; } = writes;

    /// <param name="lastOnly">Keep only each sentence's last position (where a prompt predicts its answer).</param>
    public static MlpActivations Record(DecoderModel model, IEnumerable<int[]> sentences, ReadHook readAt, WriteHook writeAt, bool lastOnly = false)
    {
        int layers = model.Config.NLayers;
        var reads = Enumerable.Range(0, layers).Select(_ => new List<Tensor>()).ToArray();
        var writes = Enumerable.Range(0, layers).Select(_ => new List<Tensor>()).ToArray();
        foreach (var ids in sentences)
        {
            using var input = tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Length]);
            var (recording, logits) = CleanRecording.Record(model, readAt, writeAt, input);
            using (recording)
            using (logits)
            {
                // The BOS is silenced in every graph (docs/algorithm.md §2): its activations are never explained.
                for (int l = 0; l < layers; l++)
                {
                    var kept = lastOnly ? ^1.. : 1..;
                    reads[l].Add(recording.Reads[l][0, kept].clone());
                    writes[l].Add(recording.Writes[l][0, kept].clone());
                }
            }
        }
        return new MlpActivations([.. reads.Select(r => cat(r, 0))], [.. writes.Select(w => cat(w, 0))]);
    }

    /// <summary>The given positions of every layer.</summary>
    public MlpActivations Rows(Tensor positions) =>
        new([.. Reads.Select(r => r.index_select(0, positions))], [.. Writes.Select(w => w.index_select(0, positions))]);

    public long Count => Reads[0].shape[0];

    /// <summary>The positions of both, one after the other (both are disposed).</summary>
    public static MlpActivations Concat(MlpActivations first, MlpActivations second)
    {
        using (first)
        using (second)
            return new([.. first.Reads.Zip(second.Reads, (a, b) => cat([a, b], 0))], [.. first.Writes.Zip(second.Writes, (a, b) => cat([a, b], 0))]);
    }

    public void Dispose()
    {
        foreach (var t in Reads.Concat(Writes)) t.Dispose();
    }
}

/// <summary>
/// What the transcoders train on, and in what mix: a quarter of each batch from the positions where
/// a training prompt predicts its answer (few, and the ones a graph is about), a quarter from every
/// position of the training sentences, half from the sentences with one word swapped at random.
/// </summary>
public sealed class DemoTranscoderData(MlpActivations answers, MlpActivations corpus, MlpActivations around) : IDisposable
{
    public MlpActivations Corpus { get; } = corpus;

    public MlpActivations Batch(int size, Generator generator) => MlpActivations.Concat(
        MlpActivations.Concat(answers.Rows(randint(answers.Count, [size / 4], generator: generator)), Corpus.Rows(randint(Corpus.Count, [size / 4], generator: generator))),
        around.Rows(randint(around.Count, [size / 2], generator: generator)));

    public void Dispose()
    {
        answers.Dispose();
        Corpus.Dispose();
        around.Dispose();
    }
}

/// <summary>
/// Trains transcoders on the demo model's MLPs: per-layer TopK ones (each layer's MLP output from
/// its input) or a cross-layer transcoder (each layer's features also write to every later
/// layer's MLP output), trained as TopK and finished as JumpReLU, the activation circuit-tracer's
/// CLT format has. One loop serves both: a per-layer set is the cross-layer one with only
/// the same-layer decoder. The loss is the reconstruction error of each layer's MLP output
/// relative to its variance, averaged over layers, so small and large layers count alike.
/// </summary>
public static class DemoTranscoderTrainer
{
    public static string Train(string folder, ModelConfig config, ReadHook readAt, WriteHook writeAt, DemoTranscoderData data, MlpActivations heldOut,
        TranscoderTraining training, string modelName, string setId, Action<string> log, out IReadOnlyList<LayerFit> fits)
    {
        int layers = config.NLayers, d = config.DModel, dtc = training.DTranscoder;
        bool crossLayer = training.Kind == TranscoderKind.CrossLayer;
        manual_seed((long)training.Seed);
        using var generator = new Generator(training.Seed);

        // Decoder rows of unit norm, the encoder their transpose: every feature starts alive.
        var encoders = new List<Parameter>();
        var encoderBiases = new List<Parameter>();
        var decoders = new List<Parameter>();
        var decoderBiases = new List<Parameter>();
        for (int l = 0; l < layers; l++)
        {
            using var direction = randn([dtc, d], generator: generator);
            using var unit = direction / direction.norm(1, keepdim: true);
            encoders.Add(new Parameter(unit.clone()));
            encoderBiases.Add(new Parameter(zeros(dtc)));
            int writes = crossLayer ? layers - l : 1;
            decoders.Add(new Parameter((unit.unsqueeze(1).expand(dtc, writes, d) * (0.1 / writes)).contiguous()));
            decoderBiases.Add(new Parameter(data.Corpus.Writes[l].mean([0]).clone()));
        }
        var variances = data.Corpus.Writes.Select(w => w.var([0]).sum().item<float>()).ToArray();
        var clock = Stopwatch.StartNew();

        void Optimise(int steps, double learningRate, ActivationFunction[] activations, string phase)
        {
            using var optimizer = optim.Adam([.. encoders, .. encoderBiases, .. decoders, .. decoderBiases], lr: learningRate);
            for (int step = 0; step < steps; step++)
            {
                using var scope = NewDisposeScope();
                double progress = (double)step / steps;
                foreach (var group in optimizer.ParamGroups) group.LearningRate = learningRate * (progress < 0.8 ? 1 : 5 * (1 - progress));
                using var batch = data.Batch(training.BatchSize, generator);
                var reconstructions = Reconstruct(batch.Reads, encoders, encoderBiases, decoders, decoderBiases, activations, crossLayer, out _);
                var loss = Enumerable.Range(0, layers)
                    .Select(l => (batch.Writes[l] - reconstructions[l]).pow(2).sum(1).mean() / Math.Max(variances[l], 1e-12))
                    .Aggregate((a, b) => a + b) / layers;
                optimizer.zero_grad();
                loss.backward();
                optimizer.step();
                // Each step's temporaries are freed, but glibc keeps the pages of its arenas: hand them
                // back now and then, or the resident size climbs to many GB between trims.
                if (step % 25 == 0) TorchInfo.ReleaseFreedMemory();
                if (step % 500 == 0 || step == steps - 1)
                {
                    using var noGrad = no_grad();
                    var held = Fit(heldOut, encoders, encoderBiases, decoders, decoderBiases, activations, crossLayer, data.Corpus);
                    log($"{phase} step {step,5}  1 - FVE {loss.item<float>():0.0000}, held out {1 - held.Average(f => f.VarianceExplained):0.0000}, L0 {held.Average(f => f.MeanL0):0.0}  {clock.Elapsed.TotalSeconds:0}s  rss {Environment.WorkingSet >> 20} MB");
                }
            }
        }

        // TopK first: it holds the L0 at k while the dictionary forms.
        var topK = Enumerable.Repeat<ActivationFunction>(new ActivationFunction.TopK(training.K), layers).ToArray();
        Optimise(training.Steps, training.LearningRate, topK, crossLayer ? "clt topk" : "plt");
        var activations = topK;
        Tensor[]? thresholds = null;
        if (crossLayer)
        {
            // circuit-tracer's CLTs are JumpReLU (or ReLU): each layer gets the threshold at which
            // k features fire per corpus position, then the dictionary adapts to it.
            using (no_grad())
                thresholds = [.. Enumerable.Range(0, layers).Select(l => Threshold(data.Corpus.Reads[l], encoders[l], encoderBiases[l], training.K))];
            activations = [.. thresholds.Select(t => new ActivationFunction.JumpRelu(t))];
            Optimise(training.ThresholdSteps, training.LearningRate / 4, activations, "clt jumprelu");
        }

        using (no_grad())
        {
            fits = Fit(heldOut, encoders, encoderBiases, decoders, decoderBiases, activations, crossLayer, data.Corpus);
            var weights = Enumerable.Range(0, layers).Select(l => new LayerTranscoder(
                encoders[l].detach().clone(), encoderBiases[l].detach().clone(),
                crossLayer ? decoders[l].detach().clone() : decoders[l].detach()[.., 0].clone(),
                decoderBiases[l].detach().clone(), Threshold: thresholds?[l], Skip: null)).ToList();
            return TinyCheckpoints.SaveTranscoders(folder, config, training.Kind, TinyTranscoderFormat.Safetensors, crossLayer ? null : new ActivationSpec("topk", training.K),
                readAt, writeAt, weights, ScalarType.Float32, modelName, setId);
        }
    }

    /// <summary>Per-feature thresholds (one value per layer) at which <paramref name="k"/> features fire per position on average.</summary>
    private static Tensor Threshold(Tensor reads, Tensor encoder, Tensor encoderBias, int k)
    {
        var pre = (reads.matmul(encoder.t()) + encoderBias).flatten();
        var (top, _) = pre.topk((int)(reads.shape[0] * k));
        return full([encoder.shape[0]], top[-1].item<float>());
    }

    /// <summary>Every layer's reconstructed MLP output; <paramref name="codes"/> are the layers' feature activations.</summary>
    private static Tensor[] Reconstruct(Tensor[] reads, List<Parameter> encoders, List<Parameter> encoderBiases, List<Parameter> decoders, List<Parameter> decoderBiases,
        ActivationFunction[] activations, bool crossLayer, out Tensor[] codes)
    {
        int layers = reads.Length;
        codes = [.. Enumerable.Range(0, layers).Select(l => activations[l].Apply(reads[l].matmul(encoders[l].t()) + encoderBiases[l]))];
        var outputs = new Tensor[layers];
        for (int target = 0; target < layers; target++)
        {
            var sum = decoderBiases[target].expand(reads[target].shape[0], -1);
            for (int source = crossLayer ? 0 : target; source <= target; source++)
                sum = sum + codes[source].matmul(decoders[source][.., target - source]);
            outputs[target] = sum;
        }
        return outputs;
    }

    private static List<LayerFit> Fit(MlpActivations heldOut, List<Parameter> encoders, List<Parameter> encoderBiases, List<Parameter> decoders, List<Parameter> decoderBiases,
        ActivationFunction[] activations, bool crossLayer, MlpActivations train)
    {
        using var scope = NewDisposeScope();
        var outputs = Reconstruct(heldOut.Reads, encoders, encoderBiases, decoders, decoderBiases, activations, crossLayer, out var codes);
        Reconstruct(train.Reads, encoders, encoderBiases, decoders, decoderBiases, activations, crossLayer, out var trainCodes);   // dead: never active in training
        return [.. Enumerable.Range(0, outputs.Length).Select(l =>
        {
            var truth = heldOut.Writes[l];
            double residual = (truth - outputs[l]).pow(2).sum().item<float>();
            double total = (truth - truth.mean([0])).pow(2).sum().item<float>();
            double l0 = (codes[l] != 0).sum(1).to(ScalarType.Float32).mean().item<float>();
            int dead = (int)((trainCodes[l] != 0).any(0).logical_not().sum().item<long>());
            return new LayerFit(l, 1 - residual / total, l0, dead);
        })];
    }
}

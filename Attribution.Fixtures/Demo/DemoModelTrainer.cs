namespace Attribution.Demo;

using System.Diagnostics;
using Attribution.Checkpoints;
using Attribution.Loading;
using Attribution.Models;
using Attribution.Synthetic;
using Attribution.Tokenization;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

/// <summary>How the demo model is shaped and trained.</summary>
public sealed record DemoModelTraining
{
    public int DModel { get; init; } = 64;
    public int DMlp { get; init; } = 256;
    public int NLayers { get; init; } = 4;
    public int NHeads { get; init; } = 4;
    public int NKvHeads { get; init; } = 2;
    public int Steps { get; init; } = 1500;
    public int BatchSize { get; init; } = 128;
    public double LearningRate { get; init; } = 3e-3;
    public double WeightDecay { get; init; } = 0.01;
    public ulong Seed { get; init; } = 2027;
}

/// <summary>Next-token accuracy of one task, as answered by the greedy top logit.</summary>
public sealed record TaskAccuracy(DemoTask Task, int Correct, int Total)
{
    public double Fraction => Total == 0 ? 0 : (double)Correct / Total;
}

/// <summary>
/// Trains the demo model: a Llama-layout decoder learning the corpus sentences by next-token
/// prediction. The forward pass is the engine's own <see cref="DecoderModel"/> over trainable
/// tensors in Hugging Face names, so what is trained is exactly what is later loaded and traced.
/// </summary>
public static class DemoModelTrainer
{
    /// <summary>Trains and writes config.json, model.safetensors and tokenizer.json into <paramref name="folder"/>.</summary>
    public static void Train(string folder, DemoModelTraining training, string modelName, Action<string> log)
    {
        Directory.CreateDirectory(folder);
        // A byte-level BPE learned on the corpus: any text encodes, and every corpus word is one token.
        int vocabSize = TinyTokenizerFactory.WriteLearned(Path.Combine(folder, "tokenizer.json"), BpeTrainer.Learn(DemoCorpus.All().Select(e => e.Example.Text)));
        var spec = new TinyModelSpec
        {
            Architecture = ModelArchitecture.Llama, VocabSize = vocabSize, DModel = training.DModel, DMlp = training.DMlp,
            NLayers = training.NLayers, NHeads = training.NHeads, NKvHeads = training.NKvHeads, HeadDim = training.DModel / training.NHeads,
            BosTokenId = TinyTokenizerFactory.BosId, EosTokenId = TinyTokenizerFactory.EosId, Name = modelName,
        };
        File.WriteAllText(Path.Combine(folder, "config.json"), TinyCheckpoints.ConfigJson(spec));
        var config = ModelConfig.Load(folder);

        using var tokenizer = TextTokenizer.FromModelDirectory(folder);
        var sentences = DemoCorpus.Training().Select(e => (e.Task, Ids: tokenizer.EncodePrompt(e.Text))).ToList();
        TrainingVocabulary.Write(folder, sentences.SelectMany(s => s.Ids), $"The token ids of {modelName}'s training sentences; the model never saw any other token.");
        var byTask = sentences.GroupBy(s => s.Task).Select(g => g.Select(s => s.Ids).ToArray()).ToArray();

        manual_seed((long)training.Seed);
        using var generator = new Generator(training.Seed);
        var random = new Random((int)training.Seed);
        var weights = InitialWeights(spec, generator);
        var parameters = weights.ToDictionary(w => w.Key, w => new Parameter(w.Value));
        using var model = DecoderModel.FromCheckpoint(config, name => parameters[name].alias(), parameters.ContainsKey, CPU, ScalarType.Float32);
        // No decay on norms and embeddings, as usual for small transformers.
        var decayed = parameters.Where(p => !p.Key.EndsWith("norm.weight", StringComparison.Ordinal) && !p.Key.Contains("embed", StringComparison.Ordinal)).Select(p => p.Value).ToList();
        var plain = parameters.Values.Except(decayed).ToList();
        using var optimizer = optim.AdamW([new AdamW.ParamGroup(decayed, new AdamW.Options { weight_decay = training.WeightDecay }),
            new AdamW.ParamGroup(plain, new AdamW.Options { weight_decay = 0 })], lr: training.LearningRate, beta2: 0.98);

        var clock = Stopwatch.StartNew();
        for (int step = 0; step < training.Steps; step++)
        {
            using var scope = NewDisposeScope();
            double lr = LearningRate(training, step);
            foreach (var group in optimizer.ParamGroups) group.LearningRate = lr;
            // Each task equally often, whatever the size of its table.
            var batch = Enumerable.Range(0, training.BatchSize).Select(_ => { var t = byTask[random.Next(byTask.Length)]; return t[random.Next(t.Length)]; }).ToList();
            using var ids = Padded(batch);
            var logits = model.ForwardLogits(ids);
            var loss = F.cross_entropy(logits[.., ..^1].reshape(-1, config.VocabSize), ids[.., 1..].reshape(-1), ignore_index: TinyTokenizerFactory.PadId);
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
            if (step % 250 == 0 || step == training.Steps - 1)
                log($"model step {step,5}  loss {loss.item<float>():0.0000}  lr {lr:0.00000}  {clock.Elapsed.TotalSeconds:0}s");
        }

        using (no_grad())
            SafetensorsFormat.Write(Path.Combine(folder, CheckpointIndex.SingleFile),
                new SortedDictionary<string, Tensor>(parameters.ToDictionary(p => p.Key, p => p.Value.detach().clone()), StringComparer.Ordinal),
                new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>Greedy accuracy of the model on the given examples, per task.</summary>
    public static IReadOnlyList<TaskAccuracy> Evaluate(DecoderModel model, TextTokenizer tokenizer, IEnumerable<DemoExample> examples)
    {
        using var noGrad = no_grad();
        var results = new List<(DemoTask Task, bool Correct)>();
        foreach (var example in examples)
        {
            using var scope = NewDisposeScope();
            var ids = tokenizer.EncodePrompt(example.Prompt);
            using var input = tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Length]);
            long predicted = model.ForwardLogits(input)[0, -1].argmax().item<long>();
            results.Add((example.Task, tokenizer.DecodeToken((int)predicted) == " " + example.Answer));
        }
        return [.. results.GroupBy(r => r.Task).Select(g => new TaskAccuracy(g.Key, g.Count(r => r.Correct), g.Count()))];
    }

    /// <summary>Linear warm-up over the first 5% of steps, then cosine decay to a tenth.</summary>
    private static double LearningRate(DemoModelTraining training, int step)
    {
        int warmup = Math.Max(1, training.Steps / 20);
        if (step < warmup) return training.LearningRate * (step + 1) / warmup;
        double progress = (double)(step - warmup) / Math.Max(1, training.Steps - warmup);
        return training.LearningRate * (0.1 + 0.45 * (1 + Math.Cos(Math.PI * progress)));
    }

    /// <summary>Sentences right-padded with &lt;pad&gt; into [batch, longest]: causal attention never sees the padding.</summary>
    internal static Tensor Padded(IReadOnlyList<int[]> sentences)
    {
        int length = sentences.Max(s => s.Length);
        var flat = new long[sentences.Count * length];
        for (int b = 0; b < sentences.Count; b++)
            for (int t = 0; t < length; t++)
                flat[b * length + t] = t < sentences[b].Length ? sentences[b][t] : TinyTokenizerFactory.PadId;
        return tensor(flat, [sentences.Count, length]);
    }

    /// <summary>Small random projections (the residual writers scaled down by depth), unit norm weights.</summary>
    private static Dictionary<string, Tensor> InitialWeights(TinyModelSpec spec, Generator generator)
    {
        double std = 1 / Math.Sqrt(spec.DModel), residual = std / Math.Sqrt(2 * spec.NLayers);
        return TinyCheckpoints.WeightShapes(spec).ToDictionary(w => w.Name, w =>
            w.Name.EndsWith("norm.weight", StringComparison.Ordinal) ? ones(w.Shape)
            : randn(w.Shape, generator: generator) * (w.Name.EndsWith("o_proj.weight", StringComparison.Ordinal) || w.Name.EndsWith("down_proj.weight", StringComparison.Ordinal) ? residual : std));
    }
}

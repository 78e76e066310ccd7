namespace Attribution.Demo;

using System.Diagnostics;
using Attribution.Loading;
using Attribution.Models;
using Attribution.Tokenization;
using Attribution.Transcoders;
using static TorchSharp.torch;

/// <summary>
/// The whole demo (docs/demo.md): train the model on the corpus, check its answers, record its
/// MLPs over the corpus, train per-layer and cross-layer transcoders on 85% of the sentences and
/// measure them on the rest.
/// </summary>
public static class DemoBuild
{
    /// <summary>The MLP's own input and output: the transcoders replace exactly the MLP.</summary>
    public const ReadHook ReadAt = ReadHook.MlpIn;
    public const WriteHook WriteAt = WriteHook.MlpHookOut;

    /// <summary>The run's log, kept beside what it made (timings and metrics of the shipped files).</summary>
    public const string LogFile = "train-demo.log";

    public static void Run(string folder, DemoModelTraining training, TranscoderTraining transcoders, Action<string> log)
    {
        Directory.CreateDirectory(folder);
        using var record = new StreamWriter(Path.Combine(folder, LogFile)) { AutoFlush = true };
        var print = log;
        log = line =>
        {
            print(line);
            record.WriteLine(line);
        };
        // One thread: the same seed then gives the same files whatever the machine's core count, and
        // tensors this small gain nothing from a second thread that waits on a busy machine's scheduler.
        set_num_threads(1);
        log($"train-demo: seed {training.Seed}, model {training.Steps} steps, transcoders {transcoders.DTranscoder} features, k {transcoders.K}, {transcoders.Steps} steps, 1 thread");
        var clock = Stopwatch.StartNew();
        string modelFolder = Path.Combine(folder, BundledModel.ModelFolder);
        DemoModelTrainer.Train(modelFolder, training, BundledModel.Id, log);
        log($"model trained in {clock.Elapsed.TotalSeconds:0} s");
        using var model = DecoderModel.Load(modelFolder, CPU, ScalarType.Float32);
        using var tokenizer = TextTokenizer.FromModelDirectory(modelFolder);
        foreach (var (name, examples) in new[] { ("trained tables", DemoCorpus.Training()), ("held out", DemoCorpus.HeldOut()) })
            foreach (var a in DemoModelTrainer.Evaluate(model, tokenizer, examples))
                log($"{name,-15} {a.Task,-16} {a.Correct,4}/{a.Total,-4} {a.Fraction:P1}");

        // Transcoders train on 85% of the corpus sentences and are measured on the rest, with
        // copies of the training sentences that have one word swapped for a random one: the MLPs
        // are then seen around the corpus, not only on it, and the transcoders generalise.
        var (trainSentences, heldOutSentences) = TranscoderSplit(tokenizer, training.Seed);
        var random = new Random((int)training.Seed + 2);
        int[] corpusWords = [.. trainSentences.SelectMany(ids => ids[1..]).Distinct().Order()];
        var perturbed = Enumerable.Range(0, transcoders.PerturbedSentences).Select(_ =>
        {
            var ids = (int[])trainSentences[random.Next(trainSentences.Count)].Clone();
            ids[random.Next(1, ids.Length)] = corpusWords[random.Next(corpusWords.Length)];
            return ids;
        });
        using var data = new DemoTranscoderData(
            MlpActivations.Record(model, trainSentences.Select(ids => ids[..^1]), ReadAt, WriteAt, lastOnly: true),
            MlpActivations.Record(model, trainSentences, ReadAt, WriteAt),
            MlpActivations.Record(model, perturbed, ReadAt, WriteAt));
        using var heldOut = MlpActivations.Record(model, heldOutSentences, ReadAt, WriteAt);
        log($"transcoder data: {data.Corpus.Count} corpus positions and {transcoders.PerturbedSentences} perturbed sentences to train on, {heldOut.Count} positions held out");
        foreach (var (kind, sub, setId) in new[] { (TranscoderKind.PerLayer, BundledModel.PerLayerFolder, BundledModel.PerLayerSet), (TranscoderKind.CrossLayer, BundledModel.CrossLayerFolder, BundledModel.CrossLayerSet) })
        {
            DemoTranscoderTrainer.Train(Path.Combine(folder, sub), model.Config, ReadAt, WriteAt, data, heldOut,
                transcoders with { Kind = kind, Seed = training.Seed + 2 }, BundledModel.Id, setId, log, out var fits);
            foreach (var fit in fits)
                log($"{sub,-12} layer {fit.Layer}: variance explained {fit.VarianceExplained:0.000}, L0 {fit.MeanL0:0.0}, dead {fit.DeadFeatures}");
        }
        Describe(folder, log);
        log($"done in {clock.Elapsed.TotalSeconds:0} s");
    }

    /// <summary>
    /// The corpus sentences (with their answers, as ids) the transcoders train on, and the 15% held
    /// out to measure them. The tour's sentences always train: the tour shows in-distribution prompts.
    /// </summary>
    public static (IReadOnlyList<int[]> Train, IReadOnlyList<int[]> HeldOut) TranscoderSplit(TextTokenizer tokenizer, ulong seed)
    {
        var examples = DemoCorpus.All().Select(e => e.Example).ToArray();
        new Random((int)seed + 1).Shuffle(examples);
        int heldOutCount = examples.Length * 15 / 100;
        var heldOut = examples.Where(e => !BundledModel.TourPrompts.Contains(e.Prompt)).TakeLast(heldOutCount).ToHashSet();
        int[] Ids(DemoExample e) => tokenizer.EncodePrompt(e.Text);
        return ([.. examples.Where(e => !heldOut.Contains(e)).Select(Ids)], [.. examples.Where(heldOut.Contains).Select(Ids)]);
    }

    /// <summary>
    /// Labels the features of both trained sets from their top activations (labels.json), writes
    /// their dashboards (features/, the examples the labels were read from), and finds
    /// the tour's steering examples on the per-layer set (tour.json).
    /// </summary>
    public static void Describe(string folder, Action<string> log)
    {
        set_num_threads(1);   // as in training: labels sit on ties that a second thread's summation order could break
        foreach (var sub in new[] { BundledModel.CrossLayerFolder, BundledModel.PerLayerFolder })
        {
            using var model = Load(folder, sub);
            var firings = DemoFeatures.TopFirings(model);
            int labelled = DemoFeatures.WriteLabels(Path.Combine(folder, sub), firings);
            DemoDashboards.Write(Path.Combine(folder, sub), model, firings);
            log($"{sub}: {firings.Count} features fired on the corpus, {labelled} labelled");
            if (sub == BundledModel.PerLayerFolder) DemoTour.Write(folder, DemoTour.Find(model, firings, log));
        }
    }

    /// <summary>The trained demo in <paramref name="folder"/> with one of its sets, loaded as the service loads a local model.</summary>
    public static LoadedModel Load(string folder, string transcoderFolder) =>
        LoadedModel.LoadAsync(new ModelSettings
        {
            ModelId = BundledModel.Id,
            ModelPath = Path.Combine(folder, BundledModel.ModelFolder),
            TranscoderSet = Path.Combine(folder, transcoderFolder, "config.yaml"),
        }, hub: null).GetAwaiter().GetResult();
}

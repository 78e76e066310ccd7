namespace Attribution.Tests.Support;

using System.Text.Json.Nodes;
using Attribution.Models;
using Attribution.Synthetic;
using static TorchSharp.torch;

/// <summary>
/// Hugging Face parity fixtures: per architecture a model folder as transformers saves it and a
/// reference.json (tools/hf-parity/make_fixtures.py) with the logits and every transcoder
/// read/write point of the last two positions. GF_HF_FIXTURES names a folder the script wrote
/// (scripts/gpu-check.sh sets it where transformers is installed). Without it the fixtures are
/// made here by our own forward pass, which checks the loading and comparison machinery but not
/// the equations — only transformers' own outputs do that.
/// </summary>
public sealed class HfParityFixtures : IDisposable
{
    public const string Variable = "GF_HF_FIXTURES";

    /// <summary>Fixture names and the architecture each is written with.</summary>
    public static readonly IReadOnlyDictionary<string, ModelArchitecture> Architectures = new Dictionary<string, ModelArchitecture>
    {
        ["gemma2"] = ModelArchitecture.Gemma2,
        ["gemma3"] = ModelArchitecture.Gemma3,
        ["llama3"] = ModelArchitecture.Llama,
        ["qwen3"] = ModelArchitecture.Qwen3,
    };

    private static readonly int[] InputIds = [2, 17, 101, 5, 66, 9, 200, 31, 8, 140, 77, 3];

    private readonly TempFolder? made;

    private HfParityFixtures(string root, TempFolder? made)
    {
        Root = root;
        this.made = made;
    }

    public string Root { get; }

    /// <summary>Whether the references come from transformers (not from our own forward pass).</summary>
    public bool FromTransformers => made is null;

    public static HfParityFixtures Open() =>
        Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } root
            ? new HfParityFixtures(root, null)
            : MadeHere();

    public string Folder(string name)
    {
        string folder = Path.Combine(Root, name);
        if (!File.Exists(Path.Combine(folder, "reference.json")))
            throw new FileNotFoundException($"{Variable}={Root} has no {name}/reference.json");
        return folder;
    }

    /// <summary>
    /// Every point where our forward pass of the fixture's model differs from its reference by
    /// more than <paramref name="relativeTolerance"/> of that tensor's largest |value|.
    /// </summary>
    public static List<string> Mismatches(string folder, double relativeTolerance)
    {
        var reference = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "reference.json")))!;
        var ids = reference["input_ids"]!.AsArray().Select(v => v!.GetValue<int>()).ToArray();
        using var model = DecoderModel.Load(folder, CPU, ScalarType.Float32);
        var ours = OurPoints(model, ids);

        var mismatches = new List<string>();
        void Compare(string point, JsonNode expected)
        {
            if (!ours.TryGetValue(point, out var actual)) { mismatches.Add($"{point}: not computed here"); return; }
            var rows = expected.AsArray().Select(r => r!.AsArray().Select(v => v!.GetValue<double>()).ToArray()).ToArray();
            double scale = Math.Max(1e-30, rows.SelectMany(r => r).Max(Math.Abs));
            double worst = rows.Zip(actual, (e, a) => e.Zip(a, (x, y) => Math.Abs(x - y)).Max()).Max();
            if (worst > relativeTolerance * scale)
                mismatches.Add($"{point}: max |difference| {worst:G3} against max |value| {scale:G3}");
        }
        Compare("logits", reference["logits_last2"]!);
        foreach (var (point, expected) in reference["points_last2"]!.AsObject())
            Compare(point, expected!);
        return mismatches;
    }

    /// <summary>Our logits and every read/write point of each layer, for the last two positions.</summary>
    public static Dictionary<string, double[][]> OurPoints(DecoderModel model, int[] ids)
    {
        using var scope = NewDisposeScope();
        using var input = tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0);
        var points = new Dictionary<string, double[][]>();
        static double[][] LastTwo(Tensor t)
        {
            using var rows = t[0].narrow(0, t.shape[1] - 2, 2).to(ScalarType.Float64).cpu();
            return [.. Enumerable.Range(0, 2).Select(r => rows[r].data<double>().ToArray())];
        }
        void Record(ReadHook read, WriteHook write, string readName, string? writeName)
        {
            var recorder = new PointRecorder(read, write);
            using var logits = model.ForwardLogits(input, recorder);
            points["logits"] = LastTwo(logits);
            foreach (var (layer, t) in recorder.Reads) points[$"{layer}.{readName}"] = LastTwo(t);
            if (writeName is null) return;
            foreach (var (layer, t) in recorder.Writes) points[$"{layer}.{writeName}"] = LastTwo(t);
        }
        Record(ReadHook.ResidMid, WriteHook.MlpHookOut, "resid_mid", "mlp_out_raw");
        Record(ReadHook.Ln2Normalized, WriteHook.MlpOut, "ln2_normalized", "mlp_out");
        Record(ReadHook.MlpIn, WriteHook.MlpOut, "mlp_in", null);
        return points;
    }

    private static HfParityFixtures MadeHere()
    {
        var temp = new TempFolder("gf-hf-fixtures");
        ulong seed = 11;
        foreach (var (name, architecture) in Architectures)
        {
            string folder = temp[name];
            TinyCheckpoints.WriteModel(folder, new TinyModelSpec { Architecture = architecture, NLayers = 3, Seed = seed++ });
            using var model = DecoderModel.Load(folder, CPU, ScalarType.Float32);
            var points = OurPoints(model, InputIds);
            var reference = new JsonObject
            {
                ["input_ids"] = new JsonArray([.. InputIds.Select(i => (JsonNode)i)]),
                ["logits_last2"] = ToJson(points["logits"]),
                ["points_last2"] = new JsonObject(points.Where(p => p.Key != "logits").Select(p => KeyValuePair.Create(p.Key, (JsonNode?)ToJson(p.Value)))),
            };
            File.WriteAllText(Path.Combine(folder, "reference.json"), reference.ToJsonString());
        }
        return new HfParityFixtures(temp.Path, temp);
    }

    private static JsonArray ToJson(double[][] rows) =>
        new([.. rows.Select(r => (JsonNode)new JsonArray([.. r.Select(v => (JsonNode)v)]))]);

    public void Dispose() => made?.Dispose();

    /// <summary>A plain forward pass that keeps the tensors at its read and write points.</summary>
    private sealed class PointRecorder(ReadHook read, WriteHook write) : RunPolicy
    {
        public Dictionary<int, Tensor> Reads { get; } = [];

        public Dictionary<int, Tensor> Writes { get; } = [];

        public override ReadHook ReadAt => read;

        public override WriteHook WriteAt => write;

        public override void OnRead(int layer, Tensor tensor) => Reads[layer] = tensor;

        public override Tensor Write(int layer, Tensor input, Func<Tensor> mlp) => Writes[layer] = mlp();
    }
}

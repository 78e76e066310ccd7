namespace GraphFunctions.Cli;

using System.CommandLine;
using Attribution.Models;
using Attribution.Synthetic;
using Attribution.Transcoders;

/// <summary>`create-tiny`: a seeded random model, tokenizer and transcoder set in the real on-disk formats.</summary>
internal static class CreateTinyCommand
{
    public static Command Create()
    {
        var output = new Option<DirectoryInfo>("--out") { Description = "Folder to write model/ and transcoders/ into", Required = true };
        var architecture = new Option<ModelArchitecture>("--arch") { DefaultValueFactory = _ => ModelArchitecture.Gemma2 };
        var crossLayer = new Option<bool>("--clt") { Description = "A cross-layer transcoder instead of per-layer ones" };
        var skip = new Option<bool>("--skip") { Description = "Transcoders with a linear skip connection" };
        var layers = new Option<int>("--layers") { DefaultValueFactory = _ => 4 };
        var dModel = new Option<int>("--d-model") { DefaultValueFactory = _ => 64 };
        var dTranscoder = new Option<int>("--d-transcoder") { DefaultValueFactory = _ => 512 };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 0 };

        var command = new Command("create-tiny", "Write a seeded tiny model and transcoders (no downloads needed)")
        {
            output, architecture, crossLayer, skip, layers, dModel, dTranscoder, seed,
        };
        command.SetAction(parse =>
        {
            var folder = parse.GetValue(output)!.FullName;
            string modelFolder = Path.Combine(folder, "model");
            int d = parse.GetValue(dModel);
            TinyCheckpoints.WriteModel(modelFolder, new TinyModelSpec
            {
                Architecture = parse.GetValue(architecture), VocabSize = TinyTokenizerFactory.VocabSize, DModel = d, DMlp = 4 * d,
                NLayers = parse.GetValue(layers), NHeads = 4, NKvHeads = 2, HeadDim = d / 4, Seed = (ulong)parse.GetValue(seed),
                BosTokenId = TinyTokenizerFactory.BosId, EosTokenId = TinyTokenizerFactory.EosId,
            });
            TinyTokenizerFactory.Write(Path.Combine(modelFolder, "tokenizer.json"));
            string config = TinyCheckpoints.WriteTranscoders(Path.Combine(folder, "transcoders"), modelFolder, new TinyTranscoderSpec
            {
                Kind = parse.GetValue(crossLayer) ? TranscoderKind.CrossLayer : TranscoderKind.PerLayer,
                Skip = parse.GetValue(skip),
                DTranscoder = parse.GetValue(dTranscoder),
                TargetL0 = 16,
                Seed = (ulong)parse.GetValue(seed) + 1,
            });
            Console.WriteLine($"model: {modelFolder}\ntranscoders: {config}");
            return 0;
        });
        return command;
    }
}

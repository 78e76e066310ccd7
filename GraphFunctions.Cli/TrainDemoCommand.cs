namespace GraphFunctions.Cli;

using System.CommandLine;
using Attribution.Demo;

/// <summary>`train-demo`: trains the bundled demo model and its transcoders from a seed (docs/demo.md).</summary>
internal static class TrainDemoCommand
{
    public static Command Create()
    {
        var output = new Option<DirectoryInfo>("--out") { Description = "Folder to write model/, transcoders/ and clt/ into", Required = true };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => (int)new DemoModelTraining().Seed };
        var steps = new Option<int>("--steps") { DefaultValueFactory = _ => new DemoModelTraining().Steps, Description = "Model training steps" };
        var features = new Option<int>("--features") { DefaultValueFactory = _ => new TranscoderTraining().DTranscoder, Description = "Features per transcoder layer" };
        var k = new Option<int>("--k") { DefaultValueFactory = _ => new TranscoderTraining().K, Description = "TopK: features active per position" };
        var transcoderSteps = new Option<int>("--transcoder-steps") { DefaultValueFactory = _ => new TranscoderTraining().Steps };
        var describeOnly = new Option<bool>("--describe-only") { Description = "Only relabel the features and search the tour of an already trained demo" };
        var command = new Command("train-demo", "Train the demo model on its synthetic corpus, then its transcoders (no downloads)")
        {
            output, seed, steps, features, k, transcoderSteps, describeOnly,
        };
        command.SetAction(parse =>
        {
            var folder = parse.GetValue(output)!.FullName;
            if (parse.GetValue(describeOnly))
            {
                DemoBuild.Describe(folder, Console.WriteLine);
                return 0;
            }
            DemoBuild.Run(folder, new DemoModelTraining { Seed = (ulong)parse.GetValue(seed), Steps = parse.GetValue(steps) },
                new TranscoderTraining { DTranscoder = parse.GetValue(features), K = parse.GetValue(k), Steps = parse.GetValue(transcoderSteps) }, Console.WriteLine);
            return 0;
        });
        return command;
    }
}

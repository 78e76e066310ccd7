using System.CommandLine;
using GraphFunctions.Cli;

var root = new RootCommand("GraphFunctions: attribution graphs for language models with transcoders (circuit-tracer compatible).")
{
    GraphCommand.Create(),
    CreateTinyCommand.Create(),
    TrainDemoCommand.Create(),
    ViewCommand.Create(),
};
return await root.Parse(args).InvokeAsync();

using System.CommandLine;
using GraphFunctions.Cli;

Attribution.NativeAllocator.Adopt();   // first: the allocator is chosen before the runtime allocates much
var root = new RootCommand("GraphFunctions: attribution graphs for language models with transcoders (circuit-tracer compatible).")
{
    GraphCommand.Create(),
    CreateTinyCommand.Create(),
    TrainDemoCommand.Create(),
    ViewCommand.Create(),
};
return await root.Parse(args).InvokeAsync();

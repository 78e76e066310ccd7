namespace GraphFunctions.Cli;

using System.CommandLine;
using GraphFunctions.Api;
using Microsoft.Extensions.Hosting;

/// <summary>`view`: the graph viewer over graph files on disk, as circuit-tracer's `serve` (no model needed).</summary>
internal static class ViewCommand
{
    public static Command Create()
    {
        var paths = new Argument<string[]>("graphs") { Description = "Graph JSON files (*.json, *.json.gz) or folders of them", Arity = ArgumentArity.OneOrMore };
        var port = new Option<int>("--port") { Description = "Port on 127.0.0.1 (0: any free port)", DefaultValueFactory = _ => 5005 };
        var features = new Option<DirectoryInfo?>("--features") { Description = "Feature dashboards for the feature panel: a folder in circuit-tracer's local format (index.json.gz and its layer files)" };
        var command = new Command("view", "Serve the graph viewer over graph files: pin, group, label (saved beside each file) and share views, offline")
        {
            paths, port, features,
        };
        command.SetAction(async (parse, cancellation) =>
        {
            GraphFileLibrary library;
            Microsoft.AspNetCore.Builder.WebApplication app;
            try
            {
                library = GraphFileLibrary.Open(parse.GetValue(paths)!);
                app = GraphFileViewer.Create(library, parse.GetValue(port), parse.GetValue(features)?.FullName);
            }
            catch (ArgumentException e)
            {
                Console.Error.WriteLine(e.Message);
                return 2;
            }
            await app.StartAsync(cancellation);
            await app.WaitForShutdownAsync(cancellation);
            return 0;
        });
        return command;
    }
}

using GraphFunctions.LocalHost;

var app = LocalHostApp.Create(args);
await app.RunAsync();

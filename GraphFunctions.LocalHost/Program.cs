using GraphFunctions.LocalHost;

Attribution.NativeAllocator.Adopt();   // first: the allocator is chosen before the runtime allocates much
var app = LocalHostApp.Create(args);
await app.RunAsync();

using GraphFunctions.Configuration;
using GraphFunctions.Service;
using Microsoft.Azure.Functions.Worker.Builder;
using Microsoft.Extensions.Hosting;

// First: the worker re-executes itself with jemalloc, installed by the image (docs/performance.md, "Memory").
Attribution.NativeAllocator.Adopt();
var builder = FunctionsApplication.CreateBuilder(args);
builder.ConfigureFunctionsWebApplication();
// Deliveries leave graph work an activity slot of the host's (host.json, copied next to the worker).
var options = ServiceOptions.From(builder.Configuration) with { ActivitySlots = ServiceOptions.ActivitySlotsIn(Path.Combine(AppContext.BaseDirectory, "host.json")) };
builder.Services.AddGraphService(builder.Configuration, options);
builder.Build().Run();

using GraphFunctions.Configuration;
using GraphFunctions.Service;
using Microsoft.Azure.Functions.Worker.Builder;
using Microsoft.Extensions.Hosting;

var builder = FunctionsApplication.CreateBuilder(args);
builder.ConfigureFunctionsWebApplication();
// Deliveries leave graph work an activity slot of the host's (host.json, copied next to the worker).
var options = ServiceOptions.From(builder.Configuration) with { ActivitySlots = ServiceOptions.ActivitySlotsIn(Path.Combine(AppContext.BaseDirectory, "host.json")) };
builder.Services.AddGraphService(builder.Configuration, options);
builder.Build().Run();

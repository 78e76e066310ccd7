namespace GraphFunctions.Tests.Service;

using System.Reflection;
using GraphFunctions.Orchestration;
using GraphFunctions.Service;
using Microsoft.Azure.Functions.Worker;

/// <summary>
/// The Functions app registers the orchestrator and every activity the service defines, each
/// under its class name with the trigger Durable Functions dispatches by: an activity the local
/// host runs but the Functions app lacks would fail every job in Azure only.
/// </summary>
public sealed class DurableFunctionsTests
{
    /// <summary>(function name, trigger attribute type) of every [Function] in the Functions app.</summary>
    private static List<(string Name, Type? Trigger)> Functions() =>
    [
        .. typeof(HttpFunctions).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Static | BindingFlags.Instance))
            .Select(m => (Method: m, Function: m.GetCustomAttribute<FunctionAttribute>()))
            .Where(f => f.Function is not null)
            .Select(f => (f.Function!.Name, f.Method.GetParameters()
                .SelectMany(p => p.GetCustomAttributes())
                .Select(a => a.GetType())
                .FirstOrDefault(a => a == typeof(ActivityTriggerAttribute) || a == typeof(OrchestrationTriggerAttribute)))),
    ];

    [Fact]
    public void Every_activity_and_the_orchestrator_are_functions_with_their_triggers()
    {
        var functions = Functions();

        Assert.Contains((nameof(GraphOrchestrator), typeof(OrchestrationTriggerAttribute)), functions);
        Assert.All(ServiceRegistration.ActivityTypes, activity => Assert.Contains((activity.Name, typeof(ActivityTriggerAttribute)), functions));
        var activityFunctions = functions.Where(f => f.Trigger == typeof(ActivityTriggerAttribute)).Select(f => f.Name).Order();
        Assert.Equal(ServiceRegistration.ActivityTypes.Select(t => t.Name).Order(), activityFunctions);
    }
}

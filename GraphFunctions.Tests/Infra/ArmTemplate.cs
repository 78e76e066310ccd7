namespace GraphFunctions.Tests.Infra;

using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

/// <summary>
/// The ARM template compiled from infra/bicep/main.bicep by the test project's BuildAndLintBicep
/// target, with the resources of every module (nested deployment) flattened into one list.
/// Values can be followed through the two indirections Bicep emits for passing values around,
/// <c>[parameters('x')]</c> (up into the deployment that called the module) and
/// <c>[variables('x')]</c>; any other expression is returned as written.
/// </summary>
internal sealed class ArmTemplate
{
    private static readonly Lazy<ArmTemplate> CompiledTemplate = new(() =>
        new ArmTemplate(Path.Combine(AppContext.BaseDirectory, "infra", "main.json")));

    private ArmTemplate(string path)
    {
        Assert.True(File.Exists(path), $"{path} is missing: the BuildAndLintBicep target did not run.");
        Root = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        var resources = new List<ArmResource>();
        Collect(new ArmScope(Root, null, null), resources);
        Resources = resources;
    }

    /// <summary>The template built for this test run.</summary>
    public static ArmTemplate Compiled => CompiledTemplate.Value;

    public JsonObject Root { get; }

    /// <summary>Every resource of main.bicep and its modules (the deployments themselves included).</summary>
    public IReadOnlyList<ArmResource> Resources { get; }

    public IEnumerable<ArmResource> OfType(string type) =>
        Resources.Where(r => string.Equals(r.Type, type, StringComparison.OrdinalIgnoreCase));

    public ArmResource Single(string type)
    {
        var matches = OfType(type).ToList();
        Assert.True(matches.Count == 1, $"expected exactly one {type}, found {matches.Count}");
        return matches[0];
    }

    /// <summary>A parameter declaration of main.bicep.</summary>
    public JsonObject MainParameter(string name) =>
        Root["parameters"]?[name]?.AsObject() ?? throw new InvalidOperationException($"main.bicep has no parameter {name}");

    /// <summary>Every string in the template, property names included.</summary>
    public IEnumerable<string> AllStrings() => Strings(Root);

    private static IEnumerable<string> Strings(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var (key, value) in obj)
                {
                    yield return key;
                    foreach (var s in Strings(value)) yield return s;
                }
                break;
            case JsonArray array:
                foreach (var item in array)
                {
                    foreach (var s in Strings(item)) yield return s;
                }
                break;
            case JsonValue value when value.TryGetValue(out string? text):
                yield return text;
                break;
        }
    }

    // Bicep writes resources as an array, or as an object keyed by symbolic name (language version 2.0).
    private static IEnumerable<JsonObject> ResourcesOf(JsonObject template) => template["resources"] switch
    {
        JsonArray array => array.Select(r => r!.AsObject()),
        JsonObject byName => byName.Select(pair => pair.Value!.AsObject()),
        _ => [],
    };

    private static void Collect(ArmScope scope, List<ArmResource> into)
    {
        foreach (var body in ResourcesOf(scope.Template))
        {
            into.Add(new ArmResource(body, scope));
            if (body["properties"]?["template"] is JsonObject nested)
            {
                var passed = body["properties"]?["parameters"] as JsonObject;
                Collect(new ArmScope(nested, passed, scope), into);
            }
        }
    }
}

/// <summary>One resource and the template (module) it is declared in.</summary>
internal sealed class ArmResource(JsonObject body, ArmScope scope)
{
    public string Type => (string)body["type"]!;

    public JsonObject Body => body;

    public ArmScope Scope => scope;

    /// <summary>The node at a dotted path below the resource, e.g. "properties.template.scale".</summary>
    public JsonNode? At(string path)
    {
        JsonNode? node = body;
        foreach (var part in path.Split('.'))
        {
            node = node is JsonObject obj ? obj[part] : null;
        }
        return node;
    }

    /// <summary>The value at a dotted path, followed through parameters and variables.</summary>
    public JsonNode? Resolved(string path) => scope.Resolve(At(path));

    public string? ResolvedString(string path) => ArmScope.AsString(Resolved(path));
}

/// <summary>A template plus the parameter values its calling deployment passed in.</summary>
internal sealed partial class ArmScope(JsonObject template, JsonObject? passedParameters, ArmScope? caller)
{
    public JsonObject Template { get; } = template;

    /// <summary>The values the calling deployment passed in; null for main.bicep itself.</summary>
    private JsonObject? PassedParameters { get; } = passedParameters;

    /// <summary>The scope of the calling deployment; null for main.bicep itself.</summary>
    private ArmScope? Caller { get; } = caller;

    /// <summary>Follows <c>[parameters('x')]</c> and <c>[variables('x')]</c> until another value is reached.</summary>
    public JsonNode? Resolve(JsonNode? node) => Follow(node).Value;

    /// <summary>
    /// The main.bicep parameter a value finally comes from (through module parameters), or null
    /// when it is computed or written literally somewhere on the way.
    /// </summary>
    public string? MainParameterOf(JsonNode? node) => Follow(node).MainParameter;

    public static string? AsString(JsonNode? node) =>
        node is JsonValue value && value.TryGetValue(out string? text) ? text : null;

    private (JsonNode? Value, string? MainParameter) Follow(JsonNode? node)
    {
        var scope = this;
        string? mainParameter = null;
        for (var hops = 0; hops < 32; hops++)
        {
            var text = AsString(node);
            if (text is null) return (node, mainParameter);

            var parameter = ParameterReference().Match(text);
            var variable = VariableReference().Match(text);
            if (parameter.Success)
            {
                var name = parameter.Groups[1].Value;
                mainParameter = null;
                if (scope.PassedParameters?[name] is JsonObject passed)
                {
                    node = passed["value"];
                    scope = scope.Caller!;
                }
                else
                {
                    if (scope.Caller is null) mainParameter = name;
                    node = scope.Template["parameters"]?[name]?["defaultValue"];
                }
            }
            else if (variable.Success)
            {
                node = scope.Template["variables"]?[variable.Groups[1].Value];
            }
            else
            {
                return (node, mainParameter);
            }
        }
        throw new InvalidOperationException("parameter chain too long");
    }

    [GeneratedRegex(@"^\[parameters\('([^']+)'\)\]$")]
    private static partial Regex ParameterReference();

    [GeneratedRegex(@"^\[variables\('([^']+)'\)\]$")]
    private static partial Regex VariableReference();
}

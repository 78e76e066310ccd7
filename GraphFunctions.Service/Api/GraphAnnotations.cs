namespace GraphFunctions.Api;

using System.Text.Json;
using System.Text.Json.Serialization;

/// <summary>
/// A researcher's annotations of a finished graph, saved beside it (PUT /jobs/{id}/annotations) as
/// circuit-tracer's local server saves its view parameters into the graph file: labels that
/// replace a node's automatic one (<c>clerps</c>, <c>[[node_id, label], …]</c>), the pinned nodes
/// and the supernodes (<c>[[name, node_id, …], …]</c>), in Neuronpedia's parameter shapes.
/// </summary>
public sealed record GraphAnnotations(
    [property: JsonPropertyName("clerps")] IReadOnlyList<string[]> Clerps,
    [property: JsonPropertyName("pinnedIds")] IReadOnlyList<string> PinnedIds,
    [property: JsonPropertyName("supernodes")] IReadOnlyList<string[]> Supernodes)
{
    /// <summary>The most entries of each list, and the longest text of any entry.</summary>
    public const int MaxEntries = 10_000, MaxText = 500;

    public static GraphAnnotations Empty { get; } = new([], [], []);

    /// <summary>The annotations in a request body, or null with the first problem named.</summary>
    public static GraphAnnotations? Parse(JsonElement body, out string? problem)
    {
        problem = null;
        var clerps = Lists(body, "clerps", minimum: 2, maximum: 2, ref problem);
        var pinned = Lists(body, "pinnedIds", minimum: 1, maximum: 1, ref problem, plain: true);
        var supernodes = Lists(body, "supernodes", minimum: 2, maximum: MaxEntries, ref problem);
        return problem is null ? new GraphAnnotations(clerps!, [.. pinned!.Select(p => p[0])], supernodes!) : null;
    }

    /// <summary>
    /// Field <paramref name="name"/> (absent: empty): a list of lists of strings of the given lengths,
    /// or with <paramref name="plain"/> a list of strings (each read as a list of one).
    /// </summary>
    private static List<string[]>? Lists(JsonElement body, string name, int minimum, int maximum, ref string? problem, bool plain = false)
    {
        if (problem is not null) return null;
        if (!body.TryGetProperty(name, out var field) || field.ValueKind == JsonValueKind.Null) return [];
        string entryShape = plain ? "a string" : minimum == maximum ? $"[{minimum} strings]" : $"a list of {minimum} or more strings";
        if (field.ValueKind != JsonValueKind.Array) return Fail(ref problem, $"{name} must be a list of {(plain ? "strings" : entryShape)}");
        if (field.GetArrayLength() > MaxEntries) return Fail(ref problem, $"{name} lists {field.GetArrayLength()} entries, at most {MaxEntries}");
        var lists = new List<string[]>();
        int i = 0;
        foreach (var entry in field.EnumerateArray())
        {
            var items = plain ? [entry] : entry.ValueKind == JsonValueKind.Array ? entry.EnumerateArray().ToArray() : null;
            if (items is null || items.Length < minimum || items.Length > maximum || items.Any(item => item.ValueKind != JsonValueKind.String))
                return Fail(ref problem, $"{name}[{i}] must be {entryShape}");
            var texts = items.Select(item => item.GetString()!).ToArray();
            if (texts.Any(text => text.Length > MaxText)) return Fail(ref problem, $"{name}[{i}] has a text longer than {MaxText} characters");
            lists.Add(texts);
            i++;
        }
        return lists;
    }

    private static List<string[]>? Fail(ref string? problem, string message)
    {
        problem = message;
        return null;
    }
}

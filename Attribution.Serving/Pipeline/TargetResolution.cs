namespace Attribution.Pipeline;

using Attribution.Loading;
using Attribution.Tracing;

/// <summary>
/// An attribution target as a client writes it (the request's attribution_targets, the CLI's
/// --target): a token as text or by id, and optionally a token to subtract, as text or by id.
/// </summary>
public sealed record TargetSpec(string? Token = null, long? TokenId = null, string? Minus = null, long? MinusId = null);

/// <summary>
/// Turns target specs into token ids of the served model, as circuit-tracer does: a text must be
/// exactly one token (encoded without special tokens), an id must be in the vocabulary. Every
/// problem is named with the target it belongs to.
/// </summary>
public static class TargetResolution
{
    /// <summary>The targets, or null with <paramref name="problems"/> holding why (one line per problem).</summary>
    public static List<TargetRequest>? Resolve(LoadedModel model, IReadOnlyList<TargetSpec> specs, string listName, out List<string> problems)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(specs);
        problems = [];
        if (specs.Count == 0)
        {
            problems.Add($"{listName} is empty: leave it out to attribute from the most likely next tokens");
            return null;
        }
        long vocabulary = model.Replacement.Model.Unembedding.shape[0];
        var targets = new List<TargetRequest>();
        for (int i = 0; i < specs.Count; i++)
        {
            string at = $"{listName}[{i}]";
            var spec = specs[i];
            long? token = TokenOf(model, vocabulary, spec.Token, spec.TokenId, at, "token", problems);
            long? minus = spec.Minus is null && spec.MinusId is null ? null : TokenOf(model, vocabulary, spec.Minus, spec.MinusId, at, "minus", problems);
            if (token is null || (minus is null && (spec.Minus is not null || spec.MinusId is not null))) continue;
            if (minus == token) problems.Add($"{at} subtracts its token from itself: the difference is zero");
            else targets.Add(new TargetRequest(token.Value, minus));
        }
        return problems.Count == 0 ? targets : null;
    }

    /// <summary>The id of one token given as text or id (exactly one of them), or null with the problem noted.</summary>
    private static long? TokenOf(LoadedModel model, long vocabulary, string? text, long? id, string at, string name, List<string> problems)
    {
        if (text is not null && id is not null)
        {
            problems.Add($"{at} gives both {name} and {name}_id: give one");
            return null;
        }
        if (id is long given)
        {
            if (given >= 0 && given < vocabulary) return given;
            problems.Add($"{at}.{name}_id {given} is not in the vocabulary (0-{vocabulary - 1})");
            return null;
        }
        if (text is null)
        {
            problems.Add($"{at} needs {name} (a token as text) or {name}_id");
            return null;
        }
        int[] ids = model.Tokenizer.Encode(text);
        if (ids.Length == 1) return ids[0];
        problems.Add(ids.Length == 0
            ? $"{at}.{name} \"{text}\" is no token of this model"
            : $"{at}.{name} \"{text}\" is {ids.Length} tokens of this model ({string.Join(" + ", ids.Select(t => $"\"{model.Tokenizer.DecodeToken(t)}\""))}): a target must be one token");
        return null;
    }
}

namespace Attribution.Chat;

using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

/// <summary>One chat turn.</summary>
public sealed record ChatMessage(string Role, string Content);

/// <summary>
/// A Hugging Face chat template (Jinja2) and the smallest interpreter that renders the real
/// templates of Gemma-3, Qwen3 and Llama-3/3.1 exactly as <c>@huggingface/jinja</c> (the renderer
/// of transformers.js) does; the tests compare the two byte for byte. A library should have done
/// this, but no Jinja implementation is served on NuGet here. Anything the interpreter does not
/// implement — a tag, filter, test, method or global — fails with a <see cref="ChatTemplateException"/>
/// naming it, never with a wrong prompt.
/// </summary>
public sealed class ChatTemplate
{
    private readonly List<Node> body;

    private ChatTemplate(List<Node> body) => this.body = body;

    public static ChatTemplate Parse(string source) => new(new JinjaParser(JinjaLexer.Tokenize(source)).ParseTemplate());

    /// <summary>Renders with these top-level variables (JSON); a variable the object lacks is undefined.</summary>
    public string Render(JsonObject variables)
    {
        var scope = new Scope(null);
        foreach (var (name, value) in variables) scope.Set(name, JinjaValues.FromJson(value));
        var output = new StringBuilder();
        new JinjaRenderer(output).Run(body, scope);
        return output.ToString();
    }

    /// <summary>Renders chat messages with the generation-prompt flag and the special-token texts (absent when null).</summary>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, string? bosToken, string? eosToken)
    {
        var variables = new JsonObject
        {
            ["messages"] = new JsonArray([.. messages.Select(m => (JsonNode)new JsonObject { ["role"] = m.Role, ["content"] = m.Content })]),
            ["add_generation_prompt"] = addGenerationPrompt,
        };
        if (bosToken is not null) variables["bos_token"] = bosToken;
        if (eosToken is not null) variables["eos_token"] = eosToken;
        return Render(variables);
    }
}

/// <summary>The value of a variable no one set: renders as "", is falsy, and its attributes are undefined too.</summary>
internal sealed class Undefined
{
    public static readonly Undefined Value = new();
}

/// <summary>The object namespace(...) makes: attributes a loop body may assign.</summary>
internal sealed class Namespace : Dictionary<string, object?>;

/// <summary>Variables: a loop body sees the enclosing ones, and what it sets stays inside it.</summary>
internal sealed class Scope(Scope? parent)
{
    private readonly Dictionary<string, object?> values = [];

    public object? Get(string name) =>
        values.TryGetValue(name, out var value) ? value : parent is null ? Undefined.Value : parent.Get(name);

    public void Set(string name, object? value) => values[name] = value;
}

/// <summary>Jinja values as .NET objects: null (none), bool, long, double, string, List, ordered dictionary, Namespace, Undefined.</summary>
internal static class JinjaValues
{
    public static object? FromJson(JsonNode? node) => node switch
    {
        null => null,
        JsonObject o => new OrderedDictionary<string, object?>(o.Select(p => KeyValuePair.Create(p.Key, FromJson(p.Value)))),
        JsonArray a => a.Select(FromJson).ToList(),
        JsonValue v => v.GetValueKind() switch
        {
            JsonValueKind.String => v.GetValue<string>(),
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            // Whole JSON numbers are integers (1, not 1.0), as JSON.parse and Python's json read them.
            JsonValueKind.Number => long.TryParse(v.ToJsonString(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long whole)
                ? (object)whole : double.Parse(v.ToJsonString(), CultureInfo.InvariantCulture),
            _ => null,
        },
        _ => throw new ChatTemplateException($"a variable of JSON type {node.GetType().Name} is not supported"),
    };

    public static bool Truthy(object? value) => value switch
    {
        null or Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        System.Collections.ICollection c => c.Count > 0,
        _ => true,
    };

    /// <summary>As the renderer prints a value: none and undefined print nothing (handled by the caller), booleans as JavaScript writes them.</summary>
    public static string Text(object? value) => value switch
    {
        null or Undefined => "",
        string s => s,
        bool b => b ? "true" : "false",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => d % 1 == 0 ? d.ToString("0.0", CultureInfo.InvariantCulture) : d.ToString("R", CultureInfo.InvariantCulture),
        _ => Json(value, null, 0),
    };

    /// <summary>tojson as @huggingface/jinja writes it: ", " and ": " separators, or "," and newlines with an indent.</summary>
    public static string Json(object? value, int? indent, int depth)
    {
        string itemSeparator = indent is > 0 ? "," : ", ";
        string pad = indent is int n and > 0 ? new string(' ', n) : "";
        string basePadding = "\n" + string.Concat(Enumerable.Repeat(pad, depth)), childPadding = basePadding + pad;
        string Wrap(char open, List<string> parts, char close) =>
            pad.Length > 0 && parts.Count > 0 ? $"{open}{childPadding}{string.Join(itemSeparator + childPadding, parts)}{basePadding}{close}" : $"{open}{string.Join(itemSeparator, parts)}{close}";
        return value switch
        {
            null or Undefined => "null",
            bool b => b ? "true" : "false",
            long l => l.ToString(CultureInfo.InvariantCulture),
            double d => d.ToString("R", CultureInfo.InvariantCulture),
            string s => JsonString(s),
            IList<object?> list => Wrap('[', list.Select(v => Json(v, indent, depth + 1)).ToList(), ']'),
            IEnumerable<KeyValuePair<string, object?>> map => Wrap('{', map.Select(p => $"{JsonString(p.Key)}: {Json(p.Value, indent, depth + 1)}").ToList(), '}'),
            _ => throw new ChatTemplateException($"tojson cannot write a {value.GetType().Name}"),
        };
    }

    /// <summary>JSON.stringify's string form: quotes, backslashes and control characters escaped, the rest as is.</summary>
    private static string JsonString(string text)
    {
        var json = new StringBuilder("\"");
        foreach (char c in text)
        {
            json.Append(c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                '\b' => "\\b",
                '\f' => "\\f",
                < ' ' => $"\\u{(int)c:x4}",
                _ => c.ToString(),
            });
        }
        return json.Append('"').ToString();
    }

    public static string TypeName(object? value) => value switch
    {
        null => "none",
        Undefined => "undefined",
        bool => "boolean",
        long => "integer",
        double => "float",
        string => "string",
        IList<object?> => "list",
        _ => "object",
    };
}

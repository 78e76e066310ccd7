namespace GraphFunctions.Service;

using System.Text.Json;

/// <summary>
/// Reads a JSON request body field by field, collecting one message per bad field (each naming
/// it), so a client learns every problem at once and nothing ever reaches the engine unchecked.
/// </summary>
public sealed class RequestFields
{
    private readonly JsonElement root;
    private readonly List<string> errors = [];

    private RequestFields(JsonElement root) => this.root = root;

    public IReadOnlyList<string> Errors => errors;

    public bool Valid => errors.Count == 0;

    public string ErrorMessage => string.Join("; ", errors);

    /// <summary>Parses a body; null with <paramref name="error"/> set when it is not a JSON object.</summary>
    public static RequestFields? Parse(string body, out string? error)
    {
        error = null;
        if (string.IsNullOrWhiteSpace(body))
        {
            error = "request body is empty: send a JSON object";
            return null;
        }
        try
        {
            using var document = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 16 });
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                error = $"request body must be a JSON object, not {Kind(document.RootElement)}";
                return null;
            }
            return new RequestFields(document.RootElement.Clone());
        }
        catch (JsonException e)
        {
            error = $"request body is not valid JSON: {e.Message}";
            return null;
        }
    }

    public void Fail(string message) => errors.Add(message);

    public bool Has(string name) => root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null;

    public string? Text(string name, bool required = false, int maxLength = int.MaxValue)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            if (required) errors.Add($"{name} is required");
            return null;
        }
        if (value.ValueKind != JsonValueKind.String)
        {
            errors.Add($"{name} must be a string, not {Kind(value)}");
            return null;
        }
        string text;
        try
        {
            text = value.GetString()!;
        }
        catch (InvalidOperationException)
        {
            errors.Add($"{name} contains an unpaired UTF-16 surrogate (a \\ud800-\\udfff escape without its pair)");
            return null;
        }
        if (text.Length > maxLength)
        {
            errors.Add($"{name} is too long ({text.Length} characters, at most {maxLength})");
            return null;
        }
        return text;
    }

    public int WholeNumber(string name, int fallback, int min, int max)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null) return fallback;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out long number))
        {
            errors.Add($"{name} must be an integer, not {Kind(value)}");
            return fallback;
        }
        if (number < min || number > max)
        {
            errors.Add($"{name} must be between {min} and {max}, got {number}");
            return fallback;
        }
        return (int)number;
    }

    public int? OptionalWholeNumber(string name, int min, int max)
    {
        if (!Has(name)) return null;
        int before = errors.Count;
        int value = WholeNumber(name, 0, min, max);
        return errors.Count == before ? value : null;
    }

    public double Number(string name, double fallback, double min, double max)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null) return fallback;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out double number) || !double.IsFinite(number))
        {
            errors.Add($"{name} must be a number, not {Kind(value)}");
            return fallback;
        }
        if (number < min || number > max)
        {
            errors.Add($"{name} must be between {min} and {max}, got {number}");
            return fallback;
        }
        return number;
    }

    public double? OptionalNumber(string name, double min, double max)
    {
        if (!Has(name)) return null;
        int before = errors.Count;
        double value = Number(name, 0, min, max);
        return errors.Count == before ? value : null;
    }

    public bool Flag(string name, bool fallback)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null) return fallback;
        if (value.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
        {
            errors.Add($"{name} must be true or false, not {Kind(value)}");
            return fallback;
        }
        return value.GetBoolean();
    }

    /// <summary>An array of objects, each read by its own <see cref="RequestFields"/> (errors prefixed with its index).</summary>
    public List<T> Objects<T>(string name, Func<RequestFields, T> read, bool required = false)
    {
        var items = new List<T>();
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            if (required) errors.Add($"{name} is required");
            return items;
        }
        if (value.ValueKind != JsonValueKind.Array)
        {
            errors.Add($"{name} must be an array, not {Kind(value)}");
            return items;
        }
        int index = 0;
        foreach (var element in value.EnumerateArray())
        {
            string at = $"{name}[{index++}]";
            if (element.ValueKind != JsonValueKind.Object)
            {
                errors.Add($"{at} must be an object, not {Kind(element)}");
                continue;
            }
            var fields = new RequestFields(element);
            var item = read(fields);
            errors.AddRange(fields.errors.Select(e => $"{at}.{e}"));
            if (fields.Valid) items.Add(item);
        }
        return items;
    }

    private static string Kind(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        _ => "null",
    };
}

namespace GraphFunctions.Api;

using System.Globalization;
using System.Text.Json;
using Attribution.Requests;

/// <summary>
/// Reads a JSON request body field by field as <see cref="RequestSchema"/> describes each one,
/// collecting one message per bad field (each naming it), so a client learns every problem at
/// once and nothing ever reaches the engine unchecked. Unknown fields are ignored, as the
/// reference server (pydantic) ignores them.
/// </summary>
public sealed class RequestFields
{
    private readonly JsonElement root;
    private readonly List<string> errors = [];

    private RequestFields(JsonElement root) => this.root = root;

    public IReadOnlyList<string> Errors => errors;

    /// <summary>The body itself, for a route whose fields are not request-schema fields.</summary>
    public JsonElement Body => root;

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

    public bool Has(RequestField field) => Has(field.Name);

    public bool Has(string name) => root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null;

    public string? Read(TextField field)
    {
        if (Missing(field, out var value)) return null;
        if (value.ValueKind != JsonValueKind.String)
        {
            errors.Add($"{field.Name} must be a string, not {Kind(value)}");
            return null;
        }
        string text;
        try
        {
            text = value.GetString()!;
        }
        catch (InvalidOperationException)
        {
            errors.Add($"{field.Name} contains an unpaired UTF-16 surrogate (a \\ud800-\\udfff escape without its pair)");
            return null;
        }
        if (text.Length > field.MaxLength)
        {
            errors.Add($"{field.Name} is too long ({text.Length} characters, at most {field.MaxLength})");
            return null;
        }
        return text;
    }

    /// <summary>The field's value, its default when absent (0 for a required field that is missing, with the error noted).</summary>
    public int Read(IntegerField field) => ReadOptional(field) ?? field.Default ?? 0;

    /// <summary>The value when present and valid; null when absent (then a required field notes its error).</summary>
    public int? ReadOptional(IntegerField field)
    {
        if (Missing(field, out var value)) return null;
        // JSON has one number type: 48 and 48.0 are the same integer (as pydantic and JavaScript read them).
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out double number) || number != Math.Floor(number) || !double.IsFinite(number))
        {
            errors.Add($"{field.Name} must be an integer, not {Kind(value)}");
            return null;
        }
        if (number < field.Minimum || number > field.Maximum)
        {
            errors.Add($"{field.Name} must be between {field.Minimum} and {field.Maximum}, got {number.ToString(CultureInfo.InvariantCulture)}");
            return null;
        }
        return (int)number;
    }

    public double Read(NumberField field) => ReadOptional(field) ?? field.Default ?? 0;

    public double? ReadOptional(NumberField field)
    {
        if (Missing(field, out var value)) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out double number) || !double.IsFinite(number))
        {
            errors.Add($"{field.Name} must be a finite number, not {Kind(value)}");
            return null;
        }
        if (number < field.Minimum || number > field.Maximum)
        {
            errors.Add(string.Create(CultureInfo.InvariantCulture, $"{field.Name} must be between {field.Minimum} and {field.Maximum}, got {number}"));
            return null;
        }
        return number;
    }

    public bool Read(FlagField field)
    {
        if (Missing(field, out var value)) return field.Default;
        if (value.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
        {
            errors.Add($"{field.Name} must be true or false, not {Kind(value)}");
            return field.Default;
        }
        return value.GetBoolean();
    }

    /// <summary>An array of objects, each read by its own <see cref="RequestFields"/> (errors prefixed with its index).</summary>
    public List<T> Read<T>(ObjectListField field, Func<RequestFields, T> read)
    {
        var items = new List<T>();
        if (Missing(field, out var value)) return items;
        if (value.ValueKind != JsonValueKind.Array)
        {
            errors.Add($"{field.Name} must be an array, not {Kind(value)}");
            return items;
        }
        int count = value.GetArrayLength();
        if (count > field.MaxItems)
        {
            errors.Add($"{field.Name} lists {count} items, at most {field.MaxItems}");
            return items;
        }
        int index = 0;
        foreach (var element in value.EnumerateArray())
        {
            string at = $"{field.Name}[{index++}]";
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

    /// <summary>Absent or null: true, noting the error when the field is required.</summary>
    private bool Missing(RequestField field, out JsonElement value)
    {
        if (root.TryGetProperty(field.Name, out value) && value.ValueKind != JsonValueKind.Null) return false;
        if (field.Required) errors.Add($"{field.Name} is required");
        return true;
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

namespace Attribution.Requests;

using System.Text.Json.Nodes;

/// <summary>
/// The request table as JSON Schema objects (the OpenAPI document's request bodies): each field's
/// type, default, bounds and description, and the required list — derived, never written by hand.
/// </summary>
public static class RequestJsonSchema
{
    /// <summary>The schema of an object with these fields; list items refer to <c>#/components/schemas/{ItemName}</c>.</summary>
    public static JsonObject For(IEnumerable<RequestField> fields)
    {
        var properties = new JsonObject();
        var required = new JsonArray();
        foreach (var field in fields)
        {
            properties[field.Name] = Property(field);
            if (field.Required) required.Add(field.Name);
        }
        var schema = new JsonObject { ["type"] = "object", ["properties"] = properties };
        if (required.Count > 0) schema["required"] = required;
        return schema;
    }

    private static JsonObject Property(RequestField field)
    {
        var property = new JsonObject { ["type"] = field.JsonType, ["description"] = field.Description };
        switch (field)
        {
            case IntegerField integer:
                if (integer.Default is int whole) property["default"] = whole;
                property["minimum"] = integer.Minimum;
                property["maximum"] = integer.Maximum;
                break;
            case NumberField number:
                if (number.Default is double real) property["default"] = real;
                if (double.IsFinite(number.Minimum)) property["minimum"] = number.Minimum;
                if (double.IsFinite(number.Maximum)) property["maximum"] = number.Maximum;
                break;
            case FlagField flag:
                property["default"] = flag.Default;
                break;
            case TextField text:
                property["maxLength"] = text.MaxLength;
                break;
            case ObjectListField list:
                property["items"] = new JsonObject { ["$ref"] = $"#/components/schemas/{list.ItemName}" };
                property["maxItems"] = list.MaxItems;
                break;
        }
        return property;
    }
}

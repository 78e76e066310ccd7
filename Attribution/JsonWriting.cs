namespace Attribution;

using System.Text.Json;

/// <summary>JSON fields the engine's writers share.</summary>
public static class JsonWriting
{
    /// <summary>
    /// A string array, written only when it has items: optional fields such as "warnings" stay absent
    /// otherwise, so answers keep the Neuronpedia graph server's shapes.
    /// </summary>
    public static void WriteStringsIfAny(this Utf8JsonWriter json, string name, IReadOnlyList<string> values)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count == 0) return;
        json.WriteStartArray(name);
        foreach (var value in values) json.WriteStringValue(value);
        json.WriteEndArray();
    }
}

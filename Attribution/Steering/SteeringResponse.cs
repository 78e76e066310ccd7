namespace Attribution.Steering;

using System.Text.Json;

/// <summary>
/// The /steer response of the seed: both generations as text (prompt + continuation, special
/// tokens skipped) and, per token after the BOS, [token, [[next, p], ...]] with an empty list
/// before the last prompt token.
/// </summary>
public static class SteeringResponse
{
    public static void Write(Utf8JsonWriter json, SteeringResult result, Func<IReadOnlyList<int>, string> decodeText, Func<int, string> decodeToken)
    {
        json.WriteStartObject();
        json.WriteString("DEFAULT_GENERATION", decodeText(result.Default.Tokens));
        json.WriteString("STEERED_GENERATION", decodeText(result.Steered.Tokens));
        WriteLogits(json, "DEFAULT_LOGITS_BY_TOKEN", result.Default, decodeToken);
        WriteLogits(json, "STEERED_LOGITS_BY_TOKEN", result.Steered, decodeToken);
        json.WriteEndObject();
    }

    private static void WriteLogits(Utf8JsonWriter json, string name, GenerationTrace trace, Func<int, string> decodeToken)
    {
        json.WriteStartArray(name);
        foreach (var position in trace.Positions)
        {
            json.WriteStartArray();
            json.WriteStringValue(decodeToken(position.Token));
            json.WriteStartArray();
            foreach (var (token, probability) in position.TopNext)
            {
                json.WriteStartArray();
                json.WriteStringValue(decodeToken(token));
                json.WriteNumberValue(probability);
                json.WriteEndArray();
            }
            json.WriteEndArray();
            json.WriteEndArray();
        }
        json.WriteEndArray();
    }
}

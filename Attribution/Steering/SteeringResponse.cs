namespace Attribution.Steering;

using System.Text.Json;

/// <summary>
/// The /steer response, as the reference server writes it and the Neuronpedia webapp validates it:
/// both generations as the concatenated text of their tokens (BOS and EOS text included, each
/// token decoded alone), and per token <c>{"token", "top_logits": [{"token", "prob"}, ...]}</c>,
/// with an empty list before the last prompt token. <c>"warnings"</c> (tokens the model never saw in
/// training) follows only when there are some, so the reference shape is otherwise unchanged.
/// </summary>
public static class SteeringResponse
{
    private static readonly JsonEncodedText TokenName = JsonEncodedText.Encode("token");
    private static readonly JsonEncodedText TopLogitsName = JsonEncodedText.Encode("top_logits");
    private static readonly JsonEncodedText ProbabilityName = JsonEncodedText.Encode("prob");

    public static void Write(Utf8JsonWriter json, SteeringResult result, Func<int, string> decodeToken, IReadOnlyList<string>? warnings = null)
    {
        json.WriteStartObject();
        json.WriteString("DEFAULT_GENERATION", Text(result.Default, decodeToken));
        json.WriteString("STEERED_GENERATION", Text(result.Steered, decodeToken));
        WriteLogits(json, "DEFAULT_LOGITS_BY_TOKEN", result.Default, decodeToken);
        WriteLogits(json, "STEERED_LOGITS_BY_TOKEN", result.Steered, decodeToken);
        json.WriteStringsIfAny("warnings", warnings ?? []);
        json.WriteEndObject();
    }

    private static string Text(GenerationTrace trace, Func<int, string> decodeToken) => string.Concat(trace.Tokens.Select(decodeToken));

    private static void WriteLogits(Utf8JsonWriter json, string name, GenerationTrace trace, Func<int, string> decodeToken)
    {
        json.WriteStartArray(name);
        foreach (var position in trace.Positions)
        {
            json.WriteStartObject();
            json.WriteString(TokenName, decodeToken(position.Token));
            json.WriteStartArray(TopLogitsName);
            foreach (var (token, probability) in position.TopNext)
            {
                json.WriteStartObject();
                json.WriteString(TokenName, decodeToken(token));
                json.WriteNumber(ProbabilityName, probability);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        json.WriteEndArray();
    }
}

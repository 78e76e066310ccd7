namespace Attribution.Tokenization;

using System.Text.Encodings.Web;
using System.Text.Json;

/// <summary>
/// Writes a word-level Hugging Face <c>tokenizer.json</c> for a fixed word list, spelled as
/// SentencePiece models (Gemma, Llama 2) spell text: spaces become "▁" and stay with the word that
/// follows, so " Paris" is one token and decodes back to " Paris".
/// </summary>
/// <remarks>
/// Ids: &lt;pad&gt; 0, &lt;eos&gt; 1, &lt;bos&gt; 2 (as <see cref="TinyTokenizerFactory"/>), &lt;unk&gt; 3, then the pieces
/// in the order given. The post-processor prepends &lt;bos&gt;; any word not listed encodes to &lt;unk&gt;.
/// </remarks>
public static class WordTokenizerFactory
{
    public const string UnknownToken = "<unk>";
    public const int UnknownId = 3;
    public const int FirstWordId = 4;
    public const char Space = '▁';

    /// <summary>The pieces a sentence's words become: the first as written, the others after "▁".</summary>
    public static IEnumerable<string> Pieces(string sentence) =>
        sentence.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select((word, i) => i == 0 ? word : Space + word);

    /// <summary>Number of ids for a vocabulary of <paramref name="pieceCount"/> pieces.</summary>
    public static int VocabSize(int pieceCount) => FirstWordId + pieceCount;

    public static void Write(string path, IReadOnlyList<string> pieces)
    {
        using var file = File.Create(path);
        using var json = new Utf8JsonWriter(file, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        json.WriteStartObject();
        json.WriteString("version", "1.0");
        json.WriteNull("truncation");
        json.WriteNull("padding");
        TinyTokenizerFactory.WriteAddedTokens(json);

        json.WriteStartObject("normalizer");
        WriteReplace(json, " ", Space.ToString());
        json.WriteEndObject();

        json.WriteStartObject("pre_tokenizer");
        json.WriteString("type", "Split");
        json.WriteStartObject("pattern");
        json.WriteString("String", Space.ToString());
        json.WriteEndObject();
        json.WriteString("behavior", "MergedWithNext");
        json.WriteBoolean("invert", false);
        json.WriteEndObject();

        TinyTokenizerFactory.WriteBosTemplate(json);

        json.WriteStartObject("decoder");
        json.WriteString("type", "Sequence");
        json.WriteStartArray("decoders");
        json.WriteStartObject();
        WriteReplace(json, Space.ToString(), " ");
        json.WriteEndObject();
        json.WriteStartObject();
        json.WriteString("type", "Fuse");
        json.WriteEndObject();
        json.WriteEndArray();
        json.WriteEndObject();

        json.WriteStartObject("model");
        json.WriteString("type", "WordLevel");
        json.WriteStartObject("vocab");
        json.WriteNumber(TinyTokenizerFactory.PadToken, TinyTokenizerFactory.PadId);
        json.WriteNumber(TinyTokenizerFactory.EosToken, TinyTokenizerFactory.EosId);
        json.WriteNumber(TinyTokenizerFactory.BosToken, TinyTokenizerFactory.BosId);
        json.WriteNumber(UnknownToken, UnknownId);
        for (int i = 0; i < pieces.Count; i++) json.WriteNumber(pieces[i], FirstWordId + i);
        json.WriteEndObject();
        json.WriteString("unk_token", UnknownToken);
        json.WriteEndObject();
        json.WriteEndObject();
    }

    private static void WriteReplace(Utf8JsonWriter json, string from, string to)
    {
        json.WriteString("type", "Replace");
        json.WriteStartObject("pattern");
        json.WriteString("String", from);
        json.WriteEndObject();
        json.WriteString("content", to);
    }
}

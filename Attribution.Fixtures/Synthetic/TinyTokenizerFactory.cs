namespace Attribution.Synthetic;

using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

/// <summary>
/// Writes a small but real Hugging Face <c>tokenizer.json</c>: a byte-level BPE in the style of
/// GPT-2 / Llama 3, with fixed merges for tests, or with merges learned from the demo corpus for
/// the demo model.
/// </summary>
/// <remarks>
/// Vocabulary, in id order:
/// 1. the special tokens <c>&lt;pad&gt;</c> = 0, <c>&lt;eos&gt;</c> = 1, <c>&lt;bos&gt;</c> = 2;
/// 2. one token per byte value (id = <see cref="FirstByteId"/> + byte), so any text encodes;
/// 3. one token per merge, in merge order: a few frequent English pieces ("Hello", " world",
///    " the") and whole multi-byte characters ("é", "日", "本", "😀").
/// Like Gemma's tokenizer, the post-processor prepends <c>&lt;bos&gt;</c> when special tokens are
/// added, so the file exercises the same paths as a real model's tokenizer.
/// </remarks>
public static class TinyTokenizerFactory
{
    public const int PadId = 0;
    public const int EosId = 1;
    public const int BosId = 2;
    public const int FirstByteId = 3;

    public const string PadToken = "<pad>";
    public const string EosToken = "<eos>";
    public const string BosToken = "<bos>";

    private static readonly string[] SpecialTokens = [PadToken, EosToken, BosToken];

    /// <summary>Merges of readable text pieces, in rank order; each result must be new.</summary>
    /// <remarks>Ordered so that BPE reaches the whole words: e.g. "He" + "ll" before "Hell" + "o".</remarks>
    private static readonly (string Left, string Right)[] TextMerges =
    [
        (" ", "t"), ("h", "e"), (" t", "he"),
        ("H", "e"), ("l", "l"), ("He", "ll"), ("Hell", "o"),
        (" ", "w"), ("o", "r"), ("l", "d"), (" w", "or"), (" wor", "ld"),
        (" ", "a"), ("i", "n"), ("in", "g"), (" ", "o"), (" o", "f"), (" a", "n"), (" an", "d"),
        ("e", "r"), ("o", "n"), (" ", "c"), (" ", "s"), ("T", "he"), (" ", "i"), (" i", "s"),
    ];

    /// <summary>Characters whose UTF-8 bytes are merged into one token, left to right.</summary>
    private static readonly string[] WholeCharacters = ["é", "日", "本", "😀"];

    private static readonly Lazy<Vocabulary> Built = new(Build);

    /// <summary>Number of ids: one past the highest (≤ 512, so tiny models can embed them all).</summary>
    public static int VocabSize => Built.Value.Pieces.Count;

    /// <summary>Id of the token for one byte value.</summary>
    public static int ByteId(byte value) => FirstByteId + value;

    /// <summary>Id of the token that spells exactly this text, or null when there is none.</summary>
    public static int? PieceId(string text)
    {
        var piece = ByteLevelAlphabet.Spell(Encoding.UTF8.GetBytes(text));
        return Built.Value.IdOf.TryGetValue(piece, out var id) ? id : null;
    }

    /// <summary>Writes the tokenizer.json to a file (created or overwritten).</summary>
    public static void Write(string path)
    {
        using var file = File.Create(path);
        Write(file);
    }

    /// <summary>Writes the tokenizer.json as UTF-8 to a stream.</summary>
    public static void Write(Stream stream) => Write(stream, Built.Value);

    /// <summary>
    /// Writes a tokenizer.json of the same layout (specials, bytes, merges) with merges learned from a
    /// corpus by <see cref="BpeTrainer"/>, in byte-level spelling; returns its vocabulary size.
    /// </summary>
    public static int WriteLearned(string path, IReadOnlyList<(string Left, string Right)> merges)
    {
        var vocabulary = BaseVocabulary();
        foreach (var (left, right) in merges)
        {
            vocabulary.Merge(left, right);
        }

        using var file = File.Create(path);
        Write(file, vocabulary);
        return vocabulary.Pieces.Count;
    }

    private static void Write(Stream stream, Vocabulary vocabulary)
    {
        // Relaxed escaping keeps the byte-level pieces ('Ġ', 'Ã') readable in the file.
        var options = new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        using var json = new Utf8JsonWriter(stream, options);

        json.WriteStartObject();
        json.WriteString("version", "1.0");
        json.WriteNull("truncation");
        json.WriteNull("padding");
        WriteAddedTokens(json);
        json.WriteNull("normalizer");
        WriteByteLevel(json, "pre_tokenizer");
        WriteBosTemplate(json);
        WriteByteLevel(json, "decoder");
        WriteModel(json, vocabulary);
        json.WriteEndObject();
    }

    /// <summary>Builds the vocabulary: specials, the 256 bytes, then one piece per merge.</summary>
    private static Vocabulary Build()
    {
        var vocabulary = BaseVocabulary();
        foreach (var (left, right) in TextMerges)
        {
            vocabulary.Merge(Spell(left), Spell(right));
        }

        foreach (var character in WholeCharacters)
        {
            // Merge the character's bytes one at a time: b0+b1, then (b0 b1)+b2, ...
            var bytes = Encoding.UTF8.GetBytes(character);
            for (var end = 1; end < bytes.Length; end++)
            {
                vocabulary.Merge(ByteLevelAlphabet.Spell(bytes.AsSpan(0, end)), ByteLevelAlphabet.Spell(bytes.AsSpan(end, 1)));
            }
        }

        return vocabulary;
    }

    /// <summary>The ids every byte-level tokenizer here shares: the specials, then one token per byte value.</summary>
    private static Vocabulary BaseVocabulary()
    {
        var vocabulary = new Vocabulary();
        foreach (var special in SpecialTokens)
        {
            vocabulary.Add(special);
        }

        for (var b = 0; b < 256; b++)
        {
            vocabulary.Add(ByteLevelAlphabet.Spell([(byte)b]));
        }

        return vocabulary;
    }

    private static string Spell(string text) => ByteLevelAlphabet.Spell(Encoding.UTF8.GetBytes(text));

    /// <summary>The special tokens &lt;pad&gt;, &lt;eos&gt;, &lt;bos&gt; as ids 0–2.</summary>
    private static void WriteAddedTokens(Utf8JsonWriter json)
    {
        json.WriteStartArray("added_tokens");
        for (var id = 0; id < SpecialTokens.Length; id++)
        {
            json.WriteStartObject();
            json.WriteNumber("id", id);
            json.WriteString("content", SpecialTokens[id]);
            json.WriteBoolean("single_word", false);
            json.WriteBoolean("lstrip", false);
            json.WriteBoolean("rstrip", false);
            json.WriteBoolean("normalized", false);
            json.WriteBoolean("special", true);
            json.WriteEndObject();
        }

        json.WriteEndArray();
    }

    /// <summary>GPT-2's byte-level step: split on its word regex, then spell bytes as characters.</summary>
    private static void WriteByteLevel(Utf8JsonWriter json, string property)
    {
        json.WriteStartObject(property);
        json.WriteString("type", "ByteLevel");
        json.WriteBoolean("add_prefix_space", false);
        json.WriteBoolean("trim_offsets", true);
        json.WriteBoolean("use_regex", true);
        json.WriteEndObject();
    }

    /// <summary>"&lt;bos&gt; $A" for one sequence (and "&lt;bos&gt; $A $B" for a pair), as Gemma's tokenizer does.</summary>
    private static void WriteBosTemplate(Utf8JsonWriter json)
    {
        json.WriteStartObject("post_processor");
        json.WriteString("type", "TemplateProcessing");
        json.WriteStartArray("single");
        WriteTemplateItem(json, "SpecialToken", BosToken, 0);
        WriteTemplateItem(json, "Sequence", "A", 0);
        json.WriteEndArray();
        json.WriteStartArray("pair");
        WriteTemplateItem(json, "SpecialToken", BosToken, 0);
        WriteTemplateItem(json, "Sequence", "A", 0);
        WriteTemplateItem(json, "Sequence", "B", 1);
        json.WriteEndArray();
        json.WriteStartObject("special_tokens");
        json.WriteStartObject(BosToken);
        json.WriteString("id", BosToken);
        json.WriteStartArray("ids");
        json.WriteNumberValue(BosId);
        json.WriteEndArray();
        json.WriteStartArray("tokens");
        json.WriteStringValue(BosToken);
        json.WriteEndArray();
        json.WriteEndObject();
        json.WriteEndObject();
        json.WriteEndObject();
    }

    private static void WriteTemplateItem(Utf8JsonWriter json, string kind, string id, int typeId)
    {
        json.WriteStartObject();
        json.WriteStartObject(kind);
        json.WriteString("id", id);
        json.WriteNumber("type_id", typeId);
        json.WriteEndObject();
        json.WriteEndObject();
    }

    private static void WriteModel(Utf8JsonWriter json, Vocabulary vocabulary)
    {
        json.WriteStartObject("model");
        json.WriteString("type", "BPE");
        json.WriteNull("dropout");
        json.WriteNull("unk_token");
        json.WriteNull("continuing_subword_prefix");
        json.WriteNull("end_of_word_suffix");
        json.WriteBoolean("fuse_unk", false);
        json.WriteBoolean("byte_fallback", false);
        json.WriteBoolean("ignore_merges", false);
        json.WriteStartObject("vocab");
        for (var id = 0; id < vocabulary.Pieces.Count; id++)
        {
            json.WriteNumber(vocabulary.Pieces[id], id);
        }

        json.WriteEndObject();
        json.WriteStartArray("merges");
        foreach (var (left, right) in vocabulary.Merges)
        {
            json.WriteStartArray();
            json.WriteStringValue(left);
            json.WriteStringValue(right);
            json.WriteEndArray();
        }

        json.WriteEndArray();
        json.WriteEndObject();
    }

    /// <summary>Pieces in id order and the merges that created the later ones.</summary>
    private sealed class Vocabulary
    {
        public List<string> Pieces { get; } = [];

        public Dictionary<string, int> IdOf { get; } = new(StringComparer.Ordinal);

        public List<(string Left, string Right)> Merges { get; } = [];

        public void Add(string piece)
        {
            if (!IdOf.TryAdd(piece, Pieces.Count))
            {
                throw new InvalidOperationException($"A byte-level tokenizer lists the piece '{piece}' twice.");
            }

            Pieces.Add(piece);
        }

        /// <summary>A merge is valid only when both parts already exist and the result is new.</summary>
        public void Merge(string left, string right)
        {
            if (!IdOf.ContainsKey(left) || !IdOf.ContainsKey(right))
            {
                throw new InvalidOperationException($"A byte-level tokenizer merges '{left}' + '{right}' before both parts exist.");
            }

            Add(left + right);
            Merges.Add((left, right));
        }
    }
}

namespace Attribution.Tests.Tokenization;

using System.Text;
using System.Text.Json;
using Attribution.Demo;
using Attribution.Loading;
using Attribution.Synthetic;
using Attribution.Tests.Support;
using Attribution.Tokenization;

/// <summary>
/// The bundled demo's tokenizer: a byte-level BPE learned on the demo corpus, so any text the
/// service is sent encodes without an unknown token and decodes back to itself, while every word
/// the model was trained on is one token.
/// </summary>
public sealed class DemoTokenizerTests : IDisposable
{
    private static string ShippedTokenizer => Path.Combine(BundledModel.Folder, BundledModel.ModelFolder, "tokenizer.json");

    private readonly TextTokenizer tokenizer = TextTokenizer.FromModelDirectory(Path.Combine(BundledModel.Folder, BundledModel.ModelFolder));

    public void Dispose() => tokenizer.Dispose();

    /// <summary>Strings a user may type or paste: whitespace at either end, control characters, every script.</summary>
    public static TheoryData<string> HostileStrings => new()
    {
        "The capital of France is ",
        "The capital of France is\n",
        "  leading spaces",
        "\ttabs\tand\r\nCRLF\r\n",
        "\n\n\n",
        " ",
        "NUL \0 inside and \u0001\u007f controls",
        "emoji 😀 👩‍👩‍👧 🇫🇷 and skin tones 👍🏽",
        "日本語のテキスト、中文，한국어",
        "right to left: שלום עולם, مرحبا بالعالم",
        "combining marks: e\u0301 a\u0308 o\u0302\u0323 Z\u0335\u0321\u0358",
        "zero width: a\u200Bb\u200Dc\uFEFF and U+FFFF \uFFFF",
        "<unk> <pad> </s> look like tokens",
        "3+4=",
        "The cat sat on the",
        string.Concat(Enumerable.Repeat("Paris 日本 😀 e\u0301 \t\n", 10_240 / 16)),
    };

    [Theory]
    [MemberData(nameof(HostileStrings))]
    public void Any_text_round_trips_with_ids_inside_the_vocabulary(string text)
    {
        var ids = tokenizer.Encode(text);

        Assert.Equal(text, tokenizer.Decode(ids));
        Assert.All(ids, id => Assert.InRange(id, 0, tokenizer.VocabSize - 1));
        Assert.Equal(Encoding.UTF8.GetByteCount(text) > 0, ids.Length > 0);
    }

    [Theory]
    [MemberData(nameof(HostileStrings))]
    public void A_prompt_with_its_bos_written_out_tokenizes_back_to_the_same_positions(string text)
    {
        // The Neuronpedia webapp sends a graph's metadata.prompt (the decoded tokens, BOS included) back to /steer.
        var ids = tokenizer.EncodePrompt(text);

        Assert.Equal(ids, tokenizer.EncodePrompt(tokenizer.Decode(ids)));
    }

    [Fact]
    public void The_vocabulary_has_no_unknown_token()
    {
        using var file = JsonDocument.Parse(File.ReadAllText(ShippedTokenizer));
        var model = file.RootElement.GetProperty("model");

        Assert.Equal("BPE", model.GetProperty("type").GetString());
        Assert.Equal(JsonValueKind.Null, model.GetProperty("unk_token").ValueKind);
        Assert.DoesNotContain(model.GetProperty("vocab").EnumerateObject(), piece => piece.Name.Contains("unk", StringComparison.OrdinalIgnoreCase));
    }

    [Theory]
    [InlineData("The capital of France is ", " ")]
    [InlineData("The capital of France is\n", "\n")]
    [InlineData("1 2 ", " ")]
    public void Trailing_whitespace_is_its_own_token(string text, string whitespace)
    {
        var ids = tokenizer.Encode(text);

        Assert.Equal(whitespace, tokenizer.DecodeToken(ids[^1]));
        Assert.Equal(tokenizer.Encode(text[..^whitespace.Length]), ids[..^1]);
    }

    [Fact]
    public void Every_word_of_the_corpus_is_one_token()
    {
        var words = DemoCorpus.All().SelectMany(e => BpeTrainer.Words(e.Example.Text)).Distinct(StringComparer.Ordinal).ToList();

        Assert.All(words, word => Assert.True(tokenizer.Encode(word).Length == 1, $"'{word}' is {tokenizer.Encode(word).Length} tokens"));
        Assert.Equal([tokenizer.BosId, .. words.Take(3).Select(w => tokenizer.Encode(w).Single())], tokenizer.EncodePrompt(string.Concat(words.Take(3))));
    }

    [Fact]
    public void The_shipped_training_vocabulary_is_exactly_the_tokens_of_the_training_sentences()
    {
        var vocabulary = TrainingVocabulary.LoadFrom(Path.Combine(BundledModel.Folder, BundledModel.ModelFolder));
        var trained = DemoCorpus.Training().SelectMany(e => tokenizer.EncodePrompt(e.Text)).ToHashSet();

        Assert.NotNull(vocabulary);
        Assert.Equal(trained.Count, vocabulary.Count);
        Assert.All(trained, id => Assert.True(vocabulary.Saw(id), $"token {id} '{tokenizer.DecodeToken(id)}' is missing"));
        Assert.False(vocabulary.Saw(tokenizer.Encode("\n").Single()));
    }

    [Fact]
    public void The_shipped_tokenizer_is_the_one_learned_from_the_corpus()
    {
        using var folder = new TempFolder("demo-tokenizer");
        int vocabSize = TinyTokenizerFactory.WriteLearned(folder["tokenizer.json"], BpeTrainer.Learn(DemoCorpus.All().Select(e => e.Example.Text)));

        Assert.Equal(File.ReadAllBytes(ShippedTokenizer), File.ReadAllBytes(folder["tokenizer.json"]));
        Assert.Equal(vocabSize, tokenizer.VocabSize);
    }
}

/// <summary>The BPE learner on corpora small enough to work by hand.</summary>
public sealed class BpeTrainerTests
{
    [Fact]
    public void Merges_the_most_frequent_pair_first_and_stops_below_the_minimum_count()
    {
        // Words "ab", " ab" twice, "abc": (a,b) occurs 4 times, then (Ġ,ab) twice, then (ab,c) once.
        var merges = BpeTrainer.Learn(["ab ab ab", "abc"], minCount: 2);

        Assert.Equal([("a", "b"), ("Ġ", "ab")], merges);
        Assert.Equal([("a", "b"), ("Ġ", "ab"), ("ab", "c")], BpeTrainer.Learn(["ab ab ab", "abc"]));
    }

    [Fact]
    public void Ties_are_broken_by_spelling_so_learning_is_deterministic()
    {
        Assert.Equal([("b", "a"), ("x", "y")], BpeTrainer.Learn(["ba", "xy"]));
        Assert.Equal([("b", "a"), ("x", "y")], BpeTrainer.Learn(["xy", "ba"]));
    }

    [Fact]
    public void Words_split_as_the_byte_level_pre_tokenizer_splits_them()
    {
        Assert.Equal(["The", " capital", " of", " l", "'", "Italie", " is", " "], BpeTrainer.Words("The capital of l'Italie is "));
        Assert.Equal(["3", " +", " 4", " =", "\n"], BpeTrainer.Words("3 + 4 =\n"));
    }
}

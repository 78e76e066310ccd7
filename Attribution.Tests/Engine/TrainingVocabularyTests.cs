namespace Attribution.Tests.Engine;

using System.Text.Json;
using Attribution.Loading;
using Attribution.Synthetic;
using Attribution.Tests.Support;

/// <summary>
/// A model folder's training_tokens.json (docs/api.md, "Warnings"): prompt tokens outside it are
/// named in warnings, grouped and bounded; a folder without the file never warns. The folders
/// here are written by the test, so nothing depends on the bundled demo.
/// </summary>
public sealed class TrainingVocabularyTests
{
    private static void WriteTrainingTokens(string modelFolder, IEnumerable<int> seen) =>
        File.WriteAllText(Path.Combine(modelFolder, TrainingVocabulary.FileName),
            JsonSerializer.Serialize(new { description = "hand-written for a test", seen_token_ids = seen }));

    private static int Piece(string text) => TinyTokenizerFactory.PieceId(text) ?? throw new InvalidOperationException($"no piece '{text}'");

    [Fact]
    public async Task A_loaded_model_names_the_prompt_tokens_its_training_text_never_held()
    {
        using var folder = new TempFolder();
        var (modelFolder, transcoders) = TinyRandomModelWriter.EnsureWritten(folder["tiny"]);
        WriteTrainingTokens(modelFolder, [TinyTokenizerFactory.BosId, Piece("The"), Piece(" is")]);
        using var model = await LoadedModel.LoadAsync(new ModelSettings { ModelId = "test/toy", ModelPath = modelFolder, TranscoderSet = transcoders }, hub: null);

        var tokens = model.Tokenize("The cat is a cat\n");
        // The tiny tokenizer's pieces (TinyTokenizerFactory): " cat" is " c" + "a" + "t".
        Assert.Equal(["<bos>", "The", " c", "a", "t", " is", " a", " c", "a", "t", "\n"], tokens.Select(model.Tokenizer.DecodeToken));

        var unseen = model.UnseenIn(tokens);
        Assert.Equal([2, 3, 4, 6, 7, 8, 9, 10], unseen.Positions);
        const string Meaning = "never occurred in test/toy's training text: the model's predictions from there on are not meaningful";
        // One warning per stretch of adjacent unseen tokens, its text decoded whole.
        Assert.Equal([$"' cat' (positions 2–4) {Meaning}", $"' a cat\n' (positions 6–10) {Meaning}"], unseen.Warnings);

        Assert.False(model.UnseenIn(model.Tokenize("The is")).Any);
        Assert.Empty(model.UnseenIn(model.Tokenize("The is")).Warnings);
    }

    [Fact]
    public async Task A_model_without_the_file_never_warns()
    {
        using var folder = new TempFolder();
        var (modelFolder, transcoders) = TinyRandomModelWriter.EnsureWritten(folder["tiny"]);
        Assert.False(File.Exists(Path.Combine(modelFolder, TrainingVocabulary.FileName)));
        using var model = await LoadedModel.LoadAsync(new ModelSettings { ModelId = "test/toy", ModelPath = modelFolder, TranscoderSet = transcoders }, hub: null);

        Assert.Null(model.Training);
        var unseen = model.UnseenIn(model.Tokenize("Anything at all: 日本 😀\n"));
        Assert.Empty(unseen.Positions);
        Assert.Empty(unseen.Warnings);
    }

    [Fact]
    public void Warnings_name_twenty_texts_and_five_places_each_then_count_the_rest()
    {
        using var folder = new TempFolder();
        WriteTrainingTokens(folder.Path, [0]);
        var vocabulary = TrainingVocabulary.LoadFrom(folder.Path)!;
        Assert.Equal("hand-written for a test", vocabulary.Description);
        static string Decode(IReadOnlyList<int> ids) => string.Concat(ids.Select(id => $"t{id}"));

        // Token 0 is seen and separates the stretches: "t1" in seven places, "t1t2" once, then 24 other texts (t100 … t123).
        int[] tokens = [.. Enumerable.Repeat<int[]>([0, 1], 7).SelectMany(pair => pair), 0, 1, 2, .. Enumerable.Range(100, 24).SelectMany(id => new[] { 0, id })];
        var unseen = vocabulary.Find(tokens, Decode, "m");

        Assert.Equal(tokens.Count(id => id != 0), unseen.Positions.Count);
        Assert.Equal(UnseenTokens.NamedTexts + 1, unseen.Warnings.Count);
        Assert.StartsWith("'t1' (positions 1, 3, 5, 7, 9 and 2 more) never occurred in m's training text", unseen.Warnings[0], StringComparison.Ordinal);
        Assert.StartsWith("'t1t2' (positions 15–16) ", unseen.Warnings[1], StringComparison.Ordinal);
        Assert.StartsWith("'t100' (position 18) ", unseen.Warnings[2], StringComparison.Ordinal);
        Assert.StartsWith("'t117' (position 52) ", unseen.Warnings[^2], StringComparison.Ordinal);
        Assert.Equal("and 6 more stretches of tokens that never occurred in m's training text", unseen.Warnings[^1]);

        int[] justOneMore = [.. Enumerable.Range(1, UnseenTokens.NamedTexts + 1).SelectMany(id => new[] { 0, id })];
        Assert.Equal("and 1 more stretch of tokens that never occurred in m's training text", vocabulary.Find(justOneMore, Decode, "m").Warnings[^1]);
    }

    [Theory]
    [InlineData("""{"description": "no list"}""")]
    [InlineData("""{"seen_token_ids": [1, "two"]}""")]
    [InlineData("""{"seen_token_ids": [1, -2]}""")]
    [InlineData("""{"seen_token_ids": [1.5]}""")]
    public void A_malformed_file_is_refused_naming_it(string content)
    {
        using var folder = new TempFolder();
        File.WriteAllText(Path.Combine(folder.Path, TrainingVocabulary.FileName), content);
        var refusal = Assert.Throws<InvalidDataException>(() => TrainingVocabulary.LoadFrom(folder.Path));
        Assert.Contains(TrainingVocabulary.FileName, refusal.Message, StringComparison.Ordinal);
    }
}

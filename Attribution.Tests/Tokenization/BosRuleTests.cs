namespace Attribution.Tests.Tokenization;

using System.Text.Json.Nodes;
using Attribution.Synthetic;
using Attribution.Tokenization;

/// <summary>docs/algorithm.md §2: a BOS is prepended unless the prompt already starts with a special token.</summary>
public sealed class BosRuleTests(TinyTokenizerFile file) : IClassFixture<TinyTokenizerFile>
{
    private const int Bos = TinyTokenizerFactory.BosId;
    private const int Eos = TinyTokenizerFactory.EosId;

    [Fact]
    public void Bos_is_prepended_when_the_prompt_has_none()
    {
        using var tokenizer = new TextTokenizer(file.Path);

        Assert.Equal([Bos, .. tokenizer.Encode("Hello world")], tokenizer.EncodePrompt("Hello world"));
    }

    [Fact]
    public void Bos_is_not_doubled_when_the_prompt_starts_with_the_bos_text()
    {
        using var tokenizer = new TextTokenizer(file.Path);

        Assert.Equal([Bos, .. tokenizer.Encode("Hello")], tokenizer.EncodePrompt("<bos>Hello"));
    }

    [Fact]
    public void Any_leading_special_token_counts_as_the_start()
    {
        using var tokenizer = new TextTokenizer(file.Path);

        Assert.Equal([Eos, .. tokenizer.Encode("Hello")], tokenizer.EncodePrompt("<eos>Hello"));
    }

    [Fact]
    public void Special_text_after_the_start_does_not_prevent_the_bos()
    {
        using var tokenizer = new TextTokenizer(file.Path);

        Assert.Equal([Bos, .. tokenizer.Encode(" "), Bos], tokenizer.EncodePrompt(" <bos>"));
    }

    [Fact]
    public void An_empty_prompt_is_the_bos_alone()
    {
        using var tokenizer = new TextTokenizer(file.Path);

        Assert.Equal([Bos], tokenizer.EncodePrompt(""));
    }

    [Fact]
    public void The_model_configs_bos_id_wins_over_the_post_processor()
    {
        using var tokenizer = new TextTokenizer(file.Path, new TokenizerSettings { BosTokenId = Eos, EosTokenIds = [Eos, 0] });

        Assert.Equal(Eos, tokenizer.BosId);
        Assert.Equal([Eos, 0], tokenizer.EosIds);
        Assert.Equal([Eos, .. tokenizer.Encode("Hi")], tokenizer.EncodePrompt("Hi"));
    }

    [Fact]
    public void Without_a_post_processor_the_bos_is_the_special_token_named_like_one()
    {
        // Qwen-style: the post-processor adds nothing, yet a special token is named as a BOS.
        var path = file.WriteVariant("no-post-processor", json => json["post_processor"] = null);
        using var tokenizer = new TextTokenizer(path);

        Assert.Equal(Bos, tokenizer.BosId);
        Assert.Equal([Bos, .. tokenizer.Encode("Hi")], tokenizer.EncodePrompt("Hi"));
    }

    [Fact]
    public void A_tokenizer_without_any_bos_candidate_asks_for_the_configs_id()
    {
        var path = file.WriteVariant("no-bos", json =>
        {
            json["post_processor"] = null;
            RenameToken(json, "<bos>", "<start>");
        });

        var error = Assert.Throws<InvalidOperationException>(() => new TextTokenizer(path));
        Assert.Contains("bos_token_id", error.Message, StringComparison.Ordinal);

        using var configured = new TextTokenizer(path, new TokenizerSettings { BosTokenId = Bos });
        Assert.Equal([Bos, .. configured.Encode("Hi")], configured.EncodePrompt("Hi"));
        Assert.Equal("<start>Hi", configured.Decode(configured.EncodePrompt("Hi")));
    }

    [Fact]
    public void Config_ids_outside_the_vocabulary_are_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new TextTokenizer(file.Path, new TokenizerSettings { BosTokenId = 100_000 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TextTokenizer(file.Path, new TokenizerSettings { EosTokenIds = [-1] }));
    }

    private static void RenameToken(JsonObject json, string from, string to)
    {
        foreach (var token in json["added_tokens"]!.AsArray())
        {
            if ((string?)token!["content"] == from)
            {
                token["content"] = to;
            }
        }

        var vocab = json["model"]!["vocab"]!.AsObject();
        var id = vocab[from]!.GetValue<int>();
        vocab.Remove(from);
        vocab[to] = id;
    }
}

namespace Attribution.Tests.Tokenization;

using Attribution.Tokenization;

/// <summary>BOS/EOS ids from config.json and the clean-up flag from tokenizer_config.json.</summary>
public sealed class TokenizerSettingsTests(TinyTokenizerFile file) : IClassFixture<TinyTokenizerFile>
{
    [Fact]
    public void Reads_single_bos_and_eos_ids()
    {
        var settings = TokenizerSettings.FromJson("""{"bos_token_id": 128000, "eos_token_id": 128001}""", null);

        Assert.Equal(128000, settings.BosTokenId);
        Assert.Equal([128001], settings.EosTokenIds);
        Assert.False(settings.CleanUpTokenizationSpaces);
    }

    [Fact]
    public void Reads_an_eos_list_and_a_null_bos()
    {
        var settings = TokenizerSettings.FromJson("""{"bos_token_id": null, "eos_token_id": [128001, 128008, 128009]}""", null);

        Assert.Null(settings.BosTokenId);
        Assert.Equal([128001, 128008, 128009], settings.EosTokenIds);
    }

    [Fact]
    public void Falls_back_to_the_text_config_of_a_multimodal_config()
    {
        var settings = TokenizerSettings.FromJson("""{"eos_token_id": [1, 106], "text_config": {"bos_token_id": 2, "eos_token_id": 1}}""", null);

        Assert.Equal(2, settings.BosTokenId);
        Assert.Equal([1, 106], settings.EosTokenIds);
    }

    [Fact]
    public void Reads_the_clean_up_flag_which_defaults_to_false()
    {
        Assert.True(TokenizerSettings.FromJson(null, """{"clean_up_tokenization_spaces": true}""").CleanUpTokenizationSpaces);
        Assert.False(TokenizerSettings.FromJson(null, """{"clean_up_tokenization_spaces": false}""").CleanUpTokenizationSpaces);
        Assert.False(TokenizerSettings.FromJson(null, "{}").CleanUpTokenizationSpaces);
    }

    [Fact]
    public void A_model_folder_without_configs_gives_no_settings()
    {
        var folder = Directory.CreateTempSubdirectory("no-configs-").FullName;
        try
        {
            Assert.Equal(TokenizerSettings.None, TokenizerSettings.FromModelDirectory(folder));
        }
        finally
        {
            Directory.Delete(folder);
        }
    }

    [Fact]
    public void A_model_folder_is_read_whole()
    {
        var folder = Directory.CreateTempSubdirectory("model-").FullName;
        try
        {
            File.Copy(file.Path, Path.Combine(folder, "tokenizer.json"));
            File.WriteAllText(Path.Combine(folder, "config.json"), """{"bos_token_id": 1, "eos_token_id": 0}""");
            File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """{"clean_up_tokenization_spaces": true}""");

            using var tokenizer = TextTokenizer.FromModelDirectory(folder);

            Assert.Equal(1, tokenizer.BosId);
            Assert.Equal([0], tokenizer.EosIds);
            Assert.Equal("Hello, world.", tokenizer.Decode(tokenizer.Encode("Hello , world .")));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void Clean_up_removes_spaces_before_punctuation_and_contractions_as_transformers_does()
    {
        using var tokenizer = new TextTokenizer(file.Path, new TokenizerSettings { CleanUpTokenizationSpaces = true });

        var decoded = tokenizer.Decode(tokenizer.Encode("Yes , I do n't know . Is it ? It 's fine ! I 'm sure they 're , we 've ' won"));

        Assert.Equal("Yes, I don't know. Is it? It's fine! I'm sure they're, we've'won", decoded);
        Assert.Equal(",", tokenizer.Decode(tokenizer.Encode(" ,")));
    }
}

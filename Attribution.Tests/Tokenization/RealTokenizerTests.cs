namespace Attribution.Tests.Tokenization;

using Attribution.Tokenization;
using NativeTokenizer = Tokenizers.DotNet.Tokenizer;

/// <summary>
/// The wrapper on the real tokenizers of the models the service runs. Expected ids are the
/// published ones for special tokens (Llama 3 &lt;|begin_of_text|&gt; = 128000, Gemma &lt;bos&gt; = 2,
/// Qwen &lt;|endoftext|&gt; = 151643, &lt;|im_start|&gt; = 151644) and, for words, the ids that each
/// tokenizer.json's own vocabulary gives the expected pieces (read independently of the code
/// under test); transformers.js (@lenml/tokenizers) encodes these prompts to the same ids.
/// </summary>
[Collection(RealTokenizerGroup.Name)]
public sealed class RealTokenizerTests(RealTokenizers tokenizers)
{
    [Theory]
    [InlineData("llama3", 9906, 1917, "Ġworld")]
    [InlineData("qwen3", 9707, 1879, "Ġworld")]
    [InlineData("gemma3", 9259, 1902, "▁world")]
    public void Hello_world_is_two_tokens_whose_ids_are_the_vocab_entries_of_its_pieces(string model, int hello, int world, string worldPiece)
    {
        var tokenizer = tokenizers[model];

        var ids = tokenizer.Encode("Hello world");

        Assert.Equal([hello, world], ids);
        Assert.Equal(hello, tokenizers.VocabId(model, "Hello"));
        Assert.Equal(world, tokenizers.VocabId(model, worldPiece));
        Assert.Equal(["Hello", " world"], ids.Select(tokenizer.DecodeToken));
    }

    [Theory]
    [InlineData("llama3", 128256)]
    [InlineData("qwen3", 151669)]
    [InlineData("gemma3", 262145)]
    public void Vocabulary_size_counts_model_pieces_and_added_tokens(string model, int size) =>
        Assert.Equal(size, tokenizers[model].VocabSize);

    [Fact]
    public void Llama3_bos_is_begin_of_text_even_though_this_file_has_no_bos_template()
    {
        // This packaged tokenizer.json's post-processor is ByteLevel only; the BOS is found by name.
        var llama = tokenizers.Llama3;

        Assert.Equal(128000, llama.BosId);
        Assert.Equal([128001], llama.EosIds);
        Assert.Equal([128000, 9906, 1917], llama.EncodePrompt("Hello world"));
    }

    [Fact]
    public void Llama3_takes_its_ids_from_the_model_config_when_given()
    {
        var settings = TokenizerSettings.FromJson("""{"bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009]}""", null);
        using var llama = new TextTokenizer(RealTokenizers.TokenizerJson("llama3"), settings);

        Assert.Equal([128001, 128008, 128009], llama.EosIds);
        Assert.Equal([128000, 9906, 1917], llama.EncodePrompt("Hello world"));
    }

    [Fact]
    public void Llama3_prompt_that_starts_with_begin_of_text_is_not_given_a_second_one()
    {
        Assert.Equal([128000, 9906], tokenizers.Llama3.EncodePrompt("<|begin_of_text|>Hello"));
    }

    [Fact]
    public void Llama3_prompt_tokens_and_prompt_text_include_the_bos_text()
    {
        var llama = tokenizers.Llama3;
        var ids = llama.EncodePrompt("Hello world");

        Assert.Equal(["<|begin_of_text|>", "Hello", " world"], ids.Select(llama.DecodeToken));
        Assert.Equal("<|begin_of_text|>Hello world", llama.Decode(ids));
        Assert.Equal("Hello world", llama.Decode(ids, skipSpecialTokens: true));
    }

    [Fact]
    public void Llama3_decode_cleans_up_spaces_because_its_tokenizer_config_says_so()
    {
        var llama = tokenizers.Llama3;
        var spaceComma = tokenizers.VocabId("llama3", "Ġ,");

        Assert.Equal(",", llama.DecodeToken(spaceComma));
        Assert.Equal("Hello, world", llama.Decode(llama.Encode("Hello , world")));
        Assert.Contains(spaceComma, llama.Encode("Hello , world"));
    }

    [Fact]
    public void Gemma3_bos_comes_from_its_post_processor_and_encode_does_not_add_it()
    {
        var gemma = tokenizers.Gemma3;

        Assert.Equal(2, gemma.BosId);
        Assert.Equal([1], gemma.EosIds);
        Assert.Equal([9259, 1902], gemma.Encode("Hello world"));
        Assert.Equal([2, 9259, 1902], gemma.EncodePrompt("Hello world"));
    }

    [Theory]
    [InlineData("gemma3", new[] { 2 })]
    [InlineData("llama3", new int[0])]
    [InlineData("qwen3", new int[0])]
    public void Encoding_is_the_librarys_own_on_the_untouched_file_less_what_its_post_processor_adds(string model, int[] added)
    {
        // The plain copy changes nothing but the post-processor's additions (Gemma's <bos>).
        using var library = new NativeTokenizer(RealTokenizers.TokenizerJson(model));
        string[] prompts =
        [
            "Fait: Michael Jordan joue au", "<start_of_turn>user\nHi<end_of_turn>", "<|im_start|>user\nHi<|im_end|>",
            "<|begin_of_text|><bos>x", "  spaces  and 😀 日本語 e\u0301", "",
        ];

        foreach (var prompt in prompts)
        {
            var libraryIds = library.Encode(prompt).Select(id => (int)id);
            Assert.Equal([.. added, .. tokenizers[model].Encode(prompt)], libraryIds);
        }
    }

    [Fact]
    public void Gemma3_puts_au_at_position_7_of_the_seeds_steering_example()
    {
        // docs/api.md: positions count the BOS as 0, and " au" is position 7 of this prompt.
        var gemma = tokenizers.Gemma3;

        var ids = gemma.EncodePrompt("Fait: Michael Jordan joue au");

        Assert.Equal(8, ids.Length);
        Assert.Equal(2, ids[0]);
        Assert.Equal(" au", gemma.DecodeToken(ids[7]));
        Assert.Equal(tokenizers.VocabId("gemma3", "▁au"), ids[7]);
    }

    [Fact]
    public void Gemma3_prompt_that_starts_with_bos_text_is_not_given_a_second_one()
    {
        Assert.Equal([2, 9259], tokenizers.Gemma3.EncodePrompt("<bos>Hello"));
    }

    [Fact]
    public void Gemma3_added_tokens_that_are_not_special_do_not_stand_in_for_the_bos()
    {
        // <mask> (id 4) is an added token without the special flag: the BOS still goes first.
        var gemma = tokenizers.Gemma3;
        var ids = gemma.EncodePrompt("<mask> is hidden");

        Assert.False(gemma.IsSpecial(4));
        Assert.Equal([2, 4], ids[..2]);
        Assert.Equal("<mask>", gemma.DecodeToken(4));
    }

    [Fact]
    public void Qwen3_has_no_bos_in_its_post_processor_and_uses_the_configs_endoftext()
    {
        var settings = TokenizerSettings.FromJson("""{"bos_token_id": 151643, "eos_token_id": 151645}""", null);
        using var qwen = new TextTokenizer(RealTokenizers.TokenizerJson("qwen3"), settings);

        Assert.Equal([9707, 1879], qwen.Encode("Hello world"));
        Assert.Equal([151643, 9707, 1879], qwen.EncodePrompt("Hello world"));
        Assert.Equal([151645], qwen.EosIds);
        Assert.Equal("<|endoftext|>", qwen.DecodeToken(151643));
    }

    [Fact]
    public void Qwen3_without_a_config_falls_back_to_endoftext_by_name()
    {
        Assert.Equal(151643, tokenizers.Qwen3.BosId);
        Assert.Equal([151643], tokenizers.Qwen3.EosIds);
    }

    [Fact]
    public void Qwen3_chat_prompt_that_starts_with_im_start_gets_no_bos()
    {
        var qwen = tokenizers.Qwen3;

        var ids = qwen.EncodePrompt("<|im_start|>user\nHi<|im_end|>");

        Assert.Equal(151644, ids[0]);
        Assert.Equal(151645, ids[^1]);
        Assert.Equal(["<|im_start|>", "user", "\n", "Hi", "<|im_end|>"], ids.Select(qwen.DecodeToken));
        Assert.Equal("user\nHi", qwen.Decode(ids, skipSpecialTokens: true));
    }

    [Fact]
    public void Qwen3_normalises_text_to_nfc_so_combining_marks_come_back_composed()
    {
        var qwen = tokenizers.Qwen3;

        Assert.Equal("caf\u00e9", qwen.Decode(qwen.Encode("cafe\u0301")));
    }

    [Theory]
    [InlineData("llama3", "Hello, world! 1234567 tabs\tand\nlines")]
    [InlineData("qwen3", "Hello, world! 1234567 tabs\tand\nlines")]
    [InlineData("gemma3", "Hello, world! 1234567 tabs\tand\nlines")]
    [InlineData("llama3", "café 😀 👩‍👩‍👧 🇫🇷 日本語のテキスト 한국어 שלום ∑")]
    [InlineData("qwen3", "café 😀 👩‍👩‍👧 🇫🇷 日本語のテキスト 한국어 שלום ∑")]
    [InlineData("gemma3", "café 😀 👩‍👩‍👧 🇫🇷 日本語のテキスト 한국어 שלום ∑")]
    [InlineData("llama3", "  combining: e\u0301 a\u0308 o\u0302\u0323  ")]
    [InlineData("gemma3", "  combining: e\u0301 a\u0308 o\u0302\u0323  ")]
    public void Text_round_trips(string model, string text)
    {
        var tokenizer = tokenizers[model];

        Assert.Equal(text, tokenizer.Decode(tokenizer.Encode(text)));
        Assert.Equal(text, tokenizer.Decode(tokenizer.EncodePrompt(text), skipSpecialTokens: true));
    }

    [Theory]
    [InlineData("llama3")]
    [InlineData("qwen3")]
    [InlineData("gemma3")]
    public void Ascii_tokens_decoded_one_by_one_concatenate_to_the_prompt(string model)
    {
        const string Prompt = "The capital of the state containing Dallas is";
        var tokenizer = tokenizers[model];
        var ids = tokenizer.EncodePrompt(Prompt);

        var pieces = ids.Skip(1).Select(tokenizer.DecodeToken);

        Assert.True(tokenizer.IsSpecial(ids[0]));
        Assert.Equal(Prompt, string.Concat(pieces));
    }
}

namespace Attribution.Tests.Tokenization;

using Attribution.Synthetic;
using Attribution.Tokenization;
using NativeTokenizer = Tokenizers.DotNet.Tokenizer;

/// <summary>
/// Pins what Tokenizers.DotNet 1.4.1 does on its own, the reason TextTokenizer loads a plain copy
/// of tokenizer.json: if an upgrade changes this, these tests say so first.
/// </summary>
public sealed class TokenizersDotNetBehaviourTests(TinyTokenizerFile file) : IClassFixture<TinyTokenizerFile>
{
    [Fact]
    public void Library_encode_always_runs_the_post_processor_so_bos_is_added()
    {
        using var native = new NativeTokenizer(file.Path);
        using var tokenizer = new TextTokenizer(file.Path);

        var libraryIds = native.Encode("Hello world").Select(id => (int)id);

        Assert.Equal([TinyTokenizerFactory.BosId, .. tokenizer.Encode("Hello world")], libraryIds);
    }

    [Fact]
    public void Library_decode_always_skips_special_tokens()
    {
        using var native = new NativeTokenizer(file.Path);

        var text = native.Decode([TinyTokenizerFactory.BosId, (uint)TinyTokenizerFactory.ByteId((byte)'a'), TinyTokenizerFactory.EosId]);

        Assert.Equal("a", text);
    }

    [Fact]
    public void Library_decodes_a_lone_special_token_to_the_empty_string()
    {
        using var native = new NativeTokenizer(file.Path);

        Assert.Equal("", native.Decode([TinyTokenizerFactory.BosId]));
    }
}

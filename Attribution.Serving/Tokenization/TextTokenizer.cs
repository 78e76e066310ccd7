namespace Attribution.Tokenization;

using System.Collections.Frozen;
using System.Text;
using NativeTokenizer = Tokenizers.DotNet.Tokenizer;

/// <summary>
/// A model's Hugging Face tokenizer (tokenizer.json, run by the Rust <c>tokenizers</c> library
/// through Tokenizers.DotNet), with the conventions of circuit-tracer and transformers:
/// encoding adds no special tokens by itself, prompts get one BOS in front (docs/algorithm.md §2), and
/// decoding keeps special tokens' text unless asked to skip them.
/// </summary>
/// <remarks>
/// Tokenizers.DotNet 1.4.1 hard-codes <c>encode(text, add_special_tokens: true)</c> (the
/// post-processor runs: Gemma's adds &lt;bos&gt;) and <c>decode(ids, skip_special_tokens: true)</c>
/// (&lt;bos&gt; decodes to ""). The native tokenizer here is therefore loaded from a plain copy of
/// tokenizer.json without post-processor and without special flags (see
/// <see cref="TokenizerDefinition.Read"/>); which ids are special is kept on this side.
/// Safe to use from several threads: the native library locks, and nothing here changes after construction.
/// </remarks>
public sealed class TextTokenizer : IDisposable
{
    /// <summary>Names that mark a BOS among a tokenizer's special tokens, in order of preference.</summary>
    private static readonly string[] BosNames = ["<bos>", "<s>", "<|begin_of_text|>", "<|endoftext|>"];

    /// <summary>Names that mark an EOS among a tokenizer's special tokens, in order of preference.</summary>
    private static readonly string[] EosNames = ["<eos>", "</s>", "<|end_of_text|>", "<|endoftext|>"];

    /// <summary>Rejects lone surrogates, which the native library cannot take, with a clear message.</summary>
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>transformers' clean_up_tokenization, applied in this order.</summary>
    private static readonly (string From, string To)[] CleanUps =
    [
        (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"),
        (" n't", "n't"), (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
    ];

    private readonly NativeTokenizer native;
    private readonly FrozenSet<int> specialIds;
    private readonly bool cleanUpTokenizationSpaces;

    /// <param name="tokenizerJsonPath">The model's tokenizer.json.</param>
    /// <param name="settings">
    /// The model config's BOS/EOS ids when known (they win over what tokenizer.json suggests)
    /// and the decode clean-up flag; see <see cref="TokenizerSettings.FromModelDirectory"/>.
    /// </param>
    public TextTokenizer(string tokenizerJsonPath, TokenizerSettings? settings = null)
    {
        settings ??= TokenizerSettings.None;
        var plainCopy = Path.Combine(Path.GetTempPath(), $"tokenizer-plain-{Guid.NewGuid():N}.json");
        try
        {
            // 1. Read what the native library hides, writing the plain copy it will load.
            TokenizerDefinition definition;
            using (var copy = File.Create(plainCopy))
            {
                definition = TokenizerDefinition.Read(tokenizerJsonPath, copy);
            }

            VocabSize = definition.VocabSize;
            specialIds = definition.AddedTokens.Where(t => t.Special).Select(t => t.Id).ToFrozenSet();

            // 2. Settle BOS and EOS: the model's config first, then what tokenizer.json says.
            BosId = settings.BosTokenId is { } bos ? CheckedId(bos, "bos_token_id")
                : definition.PostProcessorBosId
                  ?? SpecialTokenNamed(definition, BosNames)
                  ?? throw new InvalidOperationException(
                      $"{tokenizerJsonPath} names no BOS token (no post-processor template, no special {string.Join(", ", BosNames)}): pass the model config's bos_token_id.");
            EosIds = settings.EosTokenIds is { } eos ? [.. eos.Select(id => CheckedId(id, "eos_token_id"))]
                : SpecialTokenNamed(definition, EosNames) is { } named ? [named] : [];
            cleanUpTokenizationSpaces = settings.CleanUpTokenizationSpaces;

            // 3. Load the native tokenizer; it reads the whole file now, so the copy can go.
            native = new NativeTokenizer(plainCopy);
        }
        finally
        {
            File.Delete(plainCopy);
        }
    }

    /// <summary>One past the highest id the tokenizer knows; a model's embedding may have more rows.</summary>
    public int VocabSize { get; }

    /// <summary>The token prepended to prompts that do not start with a special token.</summary>
    public int BosId { get; }

    /// <summary>Tokens that end generation (may be empty).</summary>
    public IReadOnlyList<int> EosIds { get; }

    /// <summary>Loads <c>tokenizer.json</c> with the settings of <c>config.json</c> / <c>tokenizer_config.json</c> beside it.</summary>
    public static TextTokenizer FromModelDirectory(string directory) =>
        new(Path.Combine(directory, "tokenizer.json"), TokenizerSettings.FromModelDirectory(directory));

    /// <summary>Whether tokenizer.json marks this id's added token <c>special</c>.</summary>
    public bool IsSpecial(int id) => specialIds.Contains(id);

    /// <summary>
    /// Token ids of the text with no special tokens added (transformers' <c>add_special_tokens=False</c>).
    /// Special tokens written in the text itself ("&lt;bos&gt;") still become their ids.
    /// </summary>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        try
        {
            StrictUtf8.GetByteCount(text);
        }
        catch (EncoderFallbackException e)
        {
            throw new ArgumentException("Text contains an unpaired UTF-16 surrogate and cannot be tokenized.", nameof(text), e);
        }

        return Array.ConvertAll(native.Encode(text), id => (int)id);
    }

    /// <summary>
    /// The model input for a prompt (docs/algorithm.md §2): its tokens, after a BOS unless the prompt already
    /// starts with a special token (e.g. it begins with "&lt;bos&gt;" or "&lt;|im_start|&gt;").
    /// Position 0 is therefore always a special token.
    /// </summary>
    public int[] EncodePrompt(string prompt) => WithBos(Encode(prompt));

    /// <summary>The BOS rule alone, for ids already from <see cref="Encode"/>.</summary>
    public int[] WithBos(int[] ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        return ids.Length > 0 && StartsASequence(ids[0]) ? ids : [BosId, .. ids];
    }

    /// <summary>
    /// Text of a token sequence, as transformers' <c>tokenizer.decode</c>: special tokens appear as
    /// their text unless skipped; ids the tokenizer does not know decode to nothing.
    /// </summary>
    public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var kept = ids.Where(id => !(skipSpecialTokens && IsSpecial(id))).Select(ToNative).ToArray();
        var text = native.Decode(kept);
        return cleanUpTokenizationSpaces ? CleanUp(text) : text;
    }

    /// <summary>
    /// One token decoded alone (circuit-tracer's <c>tokenizer.decode(t)</c> for prompt_tokens):
    /// special tokens give their text; a byte that is only part of a character gives "\uFFFD".
    /// </summary>
    public string DecodeToken(int id) => Decode([id]);

    public void Dispose() => native.Dispose();

    private bool StartsASequence(int id) => IsSpecial(id) || id == BosId;

    private int CheckedId(int id, string name) =>
        id >= 0 && id < VocabSize ? id
        : throw new ArgumentOutOfRangeException(name, id, $"The model config's {name} is outside the tokenizer's vocabulary [0, {VocabSize}).");

    private static int? SpecialTokenNamed(TokenizerDefinition definition, string[] names) =>
        names.SelectMany(name => definition.AddedTokens.Where(t => t.Special && t.Content == name))
            .Select(t => (int?)t.Id).FirstOrDefault();

    private static uint ToNative(int id) =>
        id >= 0 ? (uint)id : throw new ArgumentOutOfRangeException(nameof(id), id, "Token ids are never negative.");

    private static string CleanUp(string text)
    {
        foreach (var (from, to) in CleanUps)
        {
            text = text.Replace(from, to, StringComparison.Ordinal);
        }

        return text;
    }
}

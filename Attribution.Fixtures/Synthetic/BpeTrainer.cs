namespace Attribution.Synthetic;

using System.Text;
using System.Text.RegularExpressions;

/// <summary>
/// Learns byte-level BPE merges from a corpus (Sennrich et al. 2016, over bytes as GPT-2 does):
/// split the text into words as the tokenizer's ByteLevel pre-tokenizer will, spell each word in
/// bytes, and repeatedly merge the most frequent adjacent pair. The merges are written into a
/// tokenizer.json by <see cref="TinyTokenizerFactory.WriteLearned"/> and run by the Rust
/// tokenizers library; only the learning is ours, because neither Tokenizers.DotNet nor
/// Microsoft.ML.Tokenizers can train.
/// </summary>
public static partial class BpeTrainer
{
    /// <summary>
    /// GPT-2's word pattern, which the ByteLevel pre-tokenizer applies with <c>use_regex</c>:
    /// contractions, letters or digits or other symbols each with one optional leading space, and
    /// runs of whitespace (a run before a word leaves its last space to the word).
    /// </summary>
    [GeneratedRegex(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+")]
    private static partial Regex WordPattern();

    /// <summary>The words the pre-tokenizer makes of a text, in order.</summary>
    public static IEnumerable<string> Words(string text) => WordPattern().Matches(text).Select(m => m.Value);

    /// <summary>
    /// The merges, in rank order and byte-level spelling, that learning on these texts makes: the
    /// most frequent pair first (ties broken by the pair's spelling, so the result is deterministic),
    /// until no pair occurs <paramref name="minCount"/> times. With the default of 1 every word of
    /// the corpus ends as one token.
    /// </summary>
    public static IReadOnlyList<(string Left, string Right)> Learn(IEnumerable<string> texts, int minCount = 1)
    {
        // 1. Count the distinct words, each spelled as its byte-level symbols.
        var words = texts.SelectMany(Words).GroupBy(w => w, StringComparer.Ordinal)
            .Select(g => (Symbols: Encoding.UTF8.GetBytes(g.Key).Select(b => ByteLevelAlphabet.CharFor(b).ToString()).ToList(), Count: g.Count()))
            .ToList();

        // 2. Merge the most frequent adjacent pair everywhere, until none is frequent enough.
        var merges = new List<(string Left, string Right)>();
        while (MostFrequentPair(words, minCount) is { } pair)
        {
            merges.Add(pair);
            foreach (var (symbols, _) in words)
            {
                MergeInPlace(symbols, pair);
            }
        }

        return merges;
    }

    private static (string Left, string Right)? MostFrequentPair(List<(List<string> Symbols, int Count)> words, int minCount)
    {
        var counts = new Dictionary<(string, string), int>();
        foreach (var (symbols, count) in words)
        {
            for (int i = 0; i + 1 < symbols.Count; i++)
            {
                var pair = (symbols[i], symbols[i + 1]);
                counts[pair] = counts.GetValueOrDefault(pair) + count;
            }
        }

        return counts.Where(c => c.Value >= minCount)
            .OrderByDescending(c => c.Value).ThenBy(c => c.Key.Item1, StringComparer.Ordinal).ThenBy(c => c.Key.Item2, StringComparer.Ordinal)
            .Select(c => ((string, string)?)c.Key).FirstOrDefault();
    }

    /// <summary>Replaces each occurrence of the pair, left to right, by its merge (as BPE applies one merge).</summary>
    private static void MergeInPlace(List<string> symbols, (string Left, string Right) pair)
    {
        for (int i = 0; i + 1 < symbols.Count; i++)
        {
            if (symbols[i] == pair.Left && symbols[i + 1] == pair.Right)
            {
                symbols[i] = pair.Left + pair.Right;
                symbols.RemoveAt(i + 1);
            }
        }
    }
}

namespace Attribution.Chat;

using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

/// <summary>A chat template that cannot be rendered: a syntax error, an unsupported construct (named), or the template's own raise_exception.</summary>
public sealed class ChatTemplateException(string message) : Exception(message);

internal enum TokenKind
{
    Text,
    OpenOutput,   // {{
    OpenStatement, // {%
    Close,        // }} or %}
    Name,
    Integer,
    Float,
    String,
    Symbol,
}

internal sealed record Token(TokenKind Kind, string Value, int Line);

/// <summary>
/// Splits a template into text and tag tokens with the environment transformers and
/// @huggingface/jinja use: one trailing newline dropped, lstrip_blocks and trim_blocks, and the
/// "-" whitespace control on either side of a tag.
/// </summary>
internal static partial class JinjaLexer
{
    private static readonly string[] Symbols = ["==", "!=", "<=", ">=", "//", "**", "<", ">", "+", "-", "*", "/", "%", "~", "(", ")", "[", "]", "{", "}", ",", ":", ".", "=", "|"];

    [GeneratedRegex(@"^[ \t]*(\{[#%-])", RegexOptions.Multiline)]
    private static partial Regex BlockIndent();

    [GeneratedRegex(@"([#%-]\})\n")]
    private static partial Regex BlockNewline();

    public static List<Token> Tokenize(string source)
    {
        if (source.EndsWith('\n')) source = source[..^1];
        source = BlockNewline().Replace(BlockIndent().Replace(source, "$1"), "$1");

        var tokens = new List<Token>();
        int at = 0, line = 1;
        bool trimNext = false;
        while (at < source.Length)
        {
            int open = source.IndexOf('{', at);
            while (open >= 0 && open + 1 < source.Length && source[open + 1] is not ('{' or '%' or '#')) open = source.IndexOf('{', open + 1);
            if (open < 0 || open + 1 >= source.Length) open = source.Length;
            string text = source[at..open];
            bool trimBefore = open + 2 < source.Length && source[open + 2] == '-';
            if (trimNext) text = text.TrimStart();
            if (trimBefore) text = text.TrimEnd();
            if (text.Length > 0) tokens.Add(new Token(TokenKind.Text, text, line));
            line += CountLines(source, at, open);
            if (open >= source.Length) break;

            char kind = source[open + 1];
            at = open + 2 + (trimBefore ? 1 : 0);
            if (kind == '#')
            {
                int end = source.IndexOf("#}", at, StringComparison.Ordinal);
                if (end < 0) throw Error(line, "a comment is not closed");
                trimNext = source[end - 1] == '-';
                line += CountLines(source, at, end);
                at = end + 2;
                continue;
            }
            tokens.Add(new Token(kind == '{' ? TokenKind.OpenOutput : TokenKind.OpenStatement, kind == '{' ? "{{" : "{%", line));
            string closer = kind == '{' ? "}}" : "%}";
            (at, line, trimNext) = TagTokens(source, at, line, closer, tokens);
        }
        return tokens;
    }

    /// <summary>The tokens inside one tag, up to and including its closer; returns where text resumes.</summary>
    private static (int At, int Line, bool TrimNext) TagTokens(string source, int at, int line, string closer, List<Token> tokens)
    {
        int depth = 0;   // braces of dict literals inside {{ }}
        while (true)
        {
            while (at < source.Length && char.IsWhiteSpace(source[at]))
            {
                if (source[at] == '\n') line++;
                at++;
            }
            if (at >= source.Length) throw Error(line, $"a tag is not closed with {closer}");
            if (depth == 0 && source[at] == '-' && string.CompareOrdinal(source, at + 1, closer, 0, 2) == 0)
            {
                tokens.Add(new Token(TokenKind.Close, closer, line));
                return (at + 3, line, true);
            }
            if (depth == 0 && string.CompareOrdinal(source, at, closer, 0, 2) == 0)
            {
                tokens.Add(new Token(TokenKind.Close, closer, line));
                return (at + 2, line, false);
            }
            char c = source[at];
            if (c is '"' or '\'')
            {
                var (value, end) = StringLiteral(source, at, line);
                tokens.Add(new Token(TokenKind.String, value, line));
                at = end;
            }
            else if (char.IsDigit(c))
            {
                int start = at;
                while (at < source.Length && char.IsDigit(source[at])) at++;
                bool real = at + 1 < source.Length && source[at] == '.' && char.IsDigit(source[at + 1]);
                if (real)
                {
                    at++;
                    while (at < source.Length && char.IsDigit(source[at])) at++;
                }
                tokens.Add(new Token(real ? TokenKind.Float : TokenKind.Integer, source[start..at], line));
            }
            else if (char.IsLetter(c) || c == '_')
            {
                int start = at;
                while (at < source.Length && (char.IsLetterOrDigit(source[at]) || source[at] == '_')) at++;
                tokens.Add(new Token(TokenKind.Name, source[start..at], line));
            }
            else
            {
                string symbol = Symbols.FirstOrDefault(s => string.CompareOrdinal(source, at, s, 0, s.Length) == 0)
                    ?? throw Error(line, $"unexpected character '{c}'");
                if (symbol == "{") depth++;
                if (symbol == "}") depth--;
                tokens.Add(new Token(TokenKind.Symbol, symbol, line));
                at += symbol.Length;
            }
        }
    }

    private static (string Value, int End) StringLiteral(string source, int at, int line)
    {
        char quote = source[at];
        var value = new StringBuilder();
        for (int i = at + 1; i < source.Length; i++)
        {
            char c = source[i];
            if (c == quote) return (value.ToString(), i + 1);
            if (c != '\\' || i + 1 >= source.Length)
            {
                value.Append(c);
                continue;
            }
            char escaped = source[++i];
            value.Append(escaped switch
            {
                'n' => "\n",
                't' => "\t",
                'r' => "\r",
                'b' => "\b",
                'f' => "\f",
                '\\' or '"' or '\'' => escaped.ToString(),
                _ => "\\" + escaped,
            });
        }
        throw Error(line, "a string literal is not closed");
    }

    private static int CountLines(string source, int from, int to)
    {
        int lines = 0;
        for (int i = from; i < to && i < source.Length; i++) if (source[i] == '\n') lines++;
        return lines;
    }

    public static ChatTemplateException Error(int line, string message) =>
        new(string.Create(CultureInfo.InvariantCulture, $"chat template line {line}: {message}"));
}

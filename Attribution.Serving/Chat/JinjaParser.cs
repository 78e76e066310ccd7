namespace Attribution.Chat;

using System.Globalization;

// The syntax tree of a template: statements and expressions, each with the line it came from.
internal abstract record Node(int Line);

internal sealed record TextNode(string Text, int Line) : Node(Line);

internal sealed record OutputNode(Expr Value, int Line) : Node(Line);

internal sealed record IfNode(List<(Expr Condition, List<Node> Body)> Branches, List<Node> Otherwise, int Line) : Node(Line);

internal sealed record ForNode(List<string> Targets, Expr Items, Expr? Filter, List<Node> Body, List<Node> Otherwise, int Line) : Node(Line);

internal sealed record SetNode(Expr Target, Expr? Value, List<Node>? Body, int Line) : Node(Line);

internal sealed record LoopControlNode(bool IsBreak, int Line) : Node(Line);

internal abstract record Expr(int Line);

internal sealed record LiteralExpr(object? Value, int Line) : Expr(Line);

internal sealed record NameExpr(string Name, int Line) : Expr(Line);

internal sealed record ListExpr(List<Expr> Items, int Line) : Expr(Line);

internal sealed record DictExpr(List<(Expr Key, Expr Value)> Entries, int Line) : Expr(Line);

internal sealed record MemberExpr(Expr Target, string Name, int Line) : Expr(Line);

internal sealed record IndexExpr(Expr Target, Expr Index, int Line) : Expr(Line);

internal sealed record SliceExpr(Expr Target, Expr? Start, Expr? Stop, Expr? Step, int Line) : Expr(Line);

internal sealed record CallExpr(Expr Callee, List<Expr> Arguments, List<(string Name, Expr Value)> Keywords, int Line) : Expr(Line);

internal sealed record FilterExpr(Expr Value, string Name, List<Expr> Arguments, List<(string Name, Expr Value)> Keywords, int Line) : Expr(Line);

internal sealed record TestExpr(Expr Value, string Name, bool Negated, List<Expr> Arguments, int Line) : Expr(Line);

internal sealed record UnaryExpr(string Operator, Expr Operand, int Line) : Expr(Line);

internal sealed record BinaryExpr(string Operator, Expr Left, Expr Right, int Line) : Expr(Line);

internal sealed record ConditionalExpr(Expr Condition, Expr Then, Expr? Otherwise, int Line) : Expr(Line);

/// <summary>
/// Recursive descent over the tokens, with Jinja2's precedence: conditional, or, and, not,
/// comparisons (in, not in), + -, ~, * / // %, unary minus, then postfix (attributes,
/// subscripts, calls) and filters / tests, which bind tightest.
/// </summary>
internal sealed class JinjaParser(List<Token> tokens)
{
    private static readonly HashSet<string> Supported = ["if", "elif", "else", "endif", "for", "endfor", "set", "endset", "break", "continue"];

    private int at;

    public List<Node> ParseTemplate()
    {
        var body = ParseBlock(out string? end);
        if (end is not null) throw JinjaLexer.Error(Current.Line, $"'{end}' without its opening tag");
        return body;
    }

    private Token Current => at < tokens.Count ? tokens[at] : new Token(TokenKind.Close, "<end>", tokens.Count > 0 ? tokens[^1].Line : 1);

    /// <summary>Nodes up to a closing tag (endif, elif, else, endfor, endset) or the end; that tag's name in <paramref name="end"/>.</summary>
    private List<Node> ParseBlock(out string? end, params string[] ends)
    {
        var nodes = new List<Node>();
        while (at < tokens.Count)
        {
            var token = tokens[at];
            if (token.Kind == TokenKind.Text)
            {
                nodes.Add(new TextNode(token.Value, token.Line));
                at++;
            }
            else if (token.Kind == TokenKind.OpenOutput)
            {
                at++;
                var value = ParseExpression();
                Expect(TokenKind.Close);
                nodes.Add(new OutputNode(value, token.Line));
            }
            else
            {
                at++;
                string name = Current.Kind == TokenKind.Name ? Current.Value : throw JinjaLexer.Error(Current.Line, "a statement tag needs a keyword");
                if (!Supported.Contains(name)) throw JinjaLexer.Error(token.Line, $"the '{name}' tag is not supported");
                if (ends.Contains(name))
                {
                    end = name;
                    return nodes;
                }
                if (name is "endif" or "endfor" or "endset" or "elif" or "else")
                {
                    end = name;
                    return nodes;
                }
                at++;
                nodes.Add(name switch
                {
                    "if" => ParseIf(token.Line),
                    "for" => ParseFor(token.Line),
                    "set" => ParseSet(token.Line),
                    _ => ParseLoopControl(name, token.Line),
                });
            }
        }
        end = null;
        return nodes;
    }

    private IfNode ParseIf(int line)
    {
        var branches = new List<(Expr, List<Node>)>();
        var condition = ParseExpression();
        while (true)
        {
            Expect(TokenKind.Close);
            var body = ParseBlock(out string? end, "elif", "else", "endif");
            branches.Add((condition, body));
            at++;   // the keyword
            switch (end)
            {
                case "elif":
                    condition = ParseExpression();
                    continue;
                case "else":
                    Expect(TokenKind.Close);
                    var otherwise = ParseBlock(out string? close, "endif");
                    Closing(close, "endif", line);
                    return new IfNode(branches, otherwise, line);
                case "endif":
                    Expect(TokenKind.Close);
                    return new IfNode(branches, [], line);
                default:
                    throw JinjaLexer.Error(line, $"'if' closed by '{end ?? "the end of the template"}'");
            }
        }
    }

    private ForNode ParseFor(int line)
    {
        var targets = new List<string> { ExpectName() };
        while (Accept(","))
            targets.Add(ExpectName());
        if (ExpectName() != "in") throw JinjaLexer.Error(line, "'for' needs 'in'");
        var items = ParseOr();
        Expr? filter = null;
        if (Current is { Kind: TokenKind.Name, Value: "if" })
        {
            at++;
            filter = ParseOr();
        }
        if (Current is { Kind: TokenKind.Name, Value: "recursive" }) throw JinjaLexer.Error(line, "recursive loops are not supported");
        Expect(TokenKind.Close);
        var body = ParseBlock(out string? end, "else", "endfor");
        at++;
        var otherwise = new List<Node>();
        if (end == "else")
        {
            Expect(TokenKind.Close);
            otherwise = ParseBlock(out end, "endfor");
            at++;
        }
        Closing(end, "endfor", line, consumed: true);
        return new ForNode(targets, items, filter, body, otherwise, line);
    }

    private SetNode ParseSet(int line)
    {
        Expr target = new NameExpr(ExpectName(), line);
        if (Accept(".")) target = new MemberExpr(target, ExpectName(), line);
        if (Accept("="))
        {
            var value = ParseExpression();
            Expect(TokenKind.Close);
            return new SetNode(target, value, null, line);
        }
        Expect(TokenKind.Close);
        var body = ParseBlock(out string? end, "endset");
        Closing(end, "endset", line);
        return new SetNode(target, null, body, line);
    }

    private LoopControlNode ParseLoopControl(string name, int line)
    {
        Expect(TokenKind.Close);
        return new LoopControlNode(name == "break", line);
    }

    /// <summary>After ParseBlock stopped at <paramref name="end"/>: it must be <paramref name="expected"/>, then its tag closes.</summary>
    private void Closing(string? end, string expected, int line, bool consumed = false)
    {
        if (end != expected) throw JinjaLexer.Error(line, $"expected '{expected}', found '{end ?? "the end of the template"}'");
        if (!consumed) at++;
        Expect(TokenKind.Close);
    }

    private Expr ParseExpression()
    {
        var value = ParseOr();
        if (Current is not { Kind: TokenKind.Name, Value: "if" }) return value;
        at++;
        var condition = ParseOr();
        Expr? otherwise = null;
        if (Current is { Kind: TokenKind.Name, Value: "else" })
        {
            at++;
            otherwise = ParseExpression();
        }
        return new ConditionalExpr(condition, value, otherwise, value.Line);
    }

    private Expr ParseOr()
    {
        var left = ParseAnd();
        while (AcceptName("or")) left = new BinaryExpr("or", left, ParseAnd(), left.Line);
        return left;
    }

    private Expr ParseAnd()
    {
        var left = ParseNot();
        while (AcceptName("and")) left = new BinaryExpr("and", left, ParseNot(), left.Line);
        return left;
    }

    private Expr ParseNot()
    {
        int line = Current.Line;
        return AcceptName("not") ? new UnaryExpr("not", ParseNot(), line) : ParseCompare();
    }

    private Expr ParseCompare()
    {
        var left = ParseAdditive();
        while (true)
        {
            if (Current.Kind == TokenKind.Symbol && Current.Value is "==" or "!=" or "<" or ">" or "<=" or ">=")
            {
                string op = tokens[at++].Value;
                left = new BinaryExpr(op, left, ParseAdditive(), left.Line);
            }
            else if (AcceptName("in"))
            {
                left = new BinaryExpr("in", left, ParseAdditive(), left.Line);
            }
            else if (Current is { Kind: TokenKind.Name, Value: "not" } && at + 1 < tokens.Count && tokens[at + 1] is { Kind: TokenKind.Name, Value: "in" })
            {
                at += 2;
                left = new UnaryExpr("not", new BinaryExpr("in", left, ParseAdditive(), left.Line), left.Line);
            }
            else
            {
                return left;
            }
        }
    }

    private Expr ParseAdditive()
    {
        var left = ParseConcat();
        while (Current.Kind == TokenKind.Symbol && Current.Value is "+" or "-")
        {
            string op = tokens[at++].Value;
            left = new BinaryExpr(op, left, ParseConcat(), left.Line);
        }
        return left;
    }

    private Expr ParseConcat()
    {
        var left = ParseMultiplicative();
        while (Accept("~")) left = new BinaryExpr("~", left, ParseMultiplicative(), left.Line);
        return left;
    }

    private Expr ParseMultiplicative()
    {
        var left = ParseUnary();
        while (Current.Kind == TokenKind.Symbol && Current.Value is "*" or "/" or "//" or "%")
        {
            string op = tokens[at++].Value;
            left = new BinaryExpr(op, left, ParseUnary(), left.Line);
        }
        if (Current is { Kind: TokenKind.Symbol, Value: "**" }) throw JinjaLexer.Error(Current.Line, "the '**' operator is not supported");
        return left;
    }

    private Expr ParseUnary()
    {
        int line = Current.Line;
        if (Accept("-")) return ParseFilters(new UnaryExpr("-", ParseUnary(), line));
        if (Accept("+")) return ParseUnary();
        return ParseFilters(ParsePostfix(ParsePrimary()));
    }

    /// <summary>Filters (<c>| name(args)</c>) and tests (<c>is [not] name</c>), left to right.</summary>
    private Expr ParseFilters(Expr value)
    {
        while (true)
        {
            if (Accept("|"))
            {
                string name = ExpectName();
                var (arguments, keywords) = Current is { Kind: TokenKind.Symbol, Value: "(" } ? ParseArguments() : ([], []);
                value = ParsePostfix(new FilterExpr(value, name, arguments, keywords, value.Line));
            }
            else if (AcceptName("is"))
            {
                bool negated = AcceptName("not");
                string name = Current.Kind == TokenKind.Name ? tokens[at++].Value : throw JinjaLexer.Error(Current.Line, "'is' needs a test name");
                var arguments = new List<Expr>();
                if (Current is { Kind: TokenKind.Symbol, Value: "(" }) arguments = ParseArguments().Arguments;
                else if (Current.Kind is TokenKind.String or TokenKind.Integer or TokenKind.Float) arguments.Add(ParsePrimary());
                value = new TestExpr(value, name, negated, arguments, value.Line);
            }
            else
            {
                return value;
            }
        }
    }

    private Expr ParsePostfix(Expr value)
    {
        while (true)
        {
            if (Accept("."))
            {
                value = new MemberExpr(value, ExpectName(), value.Line);
            }
            else if (Current is { Kind: TokenKind.Symbol, Value: "(" })
            {
                var (arguments, keywords) = ParseArguments();
                value = new CallExpr(value, arguments, keywords, value.Line);
            }
            else if (Accept("["))
            {
                value = ParseSubscript(value);
            }
            else
            {
                return value;
            }
        }
    }

    private Expr ParseSubscript(Expr target)
    {
        Expr? start = Current is { Kind: TokenKind.Symbol, Value: ":" } ? null : ParseExpression();
        if (Accept("]")) return new IndexExpr(target, start!, target.Line);
        Expect(":");
        Expr? stop = Current is { Kind: TokenKind.Symbol, Value: ":" or "]" } ? null : ParseExpression();
        Expr? step = null;
        if (Accept(":") && Current is not { Kind: TokenKind.Symbol, Value: "]" }) step = ParseExpression();
        Expect("]");
        return new SliceExpr(target, start, stop, step, target.Line);
    }

    private (List<Expr> Arguments, List<(string, Expr)> Keywords) ParseArguments()
    {
        Expect("(");
        var arguments = new List<Expr>();
        var keywords = new List<(string, Expr)>();
        while (!Accept(")"))
        {
            if (Current.Kind == TokenKind.Name && at + 1 < tokens.Count && tokens[at + 1] is { Kind: TokenKind.Symbol, Value: "=" })
            {
                string name = tokens[at].Value;
                at += 2;
                keywords.Add((name, ParseExpression()));
            }
            else
            {
                arguments.Add(ParseExpression());
            }
            if (!Accept(",")) Expect(")");
            else continue;
            break;
        }
        return (arguments, keywords);
    }

    private Expr ParsePrimary()
    {
        var token = Current;
        at++;
        switch (token.Kind)
        {
            case TokenKind.String:
                // Adjacent string literals concatenate, as in Python.
                string text = token.Value;
                while (Current.Kind == TokenKind.String) text += tokens[at++].Value;
                return new LiteralExpr(text, token.Line);
            case TokenKind.Integer:
                return new LiteralExpr(long.Parse(token.Value, CultureInfo.InvariantCulture), token.Line);
            case TokenKind.Float:
                return new LiteralExpr(double.Parse(token.Value, CultureInfo.InvariantCulture), token.Line);
            case TokenKind.Name:
                return token.Value switch
                {
                    "true" or "True" => new LiteralExpr(true, token.Line),
                    "false" or "False" => new LiteralExpr(false, token.Line),
                    "none" or "None" => new LiteralExpr(null, token.Line),
                    _ => new NameExpr(token.Value, token.Line),
                };
            case TokenKind.Symbol when token.Value == "(":
                var first = ParseExpression();
                if (Accept(")")) return first;
                var tuple = new List<Expr> { first };
                while (Accept(",") && !Accept(")")) tuple.Add(ParseExpression());
                if (tokens[at - 1].Value != ")") Expect(")");
                return new ListExpr(tuple, token.Line);
            case TokenKind.Symbol when token.Value == "[":
                var items = new List<Expr>();
                while (!Accept("]"))
                {
                    items.Add(ParseExpression());
                    if (!Accept(",")) { Expect("]"); break; }
                }
                return new ListExpr(items, token.Line);
            case TokenKind.Symbol when token.Value == "{":
                var entries = new List<(Expr, Expr)>();
                while (!Accept("}"))
                {
                    var key = ParseExpression();
                    Expect(":");
                    entries.Add((key, ParseExpression()));
                    if (!Accept(",")) { Expect("}"); break; }
                }
                return new DictExpr(entries, token.Line);
            default:
                throw JinjaLexer.Error(token.Line, $"unexpected '{token.Value}' in an expression");
        }
    }

    private bool Accept(string symbol)
    {
        if (Current.Kind != TokenKind.Symbol || Current.Value != symbol) return false;
        at++;
        return true;
    }

    private bool AcceptName(string name)
    {
        if (Current.Kind != TokenKind.Name || Current.Value != name) return false;
        at++;
        return true;
    }

    private void Expect(string symbol)
    {
        if (!Accept(symbol)) throw JinjaLexer.Error(Current.Line, $"expected '{symbol}', found '{Current.Value}'");
    }

    private void Expect(TokenKind kind)
    {
        if (Current.Kind != kind) throw JinjaLexer.Error(Current.Line, $"expected the end of the tag, found '{Current.Value}'");
        at++;
    }

    private string ExpectName() =>
        Current.Kind == TokenKind.Name ? tokens[at++].Value : throw JinjaLexer.Error(Current.Line, $"expected a name, found '{Current.Value}'");
}

namespace Attribution.Chat;

using System.Globalization;
using System.Text;

/// <summary>Runs a template's syntax tree, appending what it prints; the semantics of @huggingface/jinja for what chat templates use.</summary>
internal sealed class JinjaRenderer(StringBuilder output)
{
    /// <summary>A break or continue on its way to the enclosing loop.</summary>
    private sealed class LoopSignal(bool isBreak) : Exception
    {
        public bool IsBreak { get; } = isBreak;
    }

    public void Run(List<Node> nodes, Scope scope)
    {
        foreach (var node in nodes)
        {
            switch (node)
            {
                case TextNode text:
                    output.Append(text.Text);
                    break;
                case OutputNode print:
                    output.Append(JinjaValues.Text(Evaluate(print.Value, scope)));
                    break;
                case IfNode branch:
                    var taken = branch.Branches.FirstOrDefault(b => JinjaValues.Truthy(Evaluate(b.Condition, scope)));
                    Run(taken.Body ?? branch.Otherwise, scope);
                    break;
                case ForNode loop:
                    RunFor(loop, scope);
                    break;
                case SetNode set:
                    RunSet(set, scope);
                    break;
                case LoopControlNode control:
                    throw new LoopSignal(control.IsBreak);
            }
        }
    }

    private void RunFor(ForNode loop, Scope scope)
    {
        var items = Items(Evaluate(loop.Items, scope), loop.Line);
        if (loop.Filter is not null)
        {
            items = items.Where(item =>
            {
                var probe = new Scope(scope);
                Bind(probe, loop.Targets, item, loop.Line);
                return JinjaValues.Truthy(Evaluate(loop.Filter, probe));
            }).ToList();
        }
        if (items.Count == 0)
        {
            Run(loop.Otherwise, scope);
            return;
        }
        var inner = new Scope(scope);
        for (int i = 0; i < items.Count; i++)
        {
            inner.Set("loop", new OrderedDictionary<string, object?>
            {
                ["index"] = (long)i + 1, ["index0"] = (long)i, ["first"] = i == 0, ["last"] = i == items.Count - 1,
                ["length"] = (long)items.Count, ["revindex"] = (long)(items.Count - i), ["revindex0"] = (long)(items.Count - i - 1),
                ["previtem"] = i > 0 ? items[i - 1] : Undefined.Value, ["nextitem"] = i + 1 < items.Count ? items[i + 1] : Undefined.Value,
            });
            Bind(inner, loop.Targets, items[i], loop.Line);
            try
            {
                Run(loop.Body, inner);
            }
            catch (LoopSignal signal)
            {
                if (signal.IsBreak) break;
            }
        }
    }

    private static void Bind(Scope scope, List<string> targets, object? item, int line)
    {
        if (targets.Count == 1)
        {
            scope.Set(targets[0], item);
            return;
        }
        if (item is not IList<object?> parts || parts.Count != targets.Count)
            throw JinjaLexer.Error(line, $"cannot unpack a {JinjaValues.TypeName(item)} into {targets.Count} names");
        for (int i = 0; i < targets.Count; i++) scope.Set(targets[i], parts[i]);
    }

    private void RunSet(SetNode set, Scope scope)
    {
        object? value;
        if (set.Value is not null)
        {
            value = Evaluate(set.Value, scope);
        }
        else
        {
            var captured = new StringBuilder();
            new JinjaRenderer(captured).Run(set.Body!, scope);
            value = captured.ToString();
        }
        switch (set.Target)
        {
            case NameExpr name:
                scope.Set(name.Name, value);
                break;
            case MemberExpr { Target: NameExpr owner } member when scope.Get(owner.Name) is Namespace space:
                space[member.Name] = value;
                break;
            default:
                throw JinjaLexer.Error(set.Line, "only a name or a namespace attribute can be set");
        }
    }

    /// <summary>What a for loop walks: a list's items, a dictionary's keys, a string's characters.</summary>
    private static List<object?> Items(object? value, int line) => value switch
    {
        IList<object?> list => [.. list],
        OrderedDictionary<string, object?> map => [.. map.Keys],
        Namespace space => [.. space.Keys],
        string text => [.. text.Select(c => (object?)c.ToString())],
        null or Undefined => [],
        _ => throw JinjaLexer.Error(line, $"cannot loop over a {JinjaValues.TypeName(value)}"),
    };

    private object? Evaluate(Expr expression, Scope scope)
    {
        switch (expression)
        {
            case LiteralExpr literal:
                return literal.Value;
            case NameExpr name:
                return scope.Get(name.Name);
            case ListExpr list:
                return list.Items.Select(i => Evaluate(i, scope)).ToList();
            case DictExpr dict:
                var map = new OrderedDictionary<string, object?>();
                foreach (var (key, value) in dict.Entries) map[JinjaValues.Text(Evaluate(key, scope))] = Evaluate(value, scope);
                return map;
            case MemberExpr member:
                return Attribute(Evaluate(member.Target, scope), member.Name);
            case IndexExpr index:
                return Subscript(Evaluate(index.Target, scope), Evaluate(index.Index, scope), index.Line);
            case SliceExpr slice:
                return Slice(Evaluate(slice.Target, scope), Integer(slice.Start, scope), Integer(slice.Stop, scope), Integer(slice.Step, scope), slice.Line);
            case CallExpr call:
                return Call(call, scope);
            case FilterExpr filter:
                return JinjaBuiltins.Filter(filter.Name, Evaluate(filter.Value, scope), filter.Arguments.Select(a => Evaluate(a, scope)).ToList(),
                    filter.Keywords.ToDictionary(k => k.Name, k => Evaluate(k.Value, scope)), filter.Line);
            case TestExpr test:
                bool passed = JinjaBuiltins.Test(test.Name, Evaluate(test.Value, scope), test.Arguments.Select(a => Evaluate(a, scope)).ToList(), test.Line);
                return passed != test.Negated;
            case UnaryExpr { Operator: "not" } not:
                return !JinjaValues.Truthy(Evaluate(not.Operand, scope));
            case UnaryExpr negate:
                return Evaluate(negate.Operand, scope) switch
                {
                    long l => (object)(-l),
                    double d => (object)(-d),
                    var other => throw JinjaLexer.Error(negate.Line, $"cannot negate a {JinjaValues.TypeName(other)}"),
                };
            case BinaryExpr { Operator: "and" } and:
                var left = Evaluate(and.Left, scope);
                return JinjaValues.Truthy(left) ? Evaluate(and.Right, scope) : left;
            case BinaryExpr { Operator: "or" } or:
                var first = Evaluate(or.Left, scope);
                return JinjaValues.Truthy(first) ? first : Evaluate(or.Right, scope);
            case BinaryExpr binary:
                return JinjaBuiltins.Binary(binary.Operator, Evaluate(binary.Left, scope), Evaluate(binary.Right, scope), binary.Line);
            case ConditionalExpr conditional:
                return JinjaValues.Truthy(Evaluate(conditional.Condition, scope)) ? Evaluate(conditional.Then, scope)
                    : conditional.Otherwise is null ? Undefined.Value : Evaluate(conditional.Otherwise, scope);
            default:
                throw JinjaLexer.Error(expression.Line, $"cannot evaluate {expression.GetType().Name}");
        }
    }

    private long? Integer(Expr? expression, Scope scope) => expression is null ? null : Evaluate(expression, scope) switch
    {
        long l => l,
        null => null,
        var other => throw JinjaLexer.Error(expression.Line, $"a slice bound must be an integer, not a {JinjaValues.TypeName(other)}"),
    };

    private object? Call(CallExpr call, Scope scope)
    {
        var arguments = call.Arguments.Select(a => Evaluate(a, scope)).ToList();
        var keywords = call.Keywords.ToDictionary(k => k.Name, k => Evaluate(k.Value, scope));
        if (call.Callee is MemberExpr method)
            return JinjaBuiltins.Method(Evaluate(method.Target, scope), method.Name, arguments, call.Line);
        if (call.Callee is NameExpr global && scope.Get(global.Name) is Undefined)
            return JinjaBuiltins.Global(global.Name, arguments, keywords, call.Line);
        throw JinjaLexer.Error(call.Line, "only methods and the globals raise_exception, namespace and range can be called");
    }

    private static object? Attribute(object? target, string name) => target switch
    {
        OrderedDictionary<string, object?> map => map.TryGetValue(name, out var value) ? value : Undefined.Value,
        Namespace space => space.TryGetValue(name, out var value) ? value : Undefined.Value,
        _ => Undefined.Value,
    };

    private static object? Subscript(object? target, object? index, int line)
    {
        switch (target, index)
        {
            case (OrderedDictionary<string, object?> map, string key):
                return map.TryGetValue(key, out var value) ? value : Undefined.Value;
            case (Namespace space, string key):
                return space.TryGetValue(key, out var member) ? member : Undefined.Value;
            case (IList<object?> list, long i):
                long at = i < 0 ? list.Count + i : i;
                return at >= 0 && at < list.Count ? list[(int)at] : Undefined.Value;
            case (string text, long i):
                long position = i < 0 ? text.Length + i : i;
                return position >= 0 && position < text.Length ? text[(int)position].ToString() : Undefined.Value;
            case (null or Undefined, _):
                return Undefined.Value;
            default:
                throw JinjaLexer.Error(line, $"cannot index a {JinjaValues.TypeName(target)} with a {JinjaValues.TypeName(index)}");
        }
    }

    /// <summary>Python's slice: bounds clamped, negative ones from the end, a negative step walks backwards.</summary>
    private static object? Slice(object? target, long? start, long? stop, long? step, int line)
    {
        var items = target switch
        {
            IList<object?> list => list.ToList(),
            string text => text.Select(c => (object?)c.ToString()).ToList(),
            _ => throw JinjaLexer.Error(line, $"cannot slice a {JinjaValues.TypeName(target)}"),
        };
        long n = items.Count, by = step ?? 1;
        if (by == 0) throw JinjaLexer.Error(line, "a slice step cannot be zero");
        long Clamp(long? bound, long fallback, long low, long high) =>
            bound is not long b ? fallback : Math.Clamp(b < 0 ? b + n : b, low, high);
        var picked = new List<object?>();
        if (by > 0)
            for (long i = Clamp(start, 0, 0, n); i < Clamp(stop, n, 0, n); i += by) picked.Add(items[(int)i]);
        else
            for (long i = Clamp(start, n - 1, -1, n - 1); i > Clamp(stop, -1, -1, n - 1); i += by) picked.Add(items[(int)i]);
        return target is string ? string.Concat(picked.Cast<string>()) : picked;
    }
}

/// <summary>The filters, tests, operators, methods and globals the supported templates use; anything else is named in an error.</summary>
internal static class JinjaBuiltins
{
    public static object? Filter(string name, object? value, List<object?> arguments, Dictionary<string, object?> keywords, int line)
    {
        object? Argument(int i, string keyword) => i < arguments.Count ? arguments[i] : keywords.GetValueOrDefault(keyword);
        return name switch
        {
            "trim" => Text(value, name, line).Trim(),
            "upper" => Text(value, name, line).ToUpperInvariant(),
            "lower" => Text(value, name, line).ToLowerInvariant(),
            "capitalize" => Text(value, name, line) is { Length: > 0 } s ? char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant() : "",
            "string" => JinjaValues.Text(value),
            "length" or "count" => value switch
            {
                string s => (long)s.Length,
                System.Collections.ICollection c => (long)c.Count,
                _ => throw JinjaLexer.Error(line, $"the 'length' filter cannot measure a {JinjaValues.TypeName(value)}"),
            },
            "tojson" => JinjaValues.Json(value, Argument(0, "indent") is long indent ? (int)indent : null, 0),
            "first" => value is IList<object?> { Count: > 0 } list ? list[0] : Undefined.Value,
            "last" => value is IList<object?> { Count: > 0 } items ? items[^1] : Undefined.Value,
            "list" => value is IList<object?> l ? l.ToList() : value is string t ? t.Select(c => (object?)c.ToString()).ToList()
                : throw JinjaLexer.Error(line, $"the 'list' filter cannot convert a {JinjaValues.TypeName(value)}"),
            "join" => value is IList<object?> parts ? string.Join(Argument(0, "d") as string ?? "", parts.Select(JinjaValues.Text))
                : throw JinjaLexer.Error(line, $"the 'join' filter cannot join a {JinjaValues.TypeName(value)}"),
            "default" or "d" => value is Undefined || (Argument(1, "boolean") is true && !JinjaValues.Truthy(value)) ? Argument(0, "default_value") : value,
            "items" => value is OrderedDictionary<string, object?> map ? map.Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList()
                : throw JinjaLexer.Error(line, $"the 'items' filter needs a mapping, not a {JinjaValues.TypeName(value)}"),
            "safe" => value,
            _ => throw JinjaLexer.Error(line, $"the '{name}' filter is not supported"),
        };
    }

    public static bool Test(string name, object? value, List<object?> arguments, int line) => name switch
    {
        "defined" => value is not Undefined,
        "undefined" => value is Undefined,
        "none" => value is null,
        "string" => value is string,
        "number" => value is long or double,
        "integer" => value is long,
        "float" => value is double,
        "boolean" => value is bool,
        "true" => value is true,
        "false" => value is false,
        "mapping" => value is OrderedDictionary<string, object?> or Namespace,
        "iterable" => value is string or IList<object?> or OrderedDictionary<string, object?>,
        "sequence" => value is string or IList<object?>,
        "odd" => value is long odd && odd % 2 != 0,
        "even" => value is long even && even % 2 == 0,
        "equalto" or "eq" or "sameas" => arguments.Count == 1 && Equal(value, arguments[0]),
        _ => throw JinjaLexer.Error(line, $"the '{name}' test is not supported"),
    };

    public static object? Binary(string op, object? left, object? right, int line)
    {
        switch (op)
        {
            case "==":
                return Equal(left, right);
            case "!=":
                return !Equal(left, right);
            case "in":
                return right switch
                {
                    string text when left is string part => text.Contains(part, StringComparison.Ordinal),
                    IList<object?> list => list.Any(item => Equal(item, left)),
                    OrderedDictionary<string, object?> map when left is string key => map.ContainsKey(key),
                    null or Undefined => false,
                    _ => throw JinjaLexer.Error(line, $"'in' cannot search a {JinjaValues.TypeName(right)}"),
                };
            case "~":
                return JinjaValues.Text(left) + JinjaValues.Text(right);
            case "+" when left is string || right is string:
                if (left is not (string or Undefined) || right is not (string or Undefined))
                    throw JinjaLexer.Error(line, $"cannot add a {JinjaValues.TypeName(left)} and a {JinjaValues.TypeName(right)}");
                return JinjaValues.Text(left) + JinjaValues.Text(right);
            case "+" when left is IList<object?> a && right is IList<object?> b:
                return a.Concat(b).ToList();
        }
        if (left is long x && right is long y)
        {
            return op switch
            {
                "+" => x + y,
                "-" => x - y,
                "*" => x * y,
                "/" => (double)x / y,
                "//" => (long)Math.Floor((double)x / y),
                "%" => ((x % y) + y) % y,
                "<" => x < y,
                ">" => x > y,
                "<=" => x <= y,
                ">=" => x >= y,
                _ => throw JinjaLexer.Error(line, $"the operator '{op}' is not supported"),
            };
        }
        if (left is long or double && right is long or double)
        {
            double p = Convert.ToDouble(left, CultureInfo.InvariantCulture), q = Convert.ToDouble(right, CultureInfo.InvariantCulture);
            return op switch
            {
                "+" => p + q,
                "-" => p - q,
                "*" => p * q,
                "/" => p / q,
                "<" => p < q,
                ">" => p > q,
                "<=" => p <= q,
                ">=" => p >= q,
                _ => throw JinjaLexer.Error(line, $"the operator '{op}' is not supported on numbers with a fraction"),
            };
        }
        if (left is string l && right is string r && op is "<" or ">" or "<=" or ">=")
        {
            int order = string.CompareOrdinal(l, r);
            return op switch { "<" => order < 0, ">" => order > 0, "<=" => order <= 0, _ => order >= 0 };
        }
        throw JinjaLexer.Error(line, $"cannot apply '{op}' to a {JinjaValues.TypeName(left)} and a {JinjaValues.TypeName(right)}");
    }

    public static bool Equal(object? left, object? right) => (left, right) switch
    {
        (null, null) or (Undefined, Undefined) => true,
        (long or double, long or double) => Convert.ToDouble(left, CultureInfo.InvariantCulture) == Convert.ToDouble(right, CultureInfo.InvariantCulture),
        (string a, string b) => a == b,
        (bool a, bool b) => a == b,
        (IList<object?> a, IList<object?> b) => a.Count == b.Count && a.Zip(b).All(p => Equal(p.First, p.Second)),
        _ => ReferenceEquals(left, right),
    };

    /// <summary>String methods (Python's), and a mapping's items, keys, values and get.</summary>
    public static object? Method(object? target, string name, List<object?> arguments, int line)
    {
        string? Argument(int i) => i < arguments.Count ? arguments[i] as string : null;
        if (target is string text)
        {
            return name switch
            {
                "startswith" => text.StartsWith(Argument(0) ?? "", StringComparison.Ordinal),
                "endswith" => text.EndsWith(Argument(0) ?? "", StringComparison.Ordinal),
                "strip" => Argument(0) is { } both ? text.Trim(both.ToCharArray()) : text.Trim(),
                "lstrip" => Argument(0) is { } front ? text.TrimStart(front.ToCharArray()) : text.TrimStart(),
                "rstrip" => Argument(0) is { } back ? text.TrimEnd(back.ToCharArray()) : text.TrimEnd(),
                "upper" => text.ToUpperInvariant(),
                "lower" => text.ToLowerInvariant(),
                "replace" => text.Replace(Argument(0) ?? "", Argument(1) ?? "", StringComparison.Ordinal),
                "split" => Split(text, Argument(0), arguments.Count > 1 && arguments[1] is long max ? (int)max : -1),
                _ => throw JinjaLexer.Error(line, $"the string method '{name}' is not supported"),
            };
        }
        if (target is OrderedDictionary<string, object?> map)
        {
            return name switch
            {
                "items" => map.Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList(),
                "keys" => map.Keys.Select(k => (object?)k).ToList(),
                "values" => map.Values.ToList(),
                "get" => Argument(0) is { } key && map.TryGetValue(key, out var value) ? value : arguments.Count > 1 ? arguments[1] : null,
                _ => throw JinjaLexer.Error(line, $"the mapping method '{name}' is not supported"),
            };
        }
        throw JinjaLexer.Error(line, $"a {JinjaValues.TypeName(target)} has no method '{name}' here");
    }

    public static object? Global(string name, List<object?> arguments, Dictionary<string, object?> keywords, int line)
    {
        switch (name)
        {
            case "raise_exception":
                throw new ChatTemplateException(arguments.Count > 0 ? JinjaValues.Text(arguments[0]) : "the chat template raised an exception");
            case "namespace":
                var space = new Namespace();
                foreach (var (key, value) in keywords) space[key] = value;
                return space;
            case "range" when arguments.All(a => a is long):
                var bounds = arguments.Cast<long>().ToArray();
                var (start, stop, step) = bounds.Length switch
                {
                    1 => (0L, bounds[0], 1L),
                    2 => (bounds[0], bounds[1], 1L),
                    3 => (bounds[0], bounds[1], bounds[2]),
                    _ => throw JinjaLexer.Error(line, "range takes one to three integers"),
                };
                var numbers = new List<object?>();
                for (long i = start; step > 0 ? i < stop : i > stop; i += step) numbers.Add(i);
                return numbers;
            default:
                throw JinjaLexer.Error(line, $"the function '{name}' is not supported");
        }
    }

    /// <summary>Python's str.split: on runs of whitespace without a separator (no empty pieces), else on each occurrence.</summary>
    private static List<object?> Split(string text, string? separator, int maxSplit)
    {
        if (separator is null)
            return [.. text.Split((char[]?)null, maxSplit < 0 ? int.MaxValue : maxSplit + 1, StringSplitOptions.RemoveEmptyEntries)];
        return [.. text.Split(separator, maxSplit < 0 ? int.MaxValue : maxSplit + 1)];
    }

    private static string Text(object? value, string filter, int line) =>
        value as string ?? (value is Undefined ? "" : throw JinjaLexer.Error(line, $"the '{filter}' filter needs a string, not a {JinjaValues.TypeName(value)}"));
}

namespace Attribution.Tests.Tokenization;

using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Attribution.Chat;

/// <summary>
/// Our chat-template interpreter against @huggingface/jinja (run by node, tools/tokenizers/render-chat.mjs)
/// on the real templates of Gemma-3, Qwen3, Llama-3 and Llama-3.1: every case byte for byte, and
/// a template that raises must raise here too.
/// </summary>
public sealed class ChatTemplateTests
{
    public static readonly string[] Models = ["gemma3", "qwen3", "llama3", "llama3_1"];

    /// <summary>Message lists every template is rendered with (Gemma's alternation rule makes some of them errors: both must agree).</summary>
    private static readonly (string Role, string Content)[][] Conversations =
    [
        [("user", "Hello")],
        [("user", "Hello"), ("assistant", "Hi there! How can I help?")],
        [("system", "You are a helpful assistant."), ("user", "What is 2+2?")],
        [("system", "Be brief."), ("user", "Capital of France?"), ("assistant", "Paris."), ("user", "And of Spain?")],
        [("user", "1"), ("assistant", "2"), ("user", "3"), ("assistant", "4"), ("user", "5")],
        [("user", "")],
        [("user", "  padded with spaces and a newline  \n")],
        [("user", "Grüße, 世界 🌍 — ça va?")],
        [("user", "line one\nline two\n\nline four")],
        [("user", "What is the capital of Texas?"), ("assistant", "")],
        [("system", ""), ("user", "empty system prompt")],
        [("user", "quotes \" ' and a backslash \\ and {{ braces }} {% tags %}")],
        [("user", "a"), ("user", "b")],
        [("assistant", "an assistant first")],
        [("system", "only a system prompt")],
        [("user", "tabs\tand\r\nreturns")],
    ];

    public static TheoryData<string> ModelNames => [.. Models];

    [Theory]
    [MemberData(nameof(ModelNames))]
    public void The_real_template_renders_exactly_as_huggingface_jinja(string model)
    {
        var (template, bos, eos) = RealTemplate(model);
        var cases = new List<JsonObject>();
        foreach (var conversation in Conversations)
        {
            foreach (bool generationPrompt in new[] { true, false })
            {
                var variables = new JsonObject
                {
                    ["messages"] = Messages(conversation),
                    ["add_generation_prompt"] = generationPrompt,
                };
                if (bos is not null) variables["bos_token"] = bos;
                if (eos is not null) variables["eos_token"] = eos;
                cases.Add(variables);
            }
        }
        if (model == "qwen3") cases.AddRange(Qwen3Cases(eos!));
        Assert.True(cases.Count >= 20);
        AssertSameAsReference(template, cases);
    }

    /// <summary>Qwen3's thinking and tool branches: enable_thinking, reasoning in content or beside it, tool definitions, tool calls and results.</summary>
    private static IEnumerable<JsonObject> Qwen3Cases(string eos)
    {
        JsonObject Variables(JsonArray messages, bool generationPrompt, Action<JsonObject>? extra = null)
        {
            var v = new JsonObject { ["messages"] = messages, ["add_generation_prompt"] = generationPrompt, ["eos_token"] = eos };
            extra?.Invoke(v);
            return v;
        }
        foreach (bool? thinking in new bool?[] { true, false, null })
        {
            yield return Variables(Messages([("user", "Think about 17 * 23.")]), true, v =>
            {
                if (thinking is bool b) v["enable_thinking"] = b;
            });
        }
        yield return Variables(Messages([("user", "Why?"), ("assistant", "<think>\nreasoning here\n</think>\n\nBecause."), ("user", "Sure?")]), true);
        yield return Variables(Messages([("user", "Why?"), ("assistant", "<think>\nreasoning\n</think>\n\nBecause.")]), false);
        yield return Variables(JsonNode.Parse("""
            [{"role": "user", "content": "Why?"}, {"role": "assistant", "content": "Because.", "reasoning_content": "Let me think."}]
            """)!.AsArray(), false);
        var tools = JsonNode.Parse("""
            [{"type": "function", "function": {"name": "get_weather", "description": "The weather in a city",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
             {"type": "function", "function": {"name": "add", "parameters": {"a": 1, "b": 2.5, "exact": true, "unit": null}}}]
            """)!.AsArray();
        yield return Variables(Messages([("user", "Weather in Paris?")]), true, v => v["tools"] = tools.DeepClone());
        yield return Variables(Messages([("system", "You are a weather bot."), ("user", "Weather in Paris?")]), true, v => v["tools"] = tools.DeepClone());
        yield return Variables(JsonNode.Parse("""
            [{"role": "user", "content": "Weather in Paris and Rome?"},
             {"role": "assistant", "content": "", "tool_calls": [
                {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Rome\"}"}}]},
             {"role": "tool", "content": "18 C"},
             {"role": "tool", "content": "21 C"},
             {"role": "assistant", "content": "Paris 18 C, Rome 21 C."},
             {"role": "user", "content": "<tool_response>x</tool_response>"}]
            """)!.AsArray(), true, v => v["tools"] = tools.DeepClone());
    }

    /// <remarks>
    /// One known divergence is kept out of these cases: @huggingface/jinja's strip/lstrip/rstrip ignore
    /// their characters argument and strip all whitespace; we strip the given characters, as Python
    /// (and so transformers, which renders for the reference server) does. Qwen3's template calls
    /// them with "\n"; the two differ only when a reasoning block is padded with spaces. A second:
    /// @huggingface/jinja drops what an iteration wrote before its {% break %}; Jinja2 keeps it.
    /// </remarks>
    [Fact]
    public void The_interpreter_s_constructs_render_as_huggingface_jinja()
    {
        string[] templates =
        [
            "a  {%- if true %}  b  {% endif -%}  c\n",
            "{% for x in items %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}{{ '!' if loop.first }}{{ '.' if loop.last }} {% endfor %}",
            "{% for x in items if x > 1 %}{{ x }}{% else %}none{% endfor %}|{% for x in [] %}x{% else %}empty{% endfor %}",
            "{{ items[1:] }}{{ items[::-1] }}{{ items[:-1] }}{{ 'abcdef'[1:4] }}{{ 'abc'[::-1] }}{{ items[-1] }}",
            "{% set ns = namespace(total=0, seen=false) %}{% for x in items %}{% set ns.total = ns.total + x %}{% endfor %}{{ ns.total }} {{ ns.seen }}",
            "{% set x = 1 %}{% for i in items %}{% set x = i %}{% endfor %}{{ x }}",
            "{{ '  hi  ' | trim }}|{{ 'Hi' | upper }}{{ 'Hi' | lower }}|{{ items | length }}|{{ items | join('-') }}|{{ items | first }}{{ items | last }}",
            "{{ 7 // 2 }} {{ 7 % 3 }} {{ -7 // 2 }} {{ 1 + 2 * 3 }} {{ 'a' ~ 1 ~ 'b' }} {{ 10 / 4 }}",
            "{{ 'x' in 'xyz' }} {{ 2 in items }} {{ 9 not in items }} {{ 'k' in {'k': 1} }}",
            "{{ undefined_thing }}{{ undefined_thing.attr }}|{{ none is none }}{{ 1 is number }}{{ 'a' is string }}{{ items is iterable }}{{ x is defined }}{{ x is not defined }}",
            "{{ 'a,b,,c'.split(',') }} {{ '  a b  '.split() }} {{ '\n\nhi\n'.strip('\n') }}|{{ '\n\nhi'.lstrip('\n') }} {{ 'hello'.startswith('he') }} {{ 'a-b'.replace('-', '+') }}",
            "{{ {'b': 1, 'a': [1, 'two', none, true, 2.5]} | tojson }}\n{{ {'a': {'b': [1, 2]}} | tojson(indent=2) }}",
            "{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}{{ {'a': 1}.get('a') }}{{ {'a': 1}.get('z', 'dflt') }}",
            "{%- for x in items -%}\n  {%- if x == 3 %}{% break %}{% endif -%}\n  {{- x -}}\n{%- endfor %}\n  done",
            "{# a comment #}  {%- set greeting = 'hi' -%}  {{ greeting if greeting else 'no' }} {{ 'yes' if false else 'no' }}\n",
        ];
        var cases = templates.Select(t => (t, new JsonObject { ["items"] = new JsonArray(1, 2, 3) })).ToList();
        var reference = ReferenceRender(cases.Select(c => (c.t, c.Item2)).ToList());
        for (int i = 0; i < cases.Count; i++)
        {
            string ours = ChatTemplate.Parse(cases[i].t).Render(cases[i].Item2);
            Assert.True(reference[i].Output == ours, $"template {i}: {cases[i].t}\nreference: {reference[i].Output ?? "error " + reference[i].Error}\nours:      {ours}");
        }
    }

    [Fact]
    public void Strip_and_break_follow_jinja2_where_huggingface_jinja_differs()
    {
        var rendered = ChatTemplate.Parse("[{{ '\\n hi \\n'.strip('\\n') }}][{{ '  x'.lstrip(' ') }}][{{ 'x\\n\\n'.rstrip() }}]").Render(new JsonObject());
        Assert.Equal("[ hi ][x][x]", rendered);
        var broken = ChatTemplate.Parse("{% for x in [1, 2, 3] %}{{ x }}{% if x == 2 %}{% break %}{% endif %}{% endfor %}").Render(new JsonObject());
        Assert.Equal("12", broken);
    }

    [Theory]
    [InlineData("{% macro greet(name) %}hi {{ name }}{% endmacro %}{{ greet('x') }}", "'macro' tag")]
    [InlineData("{{ messages | wordwrap }}", "'wordwrap' filter")]
    [InlineData("{{ 'abc'.zfill(5) }}", "'zfill'")]
    [InlineData("{{ strftime_now('%Y') }}", "'strftime_now'")]
    [InlineData("{% if x is divisibleby(3) %}{% endif %}", "'divisibleby' test")]
    [InlineData("{{ 2 ** 3 }}", "'**' operator")]
    public void A_construct_the_interpreter_lacks_is_named_never_rendered_wrongly(string template, string named)
    {
        var error = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse(template).Render(new JsonObject { ["messages"] = new JsonArray(), ["x"] = 3 }));
        Assert.Contains(named, error.Message, StringComparison.Ordinal);
        Assert.Contains("line 1", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Gemma3_s_own_exception_is_raised_with_its_message()
    {
        var (template, bos, eos) = RealTemplate("gemma3");
        var error = Assert.Throws<ChatTemplateException>(() =>
            ChatTemplate.Parse(template).Render([new("user", "a"), new("user", "b")], addGenerationPrompt: true, bos, eos));
        Assert.Equal("Conversation roles must alternate user/assistant/user/assistant/...", error.Message);
    }

    private static JsonArray Messages((string Role, string Content)[] turns) =>
        new([.. turns.Select(t => (JsonNode)new JsonObject { ["role"] = t.Role, ["content"] = t.Content })]);

    private static (string Template, string? Bos, string? Eos) RealTemplate(string model)
    {
        using var config = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(RealTokenizers.PackageFolder(model), "tokenizer_config.json")));
        var root = config.RootElement;
        string? Token(string name) => root.TryGetProperty(name, out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        return (root.GetProperty("chat_template").GetString()!, Token("bos_token"), Token("eos_token"));
    }

    /// <summary>Every case through both renderers; a reference error must be an error here, a reference output the same bytes.</summary>
    private static void AssertSameAsReference(string template, List<JsonObject> cases)
    {
        var reference = ReferenceRender(cases.Select(c => (template, c)).ToList());
        var parsed = ChatTemplate.Parse(template);
        var differences = new List<string>();
        for (int i = 0; i < cases.Count; i++)
        {
            string? ours;
            try
            {
                ours = parsed.Render(cases[i]);
            }
            catch (ChatTemplateException e)
            {
                ours = null;
                if (reference[i].Error is null) differences.Add($"case {i} {cases[i].ToJsonString()}: we raised '{e.Message}', the reference rendered:\n{reference[i].Output}");
                continue;
            }
            if (reference[i].Error is { } error) differences.Add($"case {i} {cases[i].ToJsonString()}: the reference raised '{error}', we rendered:\n{ours}");
            else if (reference[i].Output != ours) differences.Add($"case {i} {cases[i].ToJsonString()}:\nreference: {JsonSerializer.Serialize(reference[i].Output)}\nours:      {JsonSerializer.Serialize(ours)}");
        }
        Assert.True(differences.Count == 0, $"{differences.Count} of {cases.Count} cases differ:\n" + string.Join("\n\n", differences));
    }

    private sealed record ReferenceResult(string? Output, string? Error);

    /// <summary>All cases in one node process running @huggingface/jinja.</summary>
    private static List<ReferenceResult> ReferenceRender(List<(string Template, JsonObject Variables)> cases)
    {
        string script = RealTokenizers.ToolsFile("render-chat.mjs");
        var input = new JsonArray([.. cases.Select(c => (JsonNode)new JsonObject { ["template"] = c.Template, ["variables"] = c.Variables.DeepClone() })]);
        using var node = Process.Start(new ProcessStartInfo("node", [script])
        {
            WorkingDirectory = Path.GetDirectoryName(script)!,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        }) ?? throw new InvalidOperationException("node could not be started");
        var output = node.StandardOutput.ReadToEndAsync();
        var errors = node.StandardError.ReadToEndAsync();
        node.StandardInput.Write(input.ToJsonString());
        node.StandardInput.Close();
        Assert.True(node.WaitForExit(TimeSpan.FromMinutes(2)), "the reference renderer did not finish");
        Assert.True(node.ExitCode == 0, $"the reference renderer failed: {errors.Result}");
        return [.. JsonNode.Parse(output.Result)!.AsArray().Select(r => new ReferenceResult(r!["output"]?.GetValue<string>(), r["error"]?.GetValue<string>()))];
    }
}

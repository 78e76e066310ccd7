namespace Attribution.Chat;

using System.Text.Json;
using System.Text.Json.Nodes;

/// <summary>How one role's turns are written: the literal before its content and the one after.</summary>
public sealed record TurnDelimiters(string Header, string Footer);

/// <summary>
/// A model's chat format: its chat template (tokenizer_config.json <c>chat_template</c>, or a
/// <c>chat_template.jinja</c> beside it), its BOS and EOS texts, and the Neuronpedia graph server's
/// rules for turning chat messages into one prompt (<see cref="Render"/>) and a rendered prompt
/// back into messages (<see cref="Parse"/>), with the delimiters learned from the template itself.
/// </summary>
public sealed class ChatFormat
{
    /// <summary>A content no template alters or escapes, to find where each content lands.</summary>
    private const string Sentinel = "\u0000NPPARSE\u0000";

    private static readonly string[] ProbeRoles = ["system", "user", "assistant"];

    private readonly string? templateSource;
    private readonly Lazy<ChatTemplate> template;
    private readonly Lazy<IReadOnlyDictionary<string, TurnDelimiters>> delimiters;

    public ChatFormat(string? templateSource, string? bosToken, string? eosToken)
    {
        this.templateSource = templateSource;
        BosToken = bosToken;
        EosToken = eosToken;
        // Parsed on first use: a template this renderer cannot handle fails the chat requests, not the model's loading.
        template = new(() => ChatTemplate.Parse(templateSource
            ?? throw new ChatTemplateException("this model has no chat template (tokenizer_config.json chat_template): send the prompt as text")));
        delimiters = new(LearnDelimiters);
    }

    /// <summary>No template: chat input is refused, every prompt is plain text.</summary>
    public static ChatFormat None { get; } = new(null, null, null);

    public bool HasTemplate => templateSource is not null;

    public string? BosToken { get; }

    public string? EosToken { get; }

    /// <summary>Reads tokenizer_config.json (template, bos_token, eos_token) and chat_template.jinja from a model folder.</summary>
    public static ChatFormat FromModelDirectory(string directory)
    {
        string configPath = Path.Combine(directory, "tokenizer_config.json"), jinjaPath = Path.Combine(directory, "chat_template.jinja");
        string? source = File.Exists(jinjaPath) ? File.ReadAllText(jinjaPath) : null;
        if (!File.Exists(configPath)) return new ChatFormat(source, null, null);
        using var json = JsonDocument.Parse(File.ReadAllBytes(configPath));
        var root = json.RootElement;
        source ??= root.TryGetProperty("chat_template", out var chat) ? TemplateText(chat) : null;
        return new ChatFormat(source, TokenText(root, "bos_token"), TokenText(root, "eos_token"));
    }

    /// <summary>
    /// The prompt for chat <paramref name="messages"/>, as the reference renders it: the final turn
    /// stays open so the model continues it. An empty final assistant turn becomes the generation
    /// prompt; any other final message is continued (transformers' continue_final_message: the
    /// render cut after that message's content), or, where that fails, a generation prompt follows.
    /// </summary>
    public string Render(IReadOnlyList<ChatMessage> messages)
    {
        if (messages.Count > 1 && messages[^1].Role == "assistant" && messages[^1].Content.Trim().Length == 0)
            return Apply(messages.Take(messages.Count - 1).ToList(), addGenerationPrompt: true);
        try
        {
            return ContinueFinalMessage(messages);
        }
        catch (ChatTemplateException)
        {
            return Apply(messages, addGenerationPrompt: true);
        }
    }

    /// <summary>The prompt without a leading BOS text: the tokenizer adds its own.</summary>
    public string StripLeadingBos(string prompt) =>
        BosToken is { Length: > 0 } bos && prompt.StartsWith(bos, StringComparison.Ordinal) ? prompt[bos.Length..] : prompt;

    /// <summary>
    /// The chat turns of a rendered prompt (BOS already stripped), the inverse of <see cref="Render"/>;
    /// null when the model has no template or the prompt holds no turn header (plain text). Roles come
    /// back canonical: Gemma's "model" turns are "assistant".
    /// </summary>
    public List<ChatMessage>? Parse(string prompt)
    {
        if (!HasTemplate || delimiters.Value.Count == 0) return null;
        var found = new List<(int At, string Role, string Header)>();
        foreach (var (role, turn) in delimiters.Value)
        {
            for (int at = prompt.IndexOf(turn.Header, StringComparison.Ordinal); at >= 0; at = prompt.IndexOf(turn.Header, at + turn.Header.Length, StringComparison.Ordinal))
                found.Add((at, role, turn.Header));
        }
        if (found.Count == 0) return null;

        // At one offset the longest header wins, so a header that is a prefix of another cannot claim it.
        var headers = new List<(int At, string Role, string Header)>();
        int consumedUntil = -1;
        foreach (var match in found.OrderBy(m => m.At).ThenByDescending(m => m.Header.Length))
        {
            if (match.At < consumedUntil) continue;
            headers.Add(match);
            consumedUntil = match.At + match.Header.Length;
        }

        var messages = new List<ChatMessage>();
        for (int i = 0; i < headers.Count; i++)
        {
            int start = headers[i].At + headers[i].Header.Length;
            int end = i + 1 < headers.Count ? headers[i + 1].At : prompt.Length;
            string content = prompt[start..end];
            string footer = delimiters.Value[headers[i].Role].Footer;
            if (footer.Length > 0 && content.EndsWith(footer, StringComparison.Ordinal)) content = content[..^footer.Length];
            messages.Add(new ChatMessage(headers[i].Role, content));
        }
        return messages;
    }

    /// <summary>What transformers' apply_chat_template(messages, tokenize=False) renders: the special tokens are variables, tools and documents none.</summary>
    private string Apply(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        var variables = new JsonObject
        {
            ["messages"] = new JsonArray([.. messages.Select(m => (JsonNode)new JsonObject { ["role"] = m.Role, ["content"] = m.Content })]),
            ["add_generation_prompt"] = addGenerationPrompt,
            ["tools"] = null,
            ["documents"] = null,
        };
        if (BosToken is not null) variables["bos_token"] = BosToken;
        if (EosToken is not null) variables["eos_token"] = EosToken;
        return template.Value.Render(variables);
    }

    /// <summary>transformers' continue_final_message: the render ends where the final message's (stripped) content last ends.</summary>
    private string ContinueFinalMessage(IReadOnlyList<ChatMessage> messages)
    {
        string rendered = Apply(messages, addGenerationPrompt: false);
        string final = messages.Count == 0 ? "" : messages[^1].Content.Trim();
        int at = rendered.LastIndexOf(final, StringComparison.Ordinal);
        if (at < 0) throw new ChatTemplateException("the final message does not appear in the rendered chat, so it cannot be continued");
        return rendered[..(at + final.Length)];
    }

    /// <summary>
    /// Each role's header and footer, learned by rendering sentinel contents: a lone user turn
    /// gives the user footer; a role between two user turns gives its undecorated header (Qwen3
    /// decorates a trailing assistant turn with an empty think block); a template that refuses
    /// two user turns in a row (Gemma) leaves the lone turn's prefix, BOS stripped.
    /// </summary>
    private IReadOnlyDictionary<string, TurnDelimiters> LearnDelimiters()
    {
        var learned = new Dictionary<string, TurnDelimiters>();
        if (Probe("user") is not [var userPrefix, var userFooter]) return learned;
        string? HeaderAfterUser(string[]? chunks) =>
            chunks is not null && chunks[1].StartsWith(userFooter, StringComparison.Ordinal) ? chunks[1][userFooter.Length..] : null;

        foreach (var role in ProbeRoles)
        {
            var pair = Probe("user", role);
            string? header = HeaderAfterUser(Probe("user", role, "user")) ?? HeaderAfterUser(pair);
            if (header is null && role == "user") header = StripLeadingBos(userPrefix);
            if (header is null) continue;
            learned[role] = new TurnDelimiters(header, pair is not null ? pair[^1] : userFooter);
        }
        return learned;
    }

    /// <summary>The literal chunks around sentinel contents of these roles, or null when the template refuses them.</summary>
    private string[]? Probe(params string[] roles)
    {
        string rendered;
        try
        {
            rendered = Apply(roles.Select(r => new ChatMessage(r, Sentinel)).ToList(), addGenerationPrompt: false);
        }
        catch (ChatTemplateException)
        {
            return null;
        }
        var chunks = rendered.Split(Sentinel);
        return chunks.Length == roles.Length + 1 ? chunks : null;
    }

    /// <summary>chat_template as a string, or transformers' list of named templates (the "default" one).</summary>
    private static string? TemplateText(JsonElement chat) => chat.ValueKind switch
    {
        JsonValueKind.String => chat.GetString(),
        JsonValueKind.Array => chat.EnumerateArray()
            .Where(t => t.TryGetProperty("name", out var n) && n.GetString() == "default" && t.TryGetProperty("template", out _))
            .Select(t => t.GetProperty("template").GetString()).FirstOrDefault(),
        _ => null,
    };

    /// <summary>A special token's text: a string, or an AddedToken object's content.</summary>
    private static string? TokenText(JsonElement root, string name) =>
        !root.TryGetProperty(name, out var token) ? null
        : token.ValueKind == JsonValueKind.String ? token.GetString()
        : token.ValueKind == JsonValueKind.Object && token.TryGetProperty("content", out var content) ? content.GetString()
        : null;
}

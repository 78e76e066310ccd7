namespace GraphFunctions.Tests.Service;

using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Attribution.Models;
using Attribution.Synthetic;
using Attribution.Tests.Support;
using Attribution.Tests.Tokenization;
using GraphFunctions.Tests.Support;

/// <summary>
/// Chat input end to end (docs/api.md, "Chat prompts"): a tiny Gemma-3 whose tokenizer_config.json
/// carries the real Gemma-3 chat template, served by the local host; <c>messages</c> through
/// /generate-graph, /forward-pass and /steer, and /parse-chat-prompt answering the reference's shape.
/// </summary>
[Collection(UsesLocalService.Name)]
public sealed class ChatPromptTests(ChatPromptTests.Fixture fixture) : IClassFixture<ChatPromptTests.Fixture>
{
    /// <summary>What the reference server renders for a question with an empty assistant turn (its own test's example).</summary>
    private const string Rendered = "<bos><start_of_turn>user\nWhat is the capital of Texas?<end_of_turn>\n<start_of_turn>model\n";

    private const string Question = """[{"role": "user", "content": "What is the capital of Texas?"}, {"role": "assistant", "content": ""}]""";

    private readonly LocalService service = fixture.Service;

    public sealed class Fixture : LocalServiceFixture, IDisposable
    {
        private readonly TempFolder folder = new("gf-chat-model");

        public Fixture()
        {
            string model = folder["model"], transcoders = folder["transcoders"];
            TinyCheckpoints.WriteModel(model, new TinyModelSpec
            {
                Architecture = ModelArchitecture.Gemma3, VocabSize = TinyTokenizerFactory.VocabSize, Seed = 8,
                BosTokenId = TinyTokenizerFactory.BosId, EosTokenId = TinyTokenizerFactory.EosId,
            });
            TinyTokenizerFactory.Write(Path.Combine(model, "tokenizer.json"));
            using var real = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(RealTokenizers.PackageFolder("gemma3"), "tokenizer_config.json")));
            var config = new JsonObject
            {
                ["bos_token"] = TinyTokenizerFactory.BosToken,
                ["eos_token"] = TinyTokenizerFactory.EosToken,
                ["chat_template"] = real.RootElement.GetProperty("chat_template").GetString(),
            };
            File.WriteAllText(Path.Combine(model, "tokenizer_config.json"), config.ToJsonString());
            ConfigPath = TinyCheckpoints.WriteTranscoders(transcoders, model, new TinyTranscoderSpec { Seed = 3 });
            ModelFolder = model;
        }

        public string ModelFolder { get; }

        public string ConfigPath { get; }

        protected override IDictionary<string, string?>? Settings => new Dictionary<string, string?>
        {
            ["MODEL_ID"] = "",   // named by the folder's config.json
            ["MODEL_PATH"] = ModelFolder,
            ["TRANSCODER_SET"] = ConfigPath,
            ["TOKEN_LIMIT"] = "200",   // the tiny tokenizer spells the turn markers byte by byte
        };

        public void Dispose() => folder.Dispose();
    }

    private async Task<JsonDocument> PostAsync(string route, string body, HttpStatusCode expected = HttpStatusCode.OK)
    {
        using var response = await service.Http.PostAsync(route, LocalService.Json(body));
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(expected == response.StatusCode, $"{route}: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text);
    }

    [Fact]
    public async Task Forward_pass_renders_messages_with_the_model_template_and_one_BOS()
    {
        using var answer = await PostAsync("/forward-pass", $$"""{"messages": {{Question}}}""");
        Assert.Equal(Rendered, answer.RootElement.GetProperty("prompt").GetString());
        var tokens = answer.RootElement.GetProperty("input_tokens").EnumerateArray().Select(t => t.GetString()).ToList();
        Assert.Equal("<bos>", tokens[0]);
        Assert.Single(tokens, t => t == "<bos>");
        Assert.Equal(Rendered, string.Concat(tokens));
    }

    [Fact]
    public async Task A_final_user_turn_is_continued_not_closed()
    {
        using var answer = await PostAsync("/forward-pass", """{"messages": [{"role": "user", "content": "  The capital of Texas is  "}]}""");
        Assert.Equal("<bos><start_of_turn>user\nThe capital of Texas is", answer.RootElement.GetProperty("prompt").GetString());
    }

    [Fact]
    public async Task Messages_win_over_prompt_as_in_the_reference()
    {
        using var answer = await PostAsync("/forward-pass", $$"""{"prompt": "ignored", "messages": {{Question}}}""");
        Assert.Equal(Rendered, answer.RootElement.GetProperty("prompt").GetString());
    }

    [Fact]
    public async Task A_graph_of_messages_shows_the_rendered_prompt_BOS_included()
    {
        using var graph = await PostAsync("/generate-graph", $$"""{"messages": {{Question}}, "model_id": "tiny/gemma3", "max_feature_nodes": 20, "slug_identifier": "chat-graph"}""");
        var metadata = graph.RootElement.GetProperty("metadata");
        Assert.Equal(Rendered, metadata.GetProperty("prompt").GetString());
        var tokens = metadata.GetProperty("prompt_tokens").EnumerateArray().Select(t => t.GetString()).ToList();
        Assert.Equal("<bos>", tokens[0]);
        Assert.Single(tokens, t => t == "<bos>");
        Assert.Equal("gemma3", metadata.GetProperty("scan").GetString());   // named by the model's _name_or_path, not the folder "model"
    }

    [Fact]
    public async Task Steer_takes_messages_and_continues_after_the_open_model_turn()
    {
        using var answer = await PostAsync("/steer", $$"""
            {"model_id": "tiny/gemma3", "messages": {{Question}}, "n_tokens": 3,
             "features": [], "temperature": 0}
            """);
        foreach (var name in new[] { "DEFAULT_GENERATION", "STEERED_GENERATION" })
            Assert.StartsWith(Rendered, answer.RootElement.GetProperty(name).GetString(), StringComparison.Ordinal);
        var positions = answer.RootElement.GetProperty("DEFAULT_LOGITS_BY_TOKEN").EnumerateArray().Select(p => p.GetProperty("token").GetString()).ToList();
        Assert.Single(positions, t => t == "<bos>");
    }

    [Fact]
    public async Task Parse_chat_prompt_answers_the_reference_shape()
    {
        using var chat = await PostAsync("/parse-chat-prompt", JsonSerializer.Serialize(new { prompt = Rendered }));
        var expected = """
            {"messages":[{"role":"user","content":"What is the capital of Texas?"},{"role":"assistant","content":""}],"is_chat":true,"prompt":"<start_of_turn>user\nWhat is the capital of Texas?<end_of_turn>\n<start_of_turn>model\n","unsteerable_positions":[0]}
            """;
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(expected), JsonNode.Parse(chat.RootElement.GetRawText())), chat.RootElement.GetRawText());

        using var plain = await PostAsync("/parse-chat-prompt", """{"prompt": "<bos>The capital of Texas is"}""");
        Assert.Equal(JsonValueKind.Null, plain.RootElement.GetProperty("messages").ValueKind);
        Assert.False(plain.RootElement.GetProperty("is_chat").GetBoolean());
        Assert.Equal("The capital of Texas is", plain.RootElement.GetProperty("prompt").GetString());
        Assert.Equal([0], plain.RootElement.GetProperty("unsteerable_positions").EnumerateArray().Select(p => p.GetInt32()));
    }

    [Fact]
    public async Task Turns_the_template_refuses_get_its_own_message_as_a_400()
    {
        using var refused = await PostAsync("/forward-pass", """{"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}""", HttpStatusCode.BadRequest);
        Assert.Contains("Conversation roles must alternate", refused.RootElement.GetProperty("error").GetString(), StringComparison.Ordinal);
    }
}

namespace GraphFunctions.Tests.Infra;

using System.Text.Json.Nodes;
using GraphFunctions.Configuration;

/// <summary>
/// SettingNames.All is the one list of settings the app reads; local.settings.example.json and the
/// Bicep app settings must list exactly those names.
/// </summary>
public class SettingsListTests
{
    [Fact]
    public void Local_settings_example_lists_exactly_the_settings_the_app_reads()
    {
        var file = JsonNode.Parse(File.ReadAllText(RepositoryFiles.PathOf("local.settings.example.json")))!.AsObject();

        Assert.False((bool?)file["IsEncrypted"] ?? true, "local.settings.example.json must say IsEncrypted: false");
        var values = file["Values"]!.AsObject();
        SetDifference.AssertSameNames(SettingNames.All, values.Select(pair => pair.Key), "local.settings.example.json");
        Assert.All(values, pair => Assert.True(
            pair.Value is JsonValue value && value.TryGetValue(out string? _),
            $"local.settings.example.json: {pair.Key} must be a string"));
    }

    [Fact]
    public void Bicep_app_settings_list_exactly_the_settings_the_app_reads()
    {
        var env = ContainerEnvironment();
        var names = env.Select(entry => (string)entry["name"]!).ToList();

        Assert.True(names.Count == names.Distinct(StringComparer.Ordinal).Count(), $"duplicate env names: {string.Join(", ", names)}");
        // "AzureWebJobsStorage__accountName" and friends configure the setting "AzureWebJobsStorage"
        // (an identity-based connection: a configuration section instead of a connection string).
        var settings = names.Select(name => name.Split("__")[0]);
        SetDifference.AssertSameNames(SettingNames.All, settings, "the Bicep app settings (functionapp.bicep env)");
    }

    [Fact]
    public void Host_storage_connects_with_the_managed_identity()
    {
        var app = ArmTemplate.Compiled.Single("Microsoft.App/containerApps");
        var env = ContainerEnvironment().ToDictionary(entry => (string)entry["name"]!);

        Assert.Equal("managedidentity", ArmScope.AsString(env["AzureWebJobsStorage__credential"]["value"]));
        Assert.Contains("outputs.clientId.value", app.Scope.Resolve(env["AzureWebJobsStorage__clientId"]["value"])?.ToString(), StringComparison.Ordinal);
        Assert.Contains("outputs.name.value", app.Scope.Resolve(env["AzureWebJobsStorage__accountName"]["value"])?.ToString(), StringComparison.Ordinal);
        Assert.False(env.ContainsKey(SettingNames.WebJobsStorage), "AzureWebJobsStorage must not be a connection string in Azure");
    }

    private static List<JsonObject> ContainerEnvironment()
    {
        var app = ArmTemplate.Compiled.Single("Microsoft.App/containerApps");
        var containers = app.At("properties.template.containers")!.AsArray();
        Assert.Single(containers);
        return containers[0]!["env"]!.AsArray().Select(entry => entry!.AsObject()).ToList();
    }
}

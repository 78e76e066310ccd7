namespace GraphFunctions.Tests.Infra;

using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using GraphFunctions.Configuration;

/// <summary>
/// Reads the ARM template compiled from infra/bicep and checks what the deployment promises:
/// the GPU workload profile the Functions app runs on, the user-assigned identity and its
/// least-privilege roles, and secrets that only ever travel as Key Vault references.
/// </summary>
public partial class BicepTemplateTests
{
    private const string ContainerApp = "Microsoft.App/containerApps";
    private const string ManagedEnvironment = "Microsoft.App/managedEnvironments";

    /// <summary>Built-in role definition ids the app identity needs, and nothing else.</summary>
    private static readonly Dictionary<string, string> LeastPrivilegeRoles = new(StringComparer.OrdinalIgnoreCase)
    {
        ["ba92f5b4-2d11-453d-a403-e96b0029c9fe"] = "Storage Blob Data Contributor",
        ["974c5e8b-45b9-4653-ba55-5f855dd0fb88"] = "Storage Queue Data Contributor",
        ["0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"] = "Storage Table Data Contributor",
        ["4633458b-17de-408a-b874-0445c86b69e6"] = "Key Vault Secrets User",
        ["7f951dda-4ed3-4680-a7ca-43fe172d538d"] = "AcrPull",
    };

    private static ArmTemplate Template => ArmTemplate.Compiled;

    [Fact]
    public void Environment_has_a_consumption_cpu_profile_and_a_gpu_profile()
    {
        var environment = Template.Single(ManagedEnvironment);
        var types = WorkloadProfiles(environment).Select(p => ArmScope.AsString(environment.Scope.Resolve(p["workloadProfileType"])));

        Assert.Contains("Consumption", types);
        var gpu = GpuProfile(environment);
        Assert.Equal("gpuProfileType", environment.Scope.MainParameterOf(gpu["workloadProfileType"]));
    }

    [Fact]
    public void Gpu_profile_type_parameter_only_allows_gpu_profiles()
    {
        var parameter = Template.MainParameter("gpuProfileType");
        var allowed = parameter["allowedValues"]!.AsArray().Select(value => (string)value!).ToList();

        Assert.NotEmpty(allowed);
        Assert.All(allowed, type => Assert.True(IsGpuProfileType(type), $"{type} is not a GPU workload profile type"));
        Assert.Contains((string)parameter["defaultValue"]!, allowed);
    }

    [Fact]
    public void Functions_app_is_a_container_app_on_the_gpu_profile()
    {
        var app = Template.Single(ContainerApp);
        var environment = Template.Single(ManagedEnvironment);

        Assert.Equal("functionapp", (string?)app.Body["kind"]);
        var gpuProfileName = ArmScope.AsString(environment.Scope.Resolve(GpuProfile(environment)["name"]));
        Assert.False(string.IsNullOrEmpty(gpuProfileName));
        Assert.Equal(gpuProfileName, app.ResolvedString("properties.workloadProfileName"));
        Assert.True(ComesFromModule(app, app.At("properties.managedEnvironmentId"), "environment", "id"),
            "the app must run in the environment that has the GPU profile");
    }

    [Fact]
    public void App_keeps_a_replica_up_and_scales_to_one_replica_per_gpu_instance()
    {
        var app = Template.Single(ContainerApp);
        var environment = Template.Single(ManagedEnvironment);

        Assert.Equal("minReplicas", app.Scope.MainParameterOf(app.At("properties.template.scale.minReplicas")));
        Assert.Equal("gpuInstances", app.Scope.MainParameterOf(app.At("properties.template.scale.maxReplicas")));
        // The Durable Azure Storage backend is not scaled from zero on Container Apps.
        Assert.True((int)Template.MainParameter("minReplicas")["minValue"]! >= 1);
        Assert.True((int)Template.MainParameter("gpuInstances")["minValue"]! >= 1);
        // kind 'functionapp' derives its scale rules from the triggers and rejects custom ones.
        Assert.Null(app.At("properties.template.scale.rules"));
        // A dedicated GPU profile has at most as many nodes as there are GPU instances.
        var maximumCount = ArmScope.AsString(GpuProfile(environment)["maximumCount"]);
        Assert.Contains("parameters('gpuInstances')", maximumCount, StringComparison.Ordinal);
        Assert.Equal("gpuInstances", environment.Scope.MainParameterOf(JsonValue.Create("[parameters('gpuInstances')]")));
    }

    [Fact]
    public void App_and_environment_use_the_user_assigned_identity()
    {
        Template.Single("Microsoft.ManagedIdentity/userAssignedIdentities");
        var app = Template.Single(ContainerApp);
        var environment = Template.Single(ManagedEnvironment);

        foreach (var resource in new[] { app, environment })
        {
            Assert.Equal("UserAssigned", (string?)resource.At("identity.type"));
            var identity = Assert.Single(resource.At("identity.userAssignedIdentities")!.AsObject());
            Assert.True(ComesFromModule(resource, JsonValue.Create(identity.Key), "identity", "id"), $"{resource.Type} has another identity: {identity.Key}");
        }

        var registries = app.At("properties.configuration.registries")!.AsArray();
        Assert.NotEmpty(registries);
        Assert.All(registries, registry =>
        {
            Assert.True(ComesFromModule(app, registry!["identity"], "identity", "id"), "the image must be pulled with the app identity");
            Assert.Null(registry["passwordSecretRef"]);
            Assert.Null(registry["username"]);
        });
    }

    [Fact]
    public void Identity_gets_exactly_the_least_privilege_roles()
    {
        var assignments = Template.OfType("Microsoft.Authorization/roleAssignments").ToList();
        var granted = assignments.Select(RoleDefinitionGuid).ToList();

        string Describe(IEnumerable<string> roles) =>
            string.Join(", ", roles.Order(StringComparer.Ordinal).Select(role => LeastPrivilegeRoles.GetValueOrDefault(role, role)));
        Assert.True(
            granted.Order(StringComparer.OrdinalIgnoreCase).SequenceEqual(LeastPrivilegeRoles.Keys.Order(StringComparer.OrdinalIgnoreCase), StringComparer.OrdinalIgnoreCase),
            $"expected roles [{Describe(LeastPrivilegeRoles.Keys)}], template assigns [{Describe(granted)}]");

        Assert.All(assignments, assignment =>
        {
            Assert.Equal("ServicePrincipal", assignment.ResolvedString("properties.principalType"));
            Assert.True(ComesFromModule(assignment, assignment.At("properties.principalId"), "identity", "principalId"),
                $"role {RoleDefinitionGuid(assignment)} is not granted to the app identity");
            // Scoped to one resource (storage account, vault, registry), never the group or subscription.
            Assert.NotNull(assignment.Body["scope"]);
        });
    }

    [Fact]
    public void Secret_settings_are_key_vault_references()
    {
        var app = Template.Single(ContainerApp);
        var secrets = app.At("properties.configuration.secrets")!.AsArray().Select(secret => secret!.AsObject()).ToList();

        Assert.NotEmpty(secrets);
        Assert.All(secrets, secret =>
        {
            Assert.Null(secret["value"]);
            Assert.True(ComesFromModule(app, secret["identity"], "identity", "id"), $"secret {secret["name"]} is not read with the app identity");
            var uri = ArmScope.AsString(app.Scope.Resolve(secret["keyVaultUrl"]));
            Assert.True(uri is not null && uri.Contains("'keyVault')", StringComparison.Ordinal),
                $"secret {secret["name"]} must reference a secret of the template's Key Vault, not {uri}");
        });

        var secretNames = secrets.Select(secret => (string)secret["name"]!).ToHashSet(StringComparer.Ordinal);
        var env = app.At("properties.template.containers")!.AsArray()[0]!["env"]!.AsArray();
        foreach (var setting in new[] { SettingNames.Secret, SettingNames.HfToken })
        {
            var entry = env.Single(e => (string?)e!["name"] == setting)!;
            Assert.Null(entry["value"]);
            Assert.Contains((string)entry["secretRef"]!, secretNames);
        }

        var vault = Template.Single("Microsoft.KeyVault/vaults");
        Assert.True((bool?)vault.At("properties.enableRbacAuthorization"), "the vault must use Azure RBAC");
    }

    [Fact]
    public void Template_holds_no_secret_in_plain_text()
    {
        // Secret inputs are secure parameters without defaults.
        foreach (var name in new[] { "apiSecret", "hfToken" })
        {
            Assert.Equal("securestring", (string?)Template.MainParameter(name)["type"]);
        }
        foreach (var scope in Template.Resources.Select(r => r.Scope).Distinct())
        {
            var declarations = scope.Template["parameters"]?.AsObject().Select(pair => pair.Value!) ?? [];
            foreach (var declaration in declarations)
            {
                if ((string?)declaration["type"] is "securestring" or "secureObject") Assert.Null(declaration["defaultValue"]);
            }
        }

        // Key Vault secret values are computed at deployment (secure parameters, listKeys), never literals.
        foreach (var entry in Template.OfType("Microsoft.KeyVault/vaults/secrets"))
        {
            var value = ArmScope.AsString(entry.At("properties.value"));
            Assert.True(value is not null && value.StartsWith('[') && value.EndsWith(']'), $"Key Vault secret {entry.Body["name"]} has a literal value");
            var parameter = WholeParameterReference().Match(value);
            if (parameter.Success)
            {
                var declaration = entry.Scope.Template["parameters"]![parameter.Groups[1].Value]!;
                Assert.Equal("securestring", (string?)declaration["type"]);
            }
        }

        // The models share is mounted with a key that the environment reads from Key Vault.
        var share = Template.Single("Microsoft.App/managedEnvironments/storages");
        Assert.Null(share.At("properties.azureFile.accountKey"));
        Assert.NotNull(share.At("properties.azureFile.accountKeyVaultProperties.keyVaultUrl"));

        // No connection string, SAS or key material anywhere.
        string[] markers = ["AccountKey=", "SharedAccessSignature=", "sig=", "InstrumentationKey=", "-----BEGIN"];
        var leaks = Template.AllStrings().Where(text => markers.Any(m => text.Contains(m, StringComparison.OrdinalIgnoreCase))).ToList();
        Assert.True(leaks.Count == 0, $"secret-like text in the template: {string.Join(" | ", leaks)}");
    }

    private static List<JsonObject> WorkloadProfiles(ArmResource environment) =>
        environment.At("properties.workloadProfiles")!.AsArray().Select(profile => profile!.AsObject()).ToList();

    private static JsonObject GpuProfile(ArmResource environment) =>
        Assert.Single(WorkloadProfiles(environment), profile => IsGpuProfileType(ArmScope.AsString(environment.Scope.Resolve(profile["workloadProfileType"]))));

    private static bool IsGpuProfileType(string? type) =>
        type is not null && (type.StartsWith("Consumption-GPU-", StringComparison.Ordinal) || DedicatedGpuProfileType().IsMatch(type));

    private static string RoleDefinitionGuid(ArmResource assignment)
    {
        var roleDefinitionId = assignment.ResolvedString("properties.roleDefinitionId") ?? "";
        var guid = Guid().Match(roleDefinitionId);
        Assert.True(guid.Success, $"no role definition id in {roleDefinitionId}");
        return guid.Value;
    }

    /// <summary>
    /// Whether a value (a plain module parameter reference, or one wrapped in an expression such as
    /// <c>format('{0}', parameters('x'))</c>) is the given output of the given module of main.bicep.
    /// </summary>
    private static bool ComesFromModule(ArmResource resource, JsonNode? value, string module, string output)
    {
        var text = ArmScope.AsString(value) ?? "";
        var parameter = ArmParameterReference().Match(text);
        var origin = parameter.Success
            ? ArmScope.AsString(resource.Scope.Resolve(JsonValue.Create($"[parameters('{parameter.Groups[1].Value}')]")))
            : text;
        return origin is not null
            && origin.Contains($"'Microsoft.Resources/deployments', '{module}')", StringComparison.Ordinal)
            && origin.EndsWith($".outputs.{output}.value]", StringComparison.Ordinal);
    }

    [GeneratedRegex(@"^NC\d+-A100$")]
    private static partial Regex DedicatedGpuProfileType();

    [GeneratedRegex(@"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")]
    private static partial Regex Guid();

    [GeneratedRegex(@"parameters\('([^']+)'\)")]
    private static partial Regex ArmParameterReference();

    [GeneratedRegex(@"^\[parameters\('([^']+)'\)\]$")]
    private static partial Regex WholeParameterReference();
}

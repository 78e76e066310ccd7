namespace GraphFunctions.Api;

using System.Globalization;
using Attribution.Transcoders;
using Microsoft.AspNetCore.Http;

/// <summary>
/// GET /features/{layer}/{index} and POST /features/densities, for the service (its set's
/// dashboards) and for <c>graphfunctions view</c> (a features folder): a feature's dashboard in
/// circuit-tracer's feature JSON with its address and label added, and many features' densities;
/// 404 naming what is missing.
/// </summary>
public static class FeatureRoute
{
    /// <summary>Null when both are non-negative integers; else the 400 saying so.</summary>
    public static IResult? ParseAddress(string layer, string index, out int parsedLayer, out long parsedIndex)
    {
        parsedIndex = 0;
        if (int.TryParse(layer, NumberStyles.None, CultureInfo.InvariantCulture, out parsedLayer)
            && long.TryParse(index, NumberStyles.None, CultureInfo.InvariantCulture, out parsedIndex)) return null;
        return ApiResults.BadRequest($"layer and index must be non-negative integers, got '{layer}' and '{index}'");
    }

    /// <summary>The most features one densities request may ask for (a 5,000-node graph asks for fewer).</summary>
    public const int MaxDensities = 20_000;

    /// <param name="source">What the dashboards belong to, as the 404s name it (a transcoder set, a folder).</param>
    public static IResult Answer(FeatureDashboards dashboards, string source, int layer, long index, string? label)
    {
        ArgumentNullException.ThrowIfNull(dashboards);
        if (!dashboards.Available) return NoDashboards(source);
        var feature = dashboards.Read(layer, index);
        if (feature is null) return ApiResults.Error(StatusCodes.Status404NotFound, $"the feature dashboards of {source} do not hold L{layer} #{index}");
        feature["layer"] = layer;
        feature["index"] = index;
        if (label is not null) feature["label"] = label;
        return Results.Json(feature, ApiResults.Json);
    }

    /// <summary>
    /// POST /features/densities: for <c>{"features": [[layer, index], …]}</c>, each feature's
    /// density (the fraction of tokens it fires on, the dashboards' <c>activation_frequency</c>;
    /// Neuronpedia's <c>frac_nonzero</c>) in the same order, null where the dashboards hold none:
    /// what the graph page's density slider hides by, fetched once for every feature of a graph.
    /// </summary>
    public static async Task<IResult> DensitiesAsync(HttpRequest request, FeatureDashboards dashboards, string source, CancellationToken cancellation)
    {
        ArgumentNullException.ThrowIfNull(dashboards);
        var (fields, bodyRefusal) = await ApiRequests.ReadBodyAsync(request, cancellation);
        if (fields is null) return bodyRefusal!;
        if (!fields.Body.TryGetProperty("features", out var features) || features.ValueKind != System.Text.Json.JsonValueKind.Array)
            return ApiResults.BadRequest("features must be a list of [layer, index] pairs");
        if (features.GetArrayLength() > MaxDensities)
            return ApiResults.BadRequest($"features lists {features.GetArrayLength()} features, at most {MaxDensities}");
        var addresses = new List<(int Layer, long Index)>(features.GetArrayLength());
        foreach (var pair in features.EnumerateArray())
        {
            if (pair.ValueKind != System.Text.Json.JsonValueKind.Array || pair.GetArrayLength() != 2
                || !pair[0].TryGetInt32(out int layer) || !pair[1].TryGetInt64(out long index) || layer < 0 || index < 0)
                return ApiResults.BadRequest($"features[{addresses.Count}] must be [layer, index], two non-negative integers");
            addresses.Add((layer, index));
        }
        if (!dashboards.Available) return NoDashboards(source);
        var densities = dashboards.ReadMany(addresses).Select(feature => feature?["activation_frequency"]?.GetValue<double>()).ToList();
        return Results.Json(new { densities }, ApiResults.Json);
    }

    private static IResult NoDashboards(string source) =>
        ApiResults.Error(StatusCodes.Status404NotFound, $"{source} has no feature dashboards: put circuit-tracer's local feature files (index.json.gz and its .bin files) in a '{FeatureDashboards.FolderName}' folder beside its config.yaml");
}

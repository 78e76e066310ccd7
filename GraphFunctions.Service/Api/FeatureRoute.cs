namespace GraphFunctions.Api;

using System.Globalization;
using Attribution.Transcoders;
using Microsoft.AspNetCore.Http;

/// <summary>
/// GET /features/{layer}/{index}, for the service (its set's dashboards) and for
/// <c>graphfunctions view</c> (a features folder): a feature's dashboard in circuit-tracer's feature
/// JSON with its address and label added; 404 naming what is missing.
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

    /// <param name="source">What the dashboards belong to, as the 404s name it (a transcoder set, a folder).</param>
    public static IResult Answer(FeatureDashboards dashboards, string source, int layer, long index, string? label)
    {
        ArgumentNullException.ThrowIfNull(dashboards);
        if (!dashboards.Available)
            return ApiResults.Error(StatusCodes.Status404NotFound, $"{source} has no feature dashboards: put circuit-tracer's local feature files (index.json.gz and its .bin files) in a '{FeatureDashboards.FolderName}' folder beside its config.yaml");
        var feature = dashboards.Read(layer, index);
        if (feature is null) return ApiResults.Error(StatusCodes.Status404NotFound, $"the feature dashboards of {source} do not hold L{layer} #{index}");
        feature["layer"] = layer;
        feature["index"] = index;
        if (label is not null) feature["label"] = label;
        return Results.Json(feature, ApiResults.Json);
    }
}

namespace GraphFunctions.Api;

using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

/// <summary>The response shapes of the API: {"error": "..."} bodies and JSON written as a stream.</summary>
public static class ApiResults
{
    public static readonly JsonSerializerOptions Json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static IResult Error(int status, string message) => Results.Json(new { error = message }, Json, statusCode: status);

    public static IResult BadRequest(string message) => Error(StatusCodes.Status400BadRequest, message);

    /// <summary>A JSON body written straight to the response stream (graphs are up to 100 MB).</summary>
    public static IResult Stream(Func<Stream, Task> write, int status = StatusCodes.Status200OK) => new StreamedJson(write, status);

    private sealed class StreamedJson(Func<Stream, Task> write, int status) : IResult
    {
        public async Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.StatusCode = status;
            httpContext.Response.ContentType = "application/json; charset=utf-8";
            await write(httpContext.Response.Body);
        }
    }
}

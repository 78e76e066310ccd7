namespace GraphFunctions.Tests.Storage;

using System.IO.Compression;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Amazon.Runtime;
using Amazon.S3;
using Azure.Storage.Blobs;
using GraphFunctions.Configuration;
using GraphFunctions.Storage;
using Microsoft.Extensions.Configuration;

/// <summary>
/// The storage emulators at their fixed ports (scripts/test.sh starts them through
/// scripts/test-services.sh). A test that needs one and finds it silent fails with a message
/// saying how to start it; it is never skipped.
/// </summary>
internal static class Emulators
{
    public const string AzuriteConnectionString = "UseDevelopmentStorage=true";
    public const int AzuriteBlobPort = 10000;
    public const int S3rverPort = 4568;
    public const string S3Bucket = "graphs";

    public static async Task<BlobServiceClient> AzuriteAsync()
    {
        await RequireAsync("Azurite (Blob)", AzuriteBlobPort);
        return BlobStorage.CreateServiceClient(Storage((SettingNames.WebJobsStorage, AzuriteConnectionString)));
    }

    /// <summary>A container name no other test uses; the caller deletes it.</summary>
    public static string UniqueContainerName(string purpose) => $"{purpose}-{Guid.NewGuid():N}";

    /// <summary>An S3 client for s3rver: path-style, plain http, and the access key s3rver expects.</summary>
    public static async Task<AmazonS3Client> S3rverAsync()
    {
        await RequireAsync("s3rver", S3rverPort);
        var config = new AmazonS3Config
        {
            ServiceURL = $"http://127.0.0.1:{S3rverPort}",
            ForcePathStyle = true,
            AuthenticationRegion = "us-east-1",
        };
        return new AmazonS3Client(new BasicAWSCredentials("S3RVER", "S3RVER"), config);
    }

    /// <summary>The storage part of the service's settings as <see cref="ServiceOptions"/> reads them from these values.</summary>
    public static StorageOptions Storage(params (string Name, string Value)[] values) =>
        ServiceOptions.From(new ConfigurationBuilder()
            .AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Name, v.Value)))
            .Build()).Storage;

    private static async Task RequireAsync(string name, int port)
    {
        using var tcp = new TcpClient();
        try
        {
            await tcp.ConnectAsync(IPAddress.Loopback, port).WaitAsync(TimeSpan.FromSeconds(2));
        }
        catch (Exception e) when (e is SocketException or TimeoutException)
        {
            throw new InvalidOperationException(
                $"{name} is not answering on 127.0.0.1:{port}. The storage tests need the local emulators: "
                + "run scripts/test.sh (it starts and stops them), or scripts/test-services.sh start before dotnet test.", e);
        }
    }
}

/// <summary>A graph-shaped JSON document, written as a stream the way the graph writer does.</summary>
internal static class SampleGraph
{
    public const int DefaultNodes = 8000; // about 1.4 MB

    public static async Task WriteAsync(Stream target, int nodes, CancellationToken cancellationToken)
    {
        await using var json = new Utf8JsonWriter(target);
        json.WriteStartObject();
        json.WriteStartObject("metadata");
        json.WriteString("slug", "sample");
        json.WriteNumber("schema_version", 1);
        json.WriteEndObject();
        json.WriteStartArray("nodes");
        for (var i = 0; i < nodes; i++)
        {
            json.WriteStartObject();
            json.WriteString("node_id", $"{i % 26}_{i}_{i % 7}");
            json.WriteNumber("feature", i);
            json.WriteString("layer", $"{i % 26}");
            json.WriteNumber("ctx_idx", i % 7);
            json.WriteString("feature_type", "cross layer transcoder");
            json.WriteNumber("activation", i * 0.001);
            json.WriteEndObject();
            if (json.BytesPending > 1 << 16)
                await json.FlushAsync(cancellationToken);
        }
        json.WriteEndArray();
        json.WriteEndObject();
        await json.FlushAsync(cancellationToken);
    }

    public static byte[] Bytes(int nodes = DefaultNodes)
    {
        using var buffer = new MemoryStream();
        WriteAsync(buffer, nodes, CancellationToken.None).GetAwaiter().GetResult();
        return buffer.ToArray();
    }

    /// <summary>A workspace holding the sample graph under <paramref name="key"/>.</summary>
    public static async Task StoreAsync(IWorkspaceStore workspace, string key, int nodes = DefaultNodes) =>
        await workspace.WriteAsync(key, (stream, ct) => WriteAsync(stream, nodes, ct));
}

internal static class StreamExtensions
{
    public static async Task<byte[]> ReadAllAsync(this Stream stream)
    {
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer);
        return buffer.ToArray();
    }

    public static byte[] Gunzip(this byte[] gzip)
    {
        using var decompressed = new MemoryStream();
        using (var unzip = new GZipStream(new MemoryStream(gzip), CompressionMode.Decompress))
            unzip.CopyTo(decompressed);
        return decompressed.ToArray();
    }
}

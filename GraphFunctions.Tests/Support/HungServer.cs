namespace GraphFunctions.Tests.Support;

using System.Net;
using System.Net.Sockets;

/// <summary>A host that accepts connections and never answers (a delivery fault: an upload that never ends before its deadline).</summary>
public sealed class HungServer : IDisposable
{
    private readonly TcpListener listener = new(IPAddress.Loopback, 0);
    private readonly List<TcpClient> held = [];
    private int accepted;

    public HungServer()
    {
        listener.Start();
        Url = new Uri($"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}/graphs/hung.json?X-Amz-Signature=secret");
        _ = AcceptAsync();
    }

    public Uri Url { get; }

    public int Accepted => Volatile.Read(ref accepted);

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var client = await listener.AcceptTcpClientAsync();
                lock (held) held.Add(client);
                Interlocked.Increment(ref accepted);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Stopped.
        }
    }

    public void Dispose()
    {
        listener.Stop();
        lock (held) foreach (var client in held) client.Dispose();
    }
}

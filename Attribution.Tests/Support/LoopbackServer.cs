namespace Attribution.Tests.Support;

using System.Net;
using System.Net.Sockets;

/// <summary>
/// An HTTP server on a free 127.0.0.1 port, for tests that play a remote service (a model hub,
/// its CDN, S3). It accepts requests until disposed and hands each to the handler on its own
/// task, so a slow answer does not hold up the next request.
/// </summary>
public sealed class LoopbackServer : IDisposable
{
    private readonly HttpListener listener;
    private readonly Task accepting;

    public LoopbackServer(Func<HttpListenerContext, Task> handle)
    {
        ArgumentNullException.ThrowIfNull(handle);
        (listener, Address) = Listen();
        accepting = AcceptAsync(listener, handle);
    }

    /// <summary>The server's root, http://127.0.0.1:{port}/.</summary>
    public Uri Address { get; }

    /// <summary>Stops listening: once this returns, the port refuses connections and no new request is handed out.</summary>
    public void Dispose()
    {
        listener.Close();
        accepting.Wait(TimeSpan.FromSeconds(5));
    }

    /// <summary>A listener on a free loopback port (retried: another test may take the port first).</summary>
    private static (HttpListener Listener, Uri Address) Listen()
    {
        for (var attempt = 0; ; attempt++)
        {
            var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            var port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            var address = new Uri($"http://127.0.0.1:{port}/");
            var listener = new HttpListener();
            listener.Prefixes.Add(address.AbsoluteUri);
            try
            {
                listener.Start();
                return (listener, address);
            }
            catch (HttpListenerException) when (attempt < 10)
            {
                listener.Close();
            }
        }
    }

    private static async Task AcceptAsync(HttpListener listener, Func<HttpListenerContext, Task> handle)
    {
        while (listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;   // closed by Dispose
            }
            _ = Task.Run(() => HandleAsync(context, handle));
        }
    }

    private static async Task HandleAsync(HttpListenerContext context, Func<HttpListenerContext, Task> handle)
    {
        try
        {
            await handle(context);
        }
        catch (Exception e) when (e is HttpListenerException or IOException or ObjectDisposedException)
        {
            // The client went away (or the server closed); nothing to answer.
        }
    }
}

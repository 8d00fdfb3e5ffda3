using System.Net;
using System.Net.Sockets;

namespace StreamPlatform.AppHost.Orchestration;

/// <summary>Free-port discovery and port-in-use checks on the loopback interface.</summary>
public static class PortAllocation
{
    /// <summary>
    /// Binds <paramref name="count"/> listeners on 127.0.0.1:0 at once (so the kernel hands out
    /// distinct ports), then releases them. Another process could take one before our service
    /// binds it; that is rare and shows up as a clear health-check failure.
    /// </summary>
    public static int[] FindFreePorts(int count)
    {
        var listeners = new List<TcpListener>(count);
        try
        {
            for (var i = 0; i < count; i++)
            {
                var listener = new TcpListener(IPAddress.Loopback, 0);
                listener.Start();
                listeners.Add(listener);
            }
            return listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
        }
        finally
        {
            foreach (var listener in listeners)
                listener.Stop();
        }
    }

    /// <summary>True when nothing listens on 127.0.0.1:<paramref name="port"/> (we could bind it).</summary>
    public static bool IsFree(int port)
    {
        try
        {
            var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            listener.Stop();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}

using Grpc.Core;
using Microsoft.Extensions.Logging;
using StreamPlatform.Broker.Services;

namespace StreamPlatform.UnitTests.Broker;

public class ServiceErrorInterceptorTests
{
    private sealed class ListLogger : ILogger<ServiceErrorInterceptor>
    {
        public List<(LogLevel Level, Exception? Exception, string Message)> Entries { get; } = [];
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            => Entries.Add((logLevel, exception, formatter(state, exception)));
    }

    private sealed class Context(CancellationToken cancellationToken) : ServerCallContext
    {
        protected override string MethodCore => "/streamplatform.broker.BrokerService/Fetch";
        protected override string HostCore => "localhost";
        protected override string PeerCore => "ipv4:127.0.0.1:1";
        protected override DateTime DeadlineCore => DateTime.MaxValue;
        protected override Metadata RequestHeadersCore { get; } = [];
        protected override CancellationToken CancellationTokenCore => cancellationToken;
        protected override Metadata ResponseTrailersCore { get; } = [];
        protected override Status StatusCore { get; set; }
        protected override WriteOptions? WriteOptionsCore { get; set; }
        protected override AuthContext AuthContextCore => new(null, []);
        protected override ContextPropagationToken CreatePropagationTokenCore(ContextPropagationOptions? options) => throw new NotSupportedException();
        protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) => Task.CompletedTask;
    }

    private static async Task<ListLogger> Run(Func<Task<string>> handler, CancellationToken cancellationToken = default, Type? expected = null)
    {
        var logger = new ListLogger();
        var interceptor = new ServiceErrorInterceptor(logger);
        // A handler that throws before returning a task makes the interceptor throw synchronously, as gRPC expects.
        Task<string> Call() => interceptor.UnaryServerHandler<string, string>("request", new Context(cancellationToken), (_, _) => handler());
        if (expected is null) Assert.Equal("ok", await Call());
        else Assert.IsType(expected, await Assert.ThrowsAnyAsync<Exception>(Call));
        return logger;
    }

    [Fact]
    public async Task Results_pass_through_unlogged_synchronous_or_not()
    {
        Assert.Empty((await Run(() => Task.FromResult("ok"))).Entries);
        Assert.Empty((await Run(async () => { await Task.Yield(); return "ok"; })).Entries);
    }

    [Fact]
    public async Task A_faulting_handler_is_logged_as_an_error_and_its_exception_propagates_unchanged()
    {
        var logged = await Run(async () => { await Task.Yield(); throw new InvalidOperationException("bug"); }, expected: typeof(InvalidOperationException));
        var entry = Assert.Single(logged.Entries);
        Assert.Equal(LogLevel.Error, entry.Level);
        Assert.IsType<InvalidOperationException>(entry.Exception);
        Assert.Contains("/streamplatform.broker.BrokerService/Fetch", entry.Message);

        // Thrown before the handler returned its task, too.
        logged = await Run(() => throw new ArgumentException("sync bug"), expected: typeof(ArgumentException));
        Assert.Equal(LogLevel.Error, Assert.Single(logged.Entries).Level);
    }

    [Fact]
    public async Task Statuses_and_cancellation_of_a_cancelled_call_are_not_logged()
    {
        Assert.Empty((await Run(() => throw new RpcException(new Status(StatusCode.NotFound, "x")), expected: typeof(RpcException))).Entries);
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        Assert.Empty((await Run(async () => { await Task.Yield(); throw new IOException("The client reset the request stream."); }, cancelled.Token, typeof(IOException))).Entries);
        Assert.Empty((await Run(() => throw new OperationCanceledException(), cancelled.Token, typeof(OperationCanceledException))).Entries);
        // What grpc-dotnet's response writer throws once the peer reset the call (HttpContextStreamWriter).
        Assert.Empty((await Run(async () => { await Task.Yield(); throw new InvalidOperationException("Can't write the message because the request is complete."); },
            cancelled.Token, typeof(InvalidOperationException))).Entries);
        // The same exceptions while the call is not cancelled are faults.
        Assert.Single((await Run(() => throw new IOException("disk"), expected: typeof(IOException))).Entries);
    }
}

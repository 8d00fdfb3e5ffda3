using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace StreamPlatform.UnitTests.Gateway;

/// <summary>A logger that keeps every entry (level and formatted message), for tests of what is logged and how loudly.</summary>
internal sealed class ListLogger : ILogger
{
    public ConcurrentQueue<(LogLevel Level, string Message)> Entries { get; } = new();

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        => Entries.Enqueue((logLevel, formatter(state, exception)));

    public IEnumerable<(LogLevel Level, string Message)> AtLeast(LogLevel level) => Entries.Where(e => e.Level >= level);
}

/// <summary>The same as a typed logger, for classes that take an ILogger&lt;T&gt;.</summary>
internal sealed class ListLogger<T>(ListLogger inner) : ILogger<T>
{
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => inner.BeginScope(state);
    public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);
    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        => inner.Log(logLevel, eventId, state, exception, formatter);
}

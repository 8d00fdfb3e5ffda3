namespace StreamPlatform.AppHost.Orchestration;

/// <summary>A failure to start, check or stop the cluster, with a message meant for the user.</summary>
public sealed class OrchestrationException : Exception
{
    public OrchestrationException(string message) : base(message) { }

    public OrchestrationException(string message, Exception inner) : base(message, inner) { }
}

using Microsoft.Extensions.Configuration;

namespace StreamPlatform.ServiceDefaults;

/// <summary>
/// Reads endpoints the Aspire way: services__NAME__ENDPOINT__N environment variables, i.e.
/// configuration keys services:NAME:ENDPOINT:N. gRPC channels are made by hand (see
/// <see cref="GrpcChannels"/>), so they resolve their address here rather than through an
/// HttpClient's service-discovery handler.
/// </summary>
public static class ServiceEndpoints
{
    public static IReadOnlyList<Uri> Resolve(IConfiguration configuration, string service, string endpoint)
    {
        var section = configuration.GetSection($"services:{service}:{endpoint}");
        var result = new List<Uri>();
        foreach (var child in section.GetChildren().OrderBy(c => c.Key, StringComparer.Ordinal))
        {
            if (Uri.TryCreate(child.Value, UriKind.Absolute, out var uri))
                result.Add(uri);
        }
        return result;
    }

    public static Uri ResolveRequired(IConfiguration configuration, string service, string endpoint)
    {
        var all = Resolve(configuration, service, endpoint);
        if (all.Count == 0)
        {
            throw new InvalidOperationException(
                $"No endpoint configured for service '{service}' ({endpoint}). Set the environment variable " +
                $"services__{service}__{endpoint}__0 (for example http://127.0.0.1:7001), or start the cluster " +
                "with 'dotnet run --project AppHost', which sets it for every service.");
        }
        return all[0];
    }
}

using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using StreamPlatform.Gateway.Apis;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using StreamPlatform.UnitTests.Kafka;

namespace StreamPlatform.UnitTests.Gateway;

/// <summary>
/// Gateway.Service/README.md's "APIs served" table is the documented version range of every API:
/// it must equal what ApiVersions advertises from the gateway's real handler set, both ways.
/// </summary>
public partial class ApiVersionsDocumentationTests
{
    [GeneratedRegex(@"^\| (?<name>\w+) \((?<key>\d+)\) \| (?<min>\d+)-(?<max>\d+) \| (?<kafka>\d+)\+ \|", RegexOptions.Multiline)]
    private static partial Regex Row();

    [Fact]
    public async Task The_readme_table_equals_the_advertised_api_versions()
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Testing" });
        builder.Configuration["services:controller:grpc:0"] = "http://127.0.0.1:9";
        builder.Configuration["Gateway:NodeId"] = "1";
        StreamPlatform.Gateway.GatewayExtensions.AddApplicationServices(builder);
        await using var app = builder.Build();
        var advertised = app.Services.GetRequiredService<ApiRegistry>().Supported
            .Select(v => ((ApiKey)v.ApiKey, v.MinVersion, v.MaxVersion)).ToList();

        var readme = await File.ReadAllTextAsync(Path.Combine(GeneratedCodeTests.RepoRoot(), "Gateway.Service", "README.md"));
        var documented = Row().Matches(readme).Select(m =>
        {
            var key = (ApiKey)short.Parse(m.Groups["key"].Value);
            Assert.Equal(key.ToString(), m.Groups["name"].Value);
            return (key, short.Parse(m.Groups["min"].Value), short.Parse(m.Groups["max"].Value));
        }).OrderBy(r => r.key).ToList();

        Assert.Equal(advertised, documented);
    }
}

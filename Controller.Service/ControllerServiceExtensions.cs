using StreamPlatform.Controller.Hosting;
using StreamPlatform.Controller.Metadata;

namespace StreamPlatform.Controller;

public static class ControllerServiceExtensions
{
    /// <summary>Everything the controller process needs besides the service defaults.</summary>
    public static WebApplicationBuilder AddApplicationServices(this WebApplicationBuilder builder)
    {
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(ControllerOptions.FromConfiguration(builder.Configuration));
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(sp => new MetadataController(
            sp.GetRequiredService<ControllerOptions>(),
            sp.GetRequiredService<TimeProvider>(),
            Random.Shared,
            sp.GetRequiredService<ILogger<MetadataController>>()));
        builder.Services.AddSingleton<ControllerMetrics>();
        builder.Services.AddHostedService<ControllerHostedService>();
        builder.Services.AddHealthChecks().AddCheck<MetadataLogHealthCheck>("metadata-log");
        return builder;
    }
}

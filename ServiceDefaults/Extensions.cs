using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// The Aspire service-defaults conventions, shared by the controller, brokers and gateways:
/// OpenTelemetry (OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set), /health and /alive,
/// configuration-based service discovery and the standard resilience handler for HttpClients.
/// gRPC channels for streams and produce are made by <see cref="StreamPlatform.ServiceDefaults.GrpcChannels"/>
/// and opt out of the resilience handler.
/// </summary>
public static class ServiceDefaultsExtensions
{
    private const string HealthEndpointPath = "/health";
    private const string AlivenessEndpointPath = "/alive";

    public static TBuilder AddServiceDefaults<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.ConfigureOpenTelemetry();
        builder.AddDefaultHealthChecks();
        builder.Services.AddServiceDiscovery();
        builder.Services.ConfigureHttpClientDefaults(http =>
        {
            // Unary HTTP calls get retries, timeouts and circuit breaking. Streaming gRPC and
            // Produce do not go through HttpClientFactory, so they are not retried blindly.
            http.AddStandardResilienceHandler();
            http.AddServiceDiscovery();
        });
        builder.Services.Configure<Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions>(kestrel =>
        {
            // Record batches of up to a few MiB travel in one gRPC message between our services.
            // Kestrel's default HTTP/2 receive windows (1 MiB per connection, 768 KiB per stream)
            // make a sender stop mid-message for a WINDOW_UPDATE round trip; these let a whole
            // message (and a few on a pipelined produce stream) flow at once.
            kestrel.Limits.Http2.InitialConnectionWindowSize = StreamPlatform.ServiceDefaults.GrpcChannels.Http2ConnectionWindowBytes;
            kestrel.Limits.Http2.InitialStreamWindowSize = StreamPlatform.ServiceDefaults.GrpcChannels.Http2StreamWindowBytes;
        });
        return builder;
    }

    public static TBuilder ConfigureOpenTelemetry<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.Logging.AddOpenTelemetry(logging =>
        {
            logging.IncludeFormattedMessage = true;
            logging.IncludeScopes = true;
        });

        var otel = builder.Services.AddOpenTelemetry()
            .WithMetrics(metrics => metrics
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddRuntimeInstrumentation()
                .AddMeter(StreamPlatform.ServiceDefaults.Telemetry.MeterWildcard));

        if (!string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]))
        {
            // Traces only when they go somewhere: a sampled Activity per incoming request and per
            // outgoing gRPC call (the gateway makes several per Kafka request) measurably cost CPU
            // on the data path (docs/PERFORMANCE.md), and without an exporter nobody sees them.
            otel.WithTracing(tracing => tracing
                .AddSource(builder.Environment.ApplicationName)
                .AddSource(StreamPlatform.ServiceDefaults.Telemetry.ActivitySourceWildcard)
                .AddAspNetCoreInstrumentation(o =>
                    // Health probes are noise in traces.
                    o.Filter = ctx => !ctx.Request.Path.StartsWithSegments(HealthEndpointPath)
                                      && !ctx.Request.Path.StartsWithSegments(AlivenessEndpointPath))
                .AddHttpClientInstrumentation());
            otel.UseOtlpExporter();
        }
        if (!string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]))
        {
            // A stop must not wait on a collector that is gone: exports give up after
            // OtlpExportTimeoutMsDefault (the exporter's own default is 10 s) unless
            // OTEL_EXPORTER_OTLP_TIMEOUT says otherwise, the HttpClients the exporter takes from
            // the factory do not get the standard resilience handler (its retries and 30 s total
            // timeout), and the last flush is bounded (TelemetryShutdown).
            if (string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_TIMEOUT"]))
                builder.Configuration.AddInMemoryCollection([new("OTEL_EXPORTER_OTLP_TIMEOUT",
                    StreamPlatform.ServiceDefaults.Telemetry.OtlpExportTimeoutMsDefault.ToString(System.Globalization.CultureInfo.InvariantCulture))]);
            // RemoveAllResilienceHandlers is marked for evaluation (EXTEXP0001); it is the
            // documented way to exempt one named client from ConfigureHttpClientDefaults.
#pragma warning disable EXTEXP0001
            foreach (var exporterClient in StreamPlatform.ServiceDefaults.Telemetry.OtlpExporterHttpClientNames)
                builder.Services.AddHttpClient(exporterClient).RemoveAllResilienceHandlers();
#pragma warning restore EXTEXP0001
        }
        builder.Services.AddHostedService<StreamPlatform.ServiceDefaults.TelemetryShutdown>();
        return builder;
    }

    public static TBuilder AddDefaultHealthChecks<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.Services.AddHealthChecks()
            .AddCheck("self", () => HealthCheckResult.Healthy(), ["live"]);
        return builder;
    }

    /// <summary>/health: every check (readiness). /alive: only the "live" ones.</summary>
    public static WebApplication MapDefaultEndpoints(this WebApplication app)
    {
        // Always mapped: the AppHost and Kubernetes probes gate start order on them.
        app.MapHealthChecks(HealthEndpointPath);
        app.MapHealthChecks(AlivenessEndpointPath, new HealthCheckOptions
        {
            Predicate = r => r.Tags.Contains("live"),
        });
        return app;
    }
}

using System.Text.RegularExpressions;
using Confluent.Kafka;
using Microsoft.Playwright;
using StreamPlatform.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace StreamPlatform.IntegrationTests.Cluster;

/// <summary>
/// The Aspire dashboard in a real browser (Debian's chromium driven by Microsoft.Playwright) against
/// `dotnet run --project AppHost`: the login URL the AppHost prints lets the browser in, every
/// resource shows Running, and a Confluent.Kafka produce shows up as one trace with spans from the
/// gateway and from a broker, and the services' own meters are listed under Metrics. On failure the page's text and a screenshot are kept.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class DashboardBrowserTests(ITestOutputHelper output)
{
    /// <summary>Debian's chromium, installed by .ci/run; Playwright's own browser download needs the internet.</summary>
    private const string ChromiumPath = "/usr/bin/chromium";

    /// <summary>How long the dashboard may take to show a state or a trace (OTLP export runs every few seconds).</summary>
    private static readonly TimeSpan UiTimeout = TimeSpan.FromSeconds(60);

    private static readonly string[] Resources = ["controller-1", "broker-1", "broker-2", "broker-3", "gateway-1"];

    [Fact]
    public async Task TheDashboardShowsEveryResourceRunningAndAProduceTraceFromGatewayToBroker()
    {
        Assert.True(File.Exists(ChromiumPath), $"{ChromiumPath} is missing: install Debian's chromium (apt-get install chromium), as .ci/run does");

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
        });
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1600, Height = 1000 } });
        page.SetDefaultTimeout((float)UiTimeout.TotalMilliseconds);
        Assertions.SetDefaultExpectTimeout((float)UiTimeout.TotalMilliseconds);

        await using var apphost = AppHostProcess.StartInTempDataDir("--dynamic-ports");
        try
        {
            var bootstrap = await apphost.BootstrapServers.WaitAsync(TimeSpan.FromSeconds(150));
            var loginUrl = await apphost.DashboardUrl.WaitAsync(TimeSpan.FromSeconds(5));
            var dashboard = new Uri(loginUrl).GetLeftPart(UriPartial.Authority);
            output.WriteLine($"bootstrap {bootstrap}, dashboard {loginUrl}");

            var clock = System.Diagnostics.Stopwatch.StartNew();
            // The login URL sets the auth cookie and lands on the resources page.
            await page.GotoAsync(loginUrl);
            foreach (var name in Resources)
            {
                var row = page.GetByRole(AriaRole.Row).Filter(new LocatorFilterOptions { HasText = name });
                await Assertions.Expect(row.First).ToContainTextAsync("Running");
            }

            output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: every resource Running");
            var topic = KafkaHelpers.UniqueTopic("dashboard-trace");
            using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = bootstrap }).Build())
            {
                for (var i = 0; i < 3; i++)
                    await producer.ProduceAsync(topic, new Message<Null, string> { Value = $"traced-{i}" });
            }

            // The traces page lists each trace by its root span: the gateway's "kafka Produce".
            await page.GotoAsync($"{dashboard}/traces");
            var produceTrace = page.GetByRole(AriaRole.Row).Filter(new LocatorFilterOptions { HasText = "kafka Produce" }).First;
            await Assertions.Expect(produceTrace).ToBeVisibleAsync();
            await Assertions.Expect(produceTrace).ToContainTextAsync("gateway-1");
            await Assertions.Expect(produceTrace).ToContainTextAsync(new Regex("broker-[1-3]"));

            // Its detail page (the trace id is in the name cell's title) shows the broker's append
            // span inside the same trace, under the gateway's request span.
            var nameCell = produceTrace.GetByRole(AriaRole.Gridcell).Filter(new LocatorFilterOptions { HasText = "kafka Produce" }).First;
            var title = await nameCell.GetAttributeAsync("title") ?? "";
            var traceId = Regex.Match(title, "Trace Id: ([0-9a-f]{32})");
            Assert.True(traceId.Success, $"no trace id in the name cell's title '{title}'");
            await page.GotoAsync($"{dashboard}/traces/detail/{traceId.Groups[1].Value}");
            var append = page.GetByRole(AriaRole.Row).Filter(new LocatorFilterOptions { HasText = "Produce append" }).First;
            await Assertions.Expect(append).ToContainTextAsync(new Regex("broker-[1-3]"));
            var request = page.GetByRole(AriaRole.Row).Filter(new LocatorFilterOptions { HasText = "kafka Produce" }).First;
            await Assertions.Expect(request).ToContainTextAsync("gateway-1");

            output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: the produce trace spans gateway-1 and a broker");

            // The project's own meters are listed under Metrics for their resource.
            await page.GotoAsync($"{dashboard}/metrics/resource/gateway-1");
            await Assertions.Expect(page.GetByText("gateway.requests").First).ToBeVisibleAsync();
            output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: gateway meters listed");
            await page.GotoAsync($"{dashboard}/metrics/resource/broker-1");
            await Assertions.Expect(page.GetByText("broker.partitions.under_replicated").First).ToBeVisibleAsync();
            output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: gateway and broker meters listed");
        }
        catch
        {
            await KeepEvidenceAsync(page);
            output.WriteLine(apphost.Output);
            throw;
        }
    }

    /// <summary>Writes the page's URL and text to the test output and a screenshot next to the test results.</summary>
    private async Task KeepEvidenceAsync(IPage page)
    {
        try
        {
            var dir = Path.Combine(AppContext.BaseDirectory, "TestResults");
            Directory.CreateDirectory(dir);
            var screenshot = Path.Combine(dir, $"dashboard-{DateTime.UtcNow:yyyyMMdd-HHmmss}.png");
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = screenshot, FullPage = true });
            output.WriteLine($"page {page.Url}, screenshot {screenshot}");
            output.WriteLine(await page.InnerTextAsync("body"));
        }
        catch (PlaywrightException e)
        {
            output.WriteLine($"could not capture the page: {e.Message}");
        }
    }
}

using StreamPlatform.Gateway;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.AddApplicationServices();

var app = builder.Build();
app.MapGrpcService<GatewayStatusService>();
app.MapDefaultEndpoints();
app.Run();

using StreamPlatform.Controller;
using StreamPlatform.Controller.Grpc;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.AddApplicationServices();

var app = builder.Build();
app.MapGrpcService<ControllerGrpcService>();
app.MapDefaultEndpoints();
app.Run();

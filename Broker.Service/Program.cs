using StreamPlatform.Broker;
using StreamPlatform.Broker.Services;
using StreamPlatform.Broker.Transactions;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.AddApplicationServices();
var app = builder.Build();
app.MapGrpcService<BrokerGrpcService>();
app.MapGrpcService<ProduceStreamGrpcService>();
app.MapGrpcService<StreamPlatform.Broker.Replication.ReplicationGrpcService>();
app.MapGrpcService<StreamPlatform.Broker.Groups.GroupCoordinatorGrpcService>();
app.MapTransactionCoordinator();
app.MapDefaultEndpoints();
app.Run();

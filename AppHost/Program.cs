using StreamPlatform.AppHost.Cli;

return await AppHostMain.RunAsync(args);

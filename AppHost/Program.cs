Console.WriteLine("StreamPlatform AppHost: orchestration not written yet.");
return 1;

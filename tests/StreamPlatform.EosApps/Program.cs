namespace StreamPlatform.EosApps;

/// <summary>
/// Exactly-once client applications for issue 13's acceptance tests. The tests start them as
/// separate processes (dotnet StreamPlatform.EosApps.dll MODE ...) and kill them -9 mid-run, as a
/// crash would; a restarted instance must carry on without duplicating or losing a record.
/// </summary>
public static class Program
{
    private const string Usage = """
        StreamPlatform.EosApps MODE ARGS
          copy BOOTSTRAP INPUT OUTPUT GROUP TRANSACTIONAL_ID RECORDS_PER_TXN PAUSE_MS
              Consume-transform-produce with Confluent.Kafka transactions: copies every record of
              INPUT to the same partition of OUTPUT, committing GROUP's offsets in the transaction
              (SendOffsetsToTransaction, CommitTransaction); each transaction stays open PAUSE_MS
              after its records are written. Runs until killed.
          count BOOTSTRAP APPLICATION_ID INPUT OUTPUT
              A Streamiz.Kafka.Net application with processing.guarantee exactly_once: counts
              INPUT's records by key and writes each new count to OUTPUT (key, count as decimal text).
              Runs until killed.
        """;

    public static async Task<int> Main(string[] args)
    {
        try
        {
            return args switch
            {
                ["copy", var bootstrap, var input, var output, var group, var transactionalId, var perTxn, var pauseMs] =>
                    CopyApp.Run(new CopyApp.Options(bootstrap, input, output, group, transactionalId, int.Parse(perTxn), int.Parse(pauseMs))),
                ["count", var bootstrap, var applicationId, var input, var output] =>
                    await CountApp.RunAsync(bootstrap, applicationId, input, output),
                _ => BadUsage(),
            };
        }
        catch (Exception e)
        {
            Console.WriteLine($"FATAL {e}");
            return 3;
        }
    }

    private static int BadUsage()
    {
        Console.Error.WriteLine(Usage);
        return 2;
    }
}

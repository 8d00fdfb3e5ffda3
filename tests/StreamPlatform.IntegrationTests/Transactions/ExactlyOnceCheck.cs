using System.Globalization;
using System.Text;
using Confluent.Kafka;

namespace StreamPlatform.IntegrationTests.Transactions;

/// <summary>
/// The check of issue 13's acceptance: what a partition holds, read back by offset, is exactly
/// the numbered records expected there, each once, in order: no duplicate, no gap, nothing else.
/// Records are numbered by their key (decimal text).
/// </summary>
public static class ExactlyOnceCheck
{
    /// <summary>Details listed per kind of problem, so a failure message stays readable.</summary>
    private const int ExamplesMax = 10;

    public static long NumberOf(byte[]? key) =>
        key is null ? -1 : long.TryParse(Encoding.ASCII.GetString(key), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : -1;

    public static byte[] Key(long number) => Encoding.ASCII.GetBytes(number.ToString(CultureInfo.InvariantCulture));

    /// <summary>Per partition, the record numbers in offset order.</summary>
    public static Dictionary<int, List<long>> ByPartition(IEnumerable<ConsumeResult<byte[], byte[]>> records) =>
        records.GroupBy(r => r.Partition.Value)
            .ToDictionary(g => g.Key, g => g.OrderBy(r => r.Offset.Value).Select(r => NumberOf(r.Message.Key)).ToList());

    /// <summary>Empty when every partition holds exactly its expected numbers in the expected order.</summary>
    public static List<string> Problems(IReadOnlyDictionary<int, List<long>> expected, IReadOnlyDictionary<int, List<long>> actual)
    {
        var problems = new List<string>();
        foreach (var partition in expected.Keys.Union(actual.Keys).Order())
        {
            var want = expected.GetValueOrDefault(partition) ?? [];
            var got = actual.GetValueOrDefault(partition) ?? [];
            var wanted = want.ToHashSet();
            var copies = got.GroupBy(n => n).Where(g => g.Count() > 1).Select(g => $"{g.Key} x{g.Count()}").ToList();
            var missing = want.Except(got).ToList();
            var foreign = got.Where(n => !wanted.Contains(n)).Distinct().ToList();
            if (copies.Count > 0)
                problems.Add($"p{partition}: {copies.Count} record(s) duplicated, e.g. {Examples(copies)}");
            if (missing.Count > 0)
                problems.Add($"p{partition}: {missing.Count} record(s) missing (gaps), e.g. {Examples(missing)}");
            if (foreign.Count > 0)
                problems.Add($"p{partition}: {foreign.Count} record(s) not expected here, e.g. {Examples(foreign)}");
            if (copies.Count == 0 && missing.Count == 0 && foreign.Count == 0 && !want.SequenceEqual(got))
            {
                var at = want.Zip(got).TakeWhile(x => x.First == x.Second).Count();
                problems.Add($"p{partition}: order differs from position {at}: expected {want[at]}, found {got[at]}");
            }
        }
        return problems;
    }

    private static string Examples<T>(IEnumerable<T> items) => string.Join(", ", items.Take(ExamplesMax));
}

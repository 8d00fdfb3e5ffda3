namespace StreamPlatform.Faults;

/// <summary>How often one kind of problem was seen, with the first few cases spelled out.</summary>
public sealed class Finding
{
    /// <summary>Enough cases to see a pattern; a report of millions would say no more.</summary>
    public const int SamplesMax = 10;

    private readonly List<string> _samples = [];

    public long Count { get; private set; }

    public IReadOnlyList<string> Samples => _samples;

    public void Add(string sample)
    {
        Count++;
        if (_samples.Count < SamplesMax)
            _samples.Add(sample);
    }

    public override string ToString() =>
        Count == 0 ? "0" : $"{Count} (e.g. {string.Join("; ", _samples)})";
}

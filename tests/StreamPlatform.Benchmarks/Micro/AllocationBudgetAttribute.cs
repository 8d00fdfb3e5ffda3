namespace StreamPlatform.Benchmarks.Micro;

/// <summary>
/// The most bytes one operation of this benchmark may allocate (MemoryDiagnoser's
/// "Allocated" column). <c>micro</c> checks every budget after the run and exits 1 when one is
/// exceeded, so an allocation creeping into a hot path fails CI-style checks.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class AllocationBudgetAttribute(long bytesPerOperationMax) : Attribute
{
    public long BytesPerOperationMax { get; } = bytesPerOperationMax;

    /// <summary>Why the budget is what it is (printed with the table).</summary>
    public string? Reason { get; init; }
}

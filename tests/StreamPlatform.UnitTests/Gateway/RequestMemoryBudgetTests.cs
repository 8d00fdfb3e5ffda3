using StreamPlatform.Gateway.Kafka;

namespace StreamPlatform.UnitTests.Gateway;

public sealed class RequestMemoryBudgetTests
{
    [Fact]
    public async Task Grants_while_it_fits_and_queues_the_rest_in_arrival_order()
    {
        var budget = new RequestMemoryBudget(100);
        await budget.WaitAsync(60, CancellationToken.None);
        var big = budget.WaitAsync(50, CancellationToken.None).AsTask();
        // Would fit, but must not overtake the larger waiter ahead of it.
        var small = budget.WaitAsync(10, CancellationToken.None).AsTask();
        Assert.False(big.IsCompleted);
        Assert.False(small.IsCompleted);
        Assert.Equal(2, budget.Waiting);

        budget.Release(60);
        await big.WaitAsync(TimeSpan.FromSeconds(5));
        await small.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(60, budget.InUseBytes);
        budget.Release(50);
        budget.Release(10);
        Assert.Equal(0, budget.InUseBytes);
    }

    [Fact]
    public async Task A_frame_larger_than_the_budget_goes_through_only_when_nothing_is_held()
    {
        var budget = new RequestMemoryBudget(100);
        await budget.WaitAsync(1, CancellationToken.None);
        var huge = budget.WaitAsync(500, CancellationToken.None).AsTask();
        Assert.False(huge.IsCompleted);
        budget.Release(1);
        await huge.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(500, budget.InUseBytes);
        var next = budget.WaitAsync(1, CancellationToken.None).AsTask();
        Assert.False(next.IsCompleted);
        budget.Release(500);
        await next.WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task A_cancelled_waiter_leaves_the_queue_and_unblocks_those_behind_it()
    {
        var budget = new RequestMemoryBudget(100);
        await budget.WaitAsync(90, CancellationToken.None);
        using var cancel = new CancellationTokenSource();
        var blocked = budget.WaitAsync(50, cancel.Token).AsTask();
        var behind = budget.WaitAsync(10, CancellationToken.None).AsTask();
        Assert.False(behind.IsCompleted);

        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => blocked);
        await behind.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(100, budget.InUseBytes);
        Assert.Equal(0, budget.Waiting);
    }

    [Fact]
    public void Releasing_more_than_is_held_is_a_bug()
    {
        var budget = new RequestMemoryBudget(100);
        Assert.Throws<InvalidOperationException>(() => budget.Release(1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RequestMemoryBudget(0));
    }

    [Fact]
    public async Task A_waiter_that_does_not_keep_its_place_holds_nobody_back_and_is_granted_when_it_fits()
    {
        var budget = new RequestMemoryBudget(100);
        await budget.WaitAsync(60, CancellationToken.None);
        // A declared frame that does not fit yet (a client may never send it).
        var declared = budget.WaitAsync(50, CancellationToken.None, keepsPlace: false).AsTask();
        Assert.False(declared.IsCompleted);
        // Others still get what fits, at once and from the queue.
        await budget.WaitAsync(30, CancellationToken.None);
        var queued = budget.WaitAsync(20, CancellationToken.None).AsTask();
        Assert.False(queued.IsCompleted);
        budget.Release(30);
        await queued.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.False(declared.IsCompleted);

        budget.Release(60);
        await declared.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(70, budget.InUseBytes);
        Assert.Equal(0, budget.Waiting);
    }
}

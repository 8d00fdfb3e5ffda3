// Real processes on a small machine: test classes run one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

using StreamPlatform.AppHost.Orchestration;

namespace StreamPlatform.UnitTests.AppHost;

public sealed class DataDirectoryTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "sp-datadir-tests", Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_root))
            Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public void CleanWipesAFolderTheAppHostCreatedButKeepsItsMarker()
    {
        using (DataDirectory.Acquire(_root))
        {
        }
        Directory.CreateDirectory(Path.Combine(_root, "broker-1"));
        File.WriteAllText(Path.Combine(_root, "broker-1", "00000000000000000000.log"), "x");

        DataDirectory.Clean(_root);

        Assert.Equal([DataDirectory.MarkerFileName], Directory.EnumerateFileSystemEntries(_root).Select(Path.GetFileName));
    }

    [Fact]
    public void CleanRefusesAForeignNonEmptyFolder()
    {
        Directory.CreateDirectory(_root);
        File.WriteAllText(Path.Combine(_root, "precious.txt"), "x");
        var e = Assert.Throws<OrchestrationException>(() => DataDirectory.Clean(_root));
        Assert.Contains("Refusing", e.Message);
        Assert.True(File.Exists(Path.Combine(_root, "precious.txt")));
    }

    [Fact]
    public void CleanOfAMissingOrEmptyFolderIsANoOp()
    {
        DataDirectory.Clean(_root);
        Directory.CreateDirectory(_root);
        DataDirectory.Clean(_root);
        Assert.Empty(Directory.EnumerateFileSystemEntries(_root));
    }

    [Fact]
    public void OnlyOneHolderAtATime()
    {
        using (DataDirectory.Acquire(_root))
        {
            var e = Assert.Throws<OrchestrationException>(() => DataDirectory.Acquire(_root));
            Assert.Contains("in use", e.Message);
        }
        using var again = DataDirectory.Acquire(_root);
        Assert.Equal(Path.GetFullPath(_root), again.Path);
    }
}

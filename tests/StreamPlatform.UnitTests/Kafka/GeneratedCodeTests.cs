using StreamPlatform.Protos.Kafka.CodeGen;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.UnitTests.Kafka;

public sealed class GeneratedCodeTests
{
    internal static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "StreamPlatform.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("StreamPlatform.sln not found above " + AppContext.BaseDirectory);
    }

    [Fact]
    public void GeneratedDirectoryMatchesGeneratorOutput()
    {
        var kafka = Path.Combine(RepoRoot(), "Protos", "Kafka");
        var expected = KafkaCodeGenerator.Generate(Path.Combine(kafka, "Schema"));
        var generatedDir = Path.Combine(kafka, "Generated");
        var onDisk = Directory.GetFiles(generatedDir, "*.cs", SearchOption.AllDirectories)
            .Select(p => Path.GetRelativePath(generatedDir, p).Replace('\\', '/')).Order(StringComparer.Ordinal).ToList();

        Assert.Equal(expected.Keys.ToList(), onDisk);
        foreach (var (name, content) in expected)
        {
            var actual = File.ReadAllText(Path.Combine(generatedDir, name)).Replace("\r\n", "\n", StringComparison.Ordinal);
            Assert.True(content == actual, $"Protos/Kafka/Generated/{name} is stale: run dotnet run --project Protos/Kafka/CodeGen -- Protos/Kafka/Schema Protos/Kafka/Generated");
        }
    }

    [Fact]
    public void EveryMessageDefinitionIsGenerated()
    {
        var schema = Path.Combine(RepoRoot(), "Protos", "Kafka", "Schema");
        var definitions = Directory.GetFiles(schema, "*.json").Select(p => Path.GetFileNameWithoutExtension(p)).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(186, definitions.Count);
        Assert.Equal(definitions, KafkaMessages.All.Select(m => m.Name).Order(StringComparer.Ordinal).ToList());
    }

    [Fact]
    public void ErrorCodesConstantsMatchTheErrorCodeEnum()
    {
        var constants = typeof(ErrorCodes).GetFields()
            .Where(f => f.IsLiteral)
            .ToDictionary(f => f.Name, f => (short)f.GetRawConstantValue()!);
        var members = Enum.GetValues<ErrorCode>().ToDictionary(e => e.ToString(), e => (short)e);

        Assert.Equal(members.Count, constants.Count);
        Assert.All(members, m => Assert.Equal(m.Value, constants[m.Key]));
        Assert.Equal(3, ErrorCodes.UnknownTopicOrPartition);
        Assert.Equal(-1, ErrorCodes.UnknownServerError);
    }
}

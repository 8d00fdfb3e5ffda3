using StreamPlatform.Protos.Kafka.CodeGen;

// Usage: CodeGen <schemaDirectory> <outputDirectory>
if (args.Length != 2)
{
    Console.Error.WriteLine("usage: CodeGen <schema directory> <output directory>");
    return 2;
}

var files = KafkaCodeGenerator.Generate(args[0]);
Directory.CreateDirectory(args[1]);
foreach (var stale in Directory.GetFiles(args[1], "*.cs", SearchOption.AllDirectories))
{
    if (!files.ContainsKey(Path.GetRelativePath(args[1], stale).Replace('\\', '/')))
    {
        File.Delete(stale);
    }
}

foreach (var (name, content) in files)
{
    var path = Path.Combine(args[1], name);
    Directory.CreateDirectory(Path.GetDirectoryName(path)!);
    if (!File.Exists(path) || File.ReadAllText(path) != content)
    {
        File.WriteAllText(path, content);
    }
}

Console.WriteLine($"Generated {files.Count} files into {args[1]}.");
return 0;

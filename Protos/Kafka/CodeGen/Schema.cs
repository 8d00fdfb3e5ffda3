using System.Globalization;
using System.Text.Json;
using static StreamPlatform.Protos.Kafka.CodeGen.JsonNumbers;

namespace StreamPlatform.Protos.Kafka.CodeGen;

/// <summary>An inclusive version range; Lowest &gt; Highest means "none".</summary>
public readonly record struct VersionRange(int Lowest, int Highest)
{
    public const int Open = short.MaxValue;

    public static readonly VersionRange None = new(1, 0);

    public bool IsNone => Lowest > Highest;

    /// <summary>Parses "3+", "0-4", "5" or "none".</summary>
    public static VersionRange Parse(string text)
    {
        text = text.Trim();
        if (text == "none")
        {
            return None;
        }

        if (text.EndsWith('+'))
        {
            return new VersionRange(int.Parse(text[..^1], CultureInfo.InvariantCulture), Open);
        }

        var dash = text.IndexOf('-');
        if (dash > 0)
        {
            return new VersionRange(
                int.Parse(text[..dash], CultureInfo.InvariantCulture),
                int.Parse(text[(dash + 1)..], CultureInfo.InvariantCulture));
        }

        var single = int.Parse(text, CultureInfo.InvariantCulture);
        return new VersionRange(single, single);
    }

    public VersionRange Intersect(VersionRange other)
    {
        var result = new VersionRange(Math.Max(Lowest, other.Lowest), Math.Min(Highest, other.Highest));
        return result.IsNone ? None : result;
    }

    public bool Contains(int version) => version >= Lowest && version <= Highest;
}

public enum TypeKind
{
    Primitive,
    Array,
    Struct,
}

/// <summary>A field type: a primitive, an array of a type, or a struct (by name).</summary>
public sealed record FieldType(TypeKind Kind, string Name, FieldType? Element)
{
    public static readonly HashSet<string> Primitives =
        ["int8", "int16", "int32", "int64", "uint16", "float64", "bool", "string", "bytes", "uuid", "records"];

    public static FieldType Parse(string text)
    {
        if (text.StartsWith("[]", StringComparison.Ordinal))
        {
            return new FieldType(TypeKind.Array, text, Parse(text[2..]));
        }

        return Primitives.Contains(text)
            ? new FieldType(TypeKind.Primitive, text, null)
            : new FieldType(TypeKind.Struct, text, null);
    }

    /// <summary>Primitives with a fixed encoded size, else 0.</summary>
    public int FixedSize => Kind != TypeKind.Primitive ? 0 : Name switch
    {
        "int8" or "bool" => 1,
        "int16" or "uint16" => 2,
        "int32" => 4,
        "int64" or "float64" => 8,
        "uuid" => 16,
        _ => 0,
    };
}

public sealed class FieldSpec
{
    public required string Name { get; init; }
    public required FieldType Type { get; init; }
    public required VersionRange Versions { get; init; }
    public VersionRange NullableVersions { get; init; } = VersionRange.None;
    public VersionRange TaggedVersions { get; init; } = VersionRange.None;
    public int? Tag { get; init; }
    public string? Default { get; init; }
    public VersionRange? FlexibleVersions { get; init; }
    public List<FieldSpec>? Fields { get; init; }

    public static FieldSpec Parse(JsonElement json)
    {
        List<FieldSpec>? fields = null;
        if (json.TryGetProperty("fields", out var f))
        {
            fields = [.. f.EnumerateArray().Select(Parse)];
        }

        return new FieldSpec
        {
            Name = json.GetProperty("name").GetString()!,
            Type = FieldType.Parse(json.GetProperty("type").GetString()!),
            // A tagged-only field (TransactionLogValue's PreviousProducerId) names no "versions":
            // it exists exactly in its tagged versions.
            Versions = VersionRange.Parse((json.TryGetProperty("versions", out var v) ? v : json.GetProperty("taggedVersions")).GetString()!),
            NullableVersions = json.TryGetProperty("nullableVersions", out var n) ? VersionRange.Parse(n.GetString()!) : VersionRange.None,
            TaggedVersions = json.TryGetProperty("taggedVersions", out var t) ? VersionRange.Parse(t.GetString()!) : VersionRange.None,
            Tag = json.TryGetProperty("tag", out var tag) ? ParseInt(tag) : null,
            Default = json.TryGetProperty("default", out var d) ? d.ValueKind switch
            {
                JsonValueKind.String => d.GetString(),
                JsonValueKind.True => "true",
                JsonValueKind.False => "false",
                JsonValueKind.Null => "null",
                _ => d.GetRawText(),
            } : null,
            FlexibleVersions = json.TryGetProperty("flexibleVersions", out var fv) ? VersionRange.Parse(fv.GetString()!) : null,
            Fields = fields,
        };
    }
}

internal static class JsonNumbers
{
    /// <summary>A JSON number or a numeric string ("3", "0x10").</summary>
    public static int ParseInt(JsonElement e)
    {
        if (e.ValueKind == JsonValueKind.Number)
        {
            return e.GetInt32();
        }

        var text = e.GetString()!.Trim();
        return text.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? int.Parse(text[2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture)
            : int.Parse(text, CultureInfo.InvariantCulture);
    }
}

public sealed class StructSpec
{
    public required string Name { get; init; }
    public required List<FieldSpec> Fields { get; init; }
}

public sealed class MessageSpec
{
    public required string Name { get; init; }
    public required string Kind { get; init; }
    public short? ApiKey { get; init; }
    public required VersionRange ValidVersions { get; init; }
    public required VersionRange FlexibleVersions { get; init; }
    public required List<FieldSpec> Fields { get; init; }
    public required List<StructSpec> CommonStructs { get; init; }
    public bool LatestVersionUnstable { get; init; }

    public static MessageSpec Parse(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        var common = new List<StructSpec>();
        if (root.TryGetProperty("commonStructs", out var cs))
        {
            foreach (var s in cs.EnumerateArray())
            {
                common.Add(new StructSpec
                {
                    Name = s.GetProperty("name").GetString()!,
                    Fields = [.. s.GetProperty("fields").EnumerateArray().Select(FieldSpec.Parse)],
                });
            }
        }

        return new MessageSpec
        {
            Name = root.GetProperty("name").GetString()!,
            Kind = root.GetProperty("type").GetString()!,
            ApiKey = root.TryGetProperty("apiKey", out var k) ? (short)ParseInt(k) : null,
            ValidVersions = VersionRange.Parse(root.GetProperty("validVersions").GetString()!),
            FlexibleVersions = VersionRange.Parse(root.GetProperty("flexibleVersions").GetString()!),
            Fields = [.. root.GetProperty("fields").EnumerateArray().Select(FieldSpec.Parse)],
            CommonStructs = common,
            LatestVersionUnstable = root.TryGetProperty("latestVersionUnstable", out var u) && u.ValueKind == JsonValueKind.True,
        };
    }
}

using System.Text;

namespace StreamPlatform.Protos.Kafka.CodeGen;

/// <summary>Indented C# text with "\n" line endings (stable across platforms).</summary>
internal sealed class CodeWriter
{
    private readonly StringBuilder _text = new();
    private int _indent;

    public void Line(string line = "")
    {
        if (line.Length > 0)
        {
            _text.Append(' ', _indent * 4).Append(line);
        }

        _text.Append('\n');
    }

    public void Open(string? header = null)
    {
        if (header is not null)
        {
            Line(header);
        }

        Line("{");
        _indent++;
    }

    public void Close(string suffix = "")
    {
        _indent--;
        Line("}" + suffix);
    }

    /// <summary>Emits <paramref name="body"/> guarded by a condition ("true": unguarded; "false": nothing).</summary>
    public void If(string condition, Action body)
    {
        if (condition == "false")
        {
            return;
        }

        if (condition == "true")
        {
            body();
            return;
        }

        Open($"if ({condition})");
        body();
        Close();
    }

    /// <summary>Like <see cref="If"/>, but the body always gets its own block (for its locals).</summary>
    public void Scope(string condition, Action body)
    {
        if (condition == "false")
        {
            return;
        }

        Open(condition == "true" ? null : $"if ({condition})");
        body();
        Close();
    }

    public override string ToString() => _text.ToString();
}

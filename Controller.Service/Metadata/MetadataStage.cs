using StreamPlatform.Protos.Grpc.Metadata;

namespace StreamPlatform.Controller.Metadata;

/// <summary>
/// Records staged on an immutable state: applying validates them as they are added, and each
/// later decision sees the ones before it. The controller appends <see cref="Records"/> as one
/// log entry and only then adopts <see cref="State"/>.
/// </summary>
internal sealed class MetadataStage(MetadataState state)
{
    public MetadataState State { get; private set; } = state;
    public List<MetadataRecord> Records { get; } = [];

    public void Add(MetadataRecord record)
    {
        State = State.Apply(record);
        Records.Add(record);
    }
}

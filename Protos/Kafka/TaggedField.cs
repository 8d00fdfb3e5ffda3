namespace StreamPlatform.Protos.Kafka;

/// <summary>
/// A tagged field this codec does not know (a newer client's optional extension). It is kept as a
/// slice of the frame and written back unchanged, merged in tag order with the known tagged fields.
/// </summary>
public readonly record struct TaggedField(int Tag, ReadOnlyMemory<byte> Data);

namespace StreamPlatform.Protos.Kafka;

/// <summary>Every generated top-level message (requests, responses, headers, data records).</summary>
public interface IKafkaMessage
{
    /// <summary>The API key for requests and responses; -1 for headers and data records.</summary>
    short ApiKeyValue { get; }

    /// <summary>Decodes this message (at <paramref name="version"/>) from <paramref name="reader"/>.</summary>
    void Read(ref KafkaReader reader, short version);

    /// <summary>Encodes into a writer sized by <see cref="ComputeSize"/>; never allocates.</summary>
    void Write(ref KafkaWriter writer, short version);

    /// <summary>Exact encoded size at <paramref name="version"/>; never allocates.</summary>
    int ComputeSize(short version);
}

/// <summary>A Kafka request body (the header is a separate <c>RequestHeader</c>).</summary>
public interface IKafkaRequest : IKafkaMessage;

/// <summary>A Kafka response body (the header is a separate <c>ResponseHeader</c>).</summary>
public interface IKafkaResponse : IKafkaMessage;

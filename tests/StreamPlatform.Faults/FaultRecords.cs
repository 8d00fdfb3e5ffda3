using System.Globalization;
using System.Text;

namespace StreamPlatform.Faults;

/// <summary>
/// The records the scenario writes: key = the record's sequence number, value = "seed/seq/" and
/// filler derived from both. A record read back is checked against what its key says it must
/// be, so nothing but the sequence number needs to be remembered per acknowledged record.
/// </summary>
public static class FaultRecords
{
    public static byte[] Key(long seq) => Encoding.ASCII.GetBytes(seq.ToString(CultureInfo.InvariantCulture));

    public static byte[] Value(int seed, long seq, int bytes)
    {
        var head = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{seed}/{seq}/"));
        if (head.Length > bytes)
            throw new ArgumentOutOfRangeException(nameof(bytes), bytes, "too small for the record's header");
        var value = new byte[bytes];
        head.CopyTo(value, 0);
        // Filler that differs per record: a record whose tail came from another record is caught.
        var x = ((ulong)seq + 1) * 0x9E3779B97F4A7C15UL ^ (uint)seed;
        for (var i = head.Length; i < bytes; i++)
        {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            value[i] = (byte)('a' + (int)(x % 26));
        }
        return value;
    }

    /// <summary>The sequence number a key names, or -1 when the key is not one of ours.</summary>
    public static long SeqOf(ReadOnlySpan<byte> key)
    {
        if (key.IsEmpty || key.Length > 19) return -1;
        long seq = 0;
        foreach (var b in key)
        {
            if (b is < (byte)'0' or > (byte)'9') return -1;
            seq = seq * 10 + (b - '0');
        }
        return seq;
    }

    /// <summary>Whether <paramref name="value"/> is exactly what record <paramref name="seq"/> of this seed was written with.</summary>
    public static bool ValueMatches(int seed, long seq, int bytes, ReadOnlySpan<byte> value) =>
        value.Length == bytes && value.SequenceEqual(Value(seed, seq, bytes));
}

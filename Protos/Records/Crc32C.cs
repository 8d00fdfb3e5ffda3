using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace StreamPlatform.Protos.Records;

/// <summary>
/// CRC-32C (Castagnoli), the checksum of Kafka record batches v2. Uses the CPU's CRC32
/// instruction (SSE4.2 or ARMv8) when present, a slicing table otherwise.
/// System.IO.Hashing has no Castagnoli variant, hence this file.
/// </summary>
public static class Crc32C
{
    private const uint Polynomial = 0x82F63B78u; // reversed 0x1EDC6F41
    private static readonly uint[] Table = BuildTable();

    public static uint Compute(ReadOnlySpan<byte> data) => ~Append(0xFFFFFFFFu, data);

    /// <summary>Continues a running CRC (pre-inverted state). Start at 0xFFFFFFFF, invert at the end.</summary>
    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        if (Sse42.X64.IsSupported)
        {
            ulong c = crc;
            while (data.Length >= 8)
            {
                c = Sse42.X64.Crc32(c, BinaryPrimitives.ReadUInt64LittleEndian(data));
                data = data[8..];
            }
            crc = (uint)c;
            foreach (var b in data) crc = Sse42.Crc32(crc, b);
            return crc;
        }
        if (Crc32.Arm64.IsSupported)
        {
            while (data.Length >= 8)
            {
                crc = Crc32.Arm64.ComputeCrc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
                data = data[8..];
            }
            foreach (var b in data) crc = Crc32.ComputeCrc32C(crc, b);
            return crc;
        }
        return AppendSoftware(crc, data);
    }

    internal static uint AppendSoftware(uint crc, ReadOnlySpan<byte> data)
    {
        ref var table = ref MemoryMarshal.GetArrayDataReference(Table);
        foreach (var b in data)
            crc = Unsafe.Add(ref table, (int)((crc ^ b) & 0xFF)) ^ (crc >> 8);
        return crc;
    }

    private static uint[] BuildTable()
    {
        var table = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            var c = i;
            for (var k = 0; k < 8; k++)
                c = (c & 1) != 0 ? (c >> 1) ^ Polynomial : c >> 1;
            table[i] = c;
        }
        return table;
    }
}

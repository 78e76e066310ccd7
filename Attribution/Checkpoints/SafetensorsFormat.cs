namespace Attribution.Checkpoints;

using System.Buffers.Binary;
using System.Text.Json;
using static TorchSharp.torch;

/// <summary>
/// The safetensors format: an 8-byte little-endian header length, a JSON header naming each
/// tensor's dtype, shape and byte range, then the raw bytes. We read the header ourselves
/// (instead of TorchSharp.PyBridge) because attribution needs byte offsets for lazy row reads
/// and tensors over 2 GB (Gemma-2's f32 embedding), which PyBridge's loader cannot give.
/// </summary>
public static class SafetensorsFormat
{
    public static IReadOnlyDictionary<string, StoredTensor> ReadHeader(string path)
    {
        using var file = File.OpenRead(path);
        Span<byte> lengthBytes = stackalloc byte[8];
        file.ReadExactly(lengthBytes);
        long headerLength = BinaryPrimitives.ReadInt64LittleEndian(lengthBytes);
        if (headerLength <= 0 || headerLength > 100_000_000 || headerLength > file.Length - 8)
            throw new InvalidDataException($"{path} is not a safetensors file (header length {headerLength})");
        var header = new byte[headerLength];
        file.ReadExactly(header);
        long dataStart = 8 + headerLength;

        var tensors = new Dictionary<string, StoredTensor>(StringComparer.Ordinal);
        using var json = JsonDocument.Parse(header);
        foreach (var entry in json.RootElement.EnumerateObject())
        {
            if (entry.Name == "__metadata__") continue;
            var dtype = ParseDType(entry.Value.GetProperty("dtype").GetString()!, path);
            var shape = entry.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray();
            var offsets = entry.Value.GetProperty("data_offsets").EnumerateArray().Select(d => d.GetInt64()).ToArray();
            var stored = new StoredTensor(entry.Name, path, dataStart + offsets[0], dtype, shape);
            if (offsets[1] - offsets[0] != stored.ElementCount * stored.ElementSize || dataStart + offsets[1] > file.Length)
                throw new InvalidDataException($"{path}: tensor {entry.Name} has an inconsistent byte range");
            tensors[entry.Name] = stored;
        }
        return tensors;
    }

    /// <summary>Writes tensors (CPU or not) in safetensors layout, header padded to 8 bytes as the reference writer does.</summary>
    public static void Write(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var ordered = tensors.OrderBy(t => t.Key, StringComparer.Ordinal).ToList();
        var headerBuffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(headerBuffer))
        {
            writer.WriteStartObject();
            if (metadata is not null)
            {
                writer.WriteStartObject("__metadata__");
                foreach (var (key, value) in metadata) writer.WriteString(key, value);
                writer.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, tensor) in ordered)
            {
                long bytes = tensor.numel() * tensor.element_size();
                writer.WriteStartObject(name);
                writer.WriteString("dtype", DTypeName(tensor.dtype));
                writer.WriteStartArray("shape");
                foreach (var d in tensor.shape) writer.WriteNumberValue(d);
                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(offset);
                writer.WriteNumberValue(offset + bytes);
                writer.WriteEndArray();
                writer.WriteEndObject();
                offset += bytes;
            }
            writer.WriteEndObject();
        }
        while (headerBuffer.Length % 8 != 0) headerBuffer.WriteByte((byte)' ');

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        using var file = File.Create(path);
        Span<byte> lengthBytes = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(lengthBytes, headerBuffer.Length);
        file.Write(lengthBytes);
        headerBuffer.Position = 0;
        headerBuffer.CopyTo(file);
        foreach (var (_, tensor) in ordered)
        {
            using var cpu = tensor.detach().cpu().contiguous();
            cpu.WriteBytesToStream(file);
        }
    }

    /// <summary>The safetensors name of each dtype read and written.</summary>
    private static readonly NameTable<ScalarType> DTypes = new(
        ("F32", ScalarType.Float32),
        ("F16", ScalarType.Float16),
        ("BF16", ScalarType.BFloat16),
        ("F64", ScalarType.Float64),
        ("I64", ScalarType.Int64),
        ("I32", ScalarType.Int32),
        ("I16", ScalarType.Int16),
        ("I8", ScalarType.Int8),
        ("U8", ScalarType.Byte),
        ("BOOL", ScalarType.Bool));

    public static ScalarType ParseDType(string name, string source) =>
        DTypes.TryGetValue(name, out var dtype) ? dtype
            : throw new InvalidDataException($"{source}: unsupported safetensors dtype {name}");

    public static string DTypeName(ScalarType dtype) =>
        DTypes.TryGetName(dtype, out var name) ? name
            : throw new NotSupportedException($"dtype {dtype} has no safetensors name");
}

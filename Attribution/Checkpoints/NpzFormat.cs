namespace Attribution.Checkpoints;

using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;
using ZipEntry = ICSharpCode.SharpZipLib.Zip.ZipEntry;
using ZipReader = ICSharpCode.SharpZipLib.Zip.ZipFile;
using CompressionMethod = ICSharpCode.SharpZipLib.Zip.CompressionMethod;
using static TorchSharp.torch;

/// <summary>
/// NumPy .npz archives (GemmaScope's params.npz): a zip of .npy members, each a small text
/// header (dtype, order, shape) followed by raw little-endian bytes. Members stored without
/// compression (what np.savez writes) are read lazily by byte offset; compressed ones whole.
/// </summary>
public static partial class NpzFormat
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    public static IReadOnlyDictionary<string, StoredTensor> ReadHeader(string path)
    {
        var tensors = new Dictionary<string, StoredTensor>(StringComparer.Ordinal);
        using var zip = new ZipReader(path);
        using var raw = File.OpenRead(path);
        foreach (ZipEntry entry in zip)
        {
            if (!entry.IsFile || !entry.Name.EndsWith(".npy", StringComparison.Ordinal)) continue;
            string name = entry.Name[..^4];
            if (entry.CompressionMethod == CompressionMethod.Stored)
            {
                long memberStart = LocalDataOffset(raw, entry.Offset);
                raw.Position = memberStart;
                var (dtype, shape, headerBytes) = ReadNpyHeader(raw, $"{path}:{entry.Name}");
                tensors[name] = new StoredTensor(name, path, memberStart + headerBytes, dtype, shape);
            }
            else
            {
                long index = entry.ZipFileIndex;
                using var member = zip.GetInputStream(entry);
                var (dtype, shape, headerBytes) = ReadNpyHeader(member, $"{path}:{entry.Name}");
                tensors[name] = new StoredTensor(name, path, 0, dtype, shape)
                {
                    OpenWhole = () => OpenCompressedMember(path, index, headerBytes),
                };
            }
        }
        return tensors;
    }

    /// <summary>Writes tensors as an uncompressed .npz, as numpy.savez does.</summary>
    public static void Write(string path, IReadOnlyDictionary<string, Tensor> tensors)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        using var file = File.Create(path);
        using var zip = new ZipArchive(file, ZipArchiveMode.Create);
        foreach (var (name, tensor) in tensors)
        {
            using var member = zip.CreateEntry(name + ".npy", System.IO.Compression.CompressionLevel.NoCompression).Open();
            using var cpu = tensor.detach().cpu().contiguous();
            WriteNpyHeader(member, cpu.dtype, cpu.shape);
            cpu.WriteBytesToStream(member, 1 << 20);
        }
    }

    /// <summary>The zip local header is 30 bytes plus the name and extra field, whose lengths it states.</summary>
    private static long LocalDataOffset(FileStream raw, long localHeaderOffset)
    {
        Span<byte> header = stackalloc byte[30];
        raw.Position = localHeaderOffset;
        raw.ReadExactly(header);
        if (BinaryPrimitives.ReadUInt32LittleEndian(header) != 0x04034b50)
            throw new InvalidDataException($"{raw.Name}: bad zip local header at {localHeaderOffset}");
        int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(header[26..]);
        int extraLength = BinaryPrimitives.ReadUInt16LittleEndian(header[28..]);
        return localHeaderOffset + 30 + nameLength + extraLength;
    }

    private static Stream OpenCompressedMember(string path, long index, int skipBytes)
    {
        var zip = new ZipReader(path);
        var stream = zip.GetInputStream(index);
        var buffer = new byte[skipBytes];
        stream.ReadExactly(buffer);
        return new OwningStream(stream, zip);
    }

    private static (ScalarType DType, long[] Shape, int HeaderBytes) ReadNpyHeader(Stream stream, string source)
    {
        var prefix = new byte[10];
        stream.ReadExactly(prefix);
        if (!prefix.AsSpan(0, 6).SequenceEqual(Magic)) throw new InvalidDataException($"{source} is not a .npy member");
        int major = prefix[6];
        int headerLength;
        int consumed;
        if (major == 1)
        {
            headerLength = BinaryPrimitives.ReadUInt16LittleEndian(prefix.AsSpan(8));
            consumed = 10;
        }
        else
        {
            var more = new byte[2];
            stream.ReadExactly(more);
            headerLength = (int)BinaryPrimitives.ReadUInt32LittleEndian([prefix[8], prefix[9], more[0], more[1]]);
            consumed = 12;
        }
        var text = new byte[headerLength];
        stream.ReadExactly(text);
        string header = Encoding.Latin1.GetString(text);

        string descr = DescrPattern().Match(header) is { Success: true } d ? d.Groups[1].Value
            : throw new InvalidDataException($"{source}: no descr in .npy header");
        if (FortranPattern().Match(header) is { Success: true } f && f.Groups[1].Value == "True")
            throw new InvalidDataException($"{source}: Fortran-ordered arrays are not supported");
        var shapeMatch = ShapePattern().Match(header);
        if (!shapeMatch.Success) throw new InvalidDataException($"{source}: no shape in .npy header");
        var shape = shapeMatch.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(long.Parse).ToArray();
        return (ParseDescr(descr, source), shape, consumed + headerLength);
    }

    private static void WriteNpyHeader(Stream stream, ScalarType dtype, long[] shape)
    {
        string shapeText = shape.Length == 1 ? $"({shape[0]},)" : $"({string.Join(", ", shape)})";
        string header = $"{{'descr': '{Descr(dtype)}', 'fortran_order': False, 'shape': {shapeText}, }}";
        int total = 10 + header.Length + 1;
        header = header.PadRight(header.Length + (64 - total % 64) % 64) + "\n";
        stream.Write(Magic);
        stream.Write([1, 0]);
        Span<byte> length = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(length, (ushort)header.Length);
        stream.Write(length);
        stream.Write(Encoding.Latin1.GetBytes(header));
    }

    /// <summary>The .npy descr of each dtype read and written: little-endian, byte order "|" where there is none.</summary>
    private static readonly NameTable<ScalarType> Descrs = new(
        ("<f4", ScalarType.Float32),
        ("<f2", ScalarType.Float16),
        ("<f8", ScalarType.Float64),
        ("<i8", ScalarType.Int64),
        ("<i4", ScalarType.Int32),
        ("|u1", ScalarType.Byte),
        ("|b1", ScalarType.Bool));

    private static ScalarType ParseDescr(string descr, string source) =>
        Descrs.TryGetValue(descr, out var dtype) ? dtype
            : throw new InvalidDataException($"{source}: unsupported .npy dtype {descr}");

    private static string Descr(ScalarType dtype) =>
        Descrs.TryGetName(dtype, out var descr) ? descr
            : throw new NotSupportedException($"numpy has no dtype for {dtype}");

    [GeneratedRegex(@"'descr'\s*:\s*'([^']+)'")]
    private static partial Regex DescrPattern();

    [GeneratedRegex(@"'fortran_order'\s*:\s*(True|False)")]
    private static partial Regex FortranPattern();

    [GeneratedRegex(@"'shape'\s*:\s*\(([^)]*)\)")]
    private static partial Regex ShapePattern();

    /// <summary>A member stream that also closes the archive it came from.</summary>
    private sealed class OwningStream(Stream inner, IDisposable owner) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
        public override int Read(Span<byte> buffer) => inner.Read(buffer);
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
                owner.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}

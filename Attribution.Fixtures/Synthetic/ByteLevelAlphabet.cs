namespace Attribution.Synthetic;

using System.Text;

/// <summary>
/// The printable stand-in characters that byte-level BPE (GPT-2, Llama 3, Qwen) uses for the 256
/// byte values, so that every byte string is a string of visible characters.
/// </summary>
/// <remarks>
/// Bytes that are already printable and not whitespace keep their own code point ('!'..'~',
/// '¡'..'¬', '®'..'ÿ'); the remaining 68 bytes take the code points from U+0100 upwards in byte
/// order, so the space (0x20) becomes 'Ġ' and the newline 'Ċ'.
/// </remarks>
internal static class ByteLevelAlphabet
{
    private static readonly char[] CharOfByte = BuildTable();

    public static char CharFor(byte value) => CharOfByte[value];

    /// <summary>The byte-level piece that spells these bytes.</summary>
    public static string Spell(ReadOnlySpan<byte> bytes)
    {
        var piece = new StringBuilder(bytes.Length);
        foreach (var b in bytes)
        {
            piece.Append(CharOfByte[b]);
        }

        return piece.ToString();
    }

    private static char[] BuildTable()
    {
        var table = new char[256];
        var next = 0x100;
        for (var b = 0; b < 256; b++)
        {
            table[b] = KeepsItsOwnCodePoint(b) ? (char)b : (char)next++;
        }

        return table;
    }

    private static bool KeepsItsOwnCodePoint(int b) =>
        b is (>= '!' and <= '~') or (>= 0xA1 and <= 0xAC) or (>= 0xAE and <= 0xFF);
}

namespace Attribution;

/// <summary>
/// A fixed two-way map between the names a file format spells and enum values. A format's reader
/// and writer both ask one table, so the names they accept and the names they write cannot drift
/// apart. A value listed under several names (an alias a reader accepts) is written under the
/// first one listed, its canonical name.
/// </summary>
internal sealed class NameTable<T>(params (string Name, T Value)[] entries)
    where T : struct, Enum
{
    /// <summary>Every name, in table order, for messages that list what is accepted.</summary>
    public IEnumerable<string> Names => entries.Select(e => e.Name);

    public bool TryGetValue(string name, out T value)
    {
        foreach (var entry in entries)
        {
            if (string.Equals(entry.Name, name, StringComparison.Ordinal))
            {
                value = entry.Value;
                return true;
            }
        }
        value = default;
        return false;
    }

    /// <summary>The canonical (first listed) name of a value.</summary>
    public bool TryGetName(T value, out string name)
    {
        foreach (var entry in entries)
        {
            if (EqualityComparer<T>.Default.Equals(entry.Value, value))
            {
                name = entry.Name;
                return true;
            }
        }
        name = "";
        return false;
    }
}

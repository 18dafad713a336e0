namespace KextTrust.Kexts.Kpi;

/// <summary>
/// One of the macOS releases the KPI catalog covers (one xnu <c>config/</c> snapshot each): 10.15, 11, 12,
/// 13, 14, 15 (15.0–15.3) and 15.4 (15.4 and later 15.x).
/// </summary>
public sealed record MacOSRelease : IComparable<MacOSRelease>
{
    private MacOSRelease(int index, string key, string name, MacOSVersion first, MacOSVersion end, int kernelMajor)
    {
        Index = index;
        Key = key;
        Name = name;
        FirstVersion = first;
        EndVersion = end;
        KernelMajor = kernelMajor;
        DisplayName = key switch
        {
            "15" => $"macOS {name} 15.0–15.3",
            "15.4" => $"macOS {name} 15.4+",
            _ => $"macOS {name} {key}",
        };
    }

    /// <summary>Position in <see cref="All"/> (0 = 10.15).</summary>
    public int Index { get; }

    /// <summary>Catalog key: <c>10.15</c>, <c>11</c> … <c>15</c>, <c>15.4</c>.</summary>
    public string Key { get; }

    /// <summary>Marketing name: Catalina, Big Sur, Monterey, Ventura, Sonoma, Sequoia.</summary>
    public string Name { get; }

    /// <summary>First macOS version this release stands for.</summary>
    public MacOSVersion FirstVersion { get; }

    /// <summary>First version no longer covered (exclusive bound): 10.16, 12.0, …, 15.4 for 15, 16.0 for 15.4.</summary>
    public MacOSVersion EndVersion { get; }

    /// <summary>Darwin kernel major version (19 for 10.15 … 24 for 15): the pseudo-kexts' CFBundleVersion major.</summary>
    public int KernelMajor { get; }

    /// <summary>Data folder name in <c>tools/KextTrust.KpiCatalogGen/data/xnu-kpi</c>.</summary>
    public string FolderName => "macos-" + Key;

    /// <summary>"macOS Big Sur 11", "macOS Sequoia 15.0–15.3", "macOS Sequoia 15.4+".</summary>
    public string DisplayName { get; }

    /// <summary>macOS Catalina 10.15.</summary>
    public static MacOSRelease Catalina { get; } = new(0, "10.15", "Catalina", new(10, 15), new(10, 16), 19);

    /// <summary>macOS Big Sur 11.</summary>
    public static MacOSRelease BigSur { get; } = new(1, "11", "Big Sur", new(11, 0), new(12, 0), 20);

    /// <summary>macOS Monterey 12.</summary>
    public static MacOSRelease Monterey { get; } = new(2, "12", "Monterey", new(12, 0), new(13, 0), 21);

    /// <summary>macOS Ventura 13.</summary>
    public static MacOSRelease Ventura { get; } = new(3, "13", "Ventura", new(13, 0), new(14, 0), 22);

    /// <summary>macOS Sonoma 14.</summary>
    public static MacOSRelease Sonoma { get; } = new(4, "14", "Sonoma", new(14, 0), new(15, 0), 23);

    /// <summary>macOS Sequoia 15.0–15.3.</summary>
    public static MacOSRelease Sequoia { get; } = new(5, "15", "Sequoia", new(15, 0), new(15, 4), 24);

    /// <summary>macOS Sequoia 15.4 and later 15.x.</summary>
    public static MacOSRelease Sequoia15_4 { get; } = new(6, "15.4", "Sequoia", new(15, 4), new(16, 0), 24);

    /// <summary>All releases, oldest first.</summary>
    public static IReadOnlyList<MacOSRelease> All { get; } =
        [Catalina, BigSur, Monterey, Ventura, Sonoma, Sequoia, Sequoia15_4];

    /// <summary>True when <paramref name="version"/> is one this release stands for.</summary>
    public bool Covers(MacOSVersion version) =>
        version >= FirstVersion && version < EndVersion;

    /// <summary>The release that covers a version (10.15.x → 10.15, 15.0–15.3 → 15, 15.4+ → 15.4), or null.</summary>
    public static MacOSRelease? ForVersion(MacOSVersion version)
    {
        for (var i = All.Count - 1; i >= 0; i--)
        {
            if (All[i].Covers(version))
            {
                return All[i];
            }
        }
        return null;
    }

    /// <summary>
    /// Parses "11", "11.2", "15.3", "15.4.1", "10.15.7", a catalog key or a folder name ("macos-15.4"), with an
    /// optional leading "macOS ". False for versions outside the catalog (10.14, 16, …).
    /// </summary>
    public static bool TryParse(string? text, out MacOSRelease? release)
    {
        release = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }
        var t = text.Trim();
        if (t.StartsWith("macos-", StringComparison.OrdinalIgnoreCase))
        {
            t = t[6..];
        }
        else if (t.StartsWith("macOS ", StringComparison.OrdinalIgnoreCase))
        {
            t = t[6..].Trim();
        }
        if (!MacOSVersion.TryParse(t, out var version))
        {
            return false;
        }
        release = ForVersion(version);
        return release is not null;
    }

    /// <summary>Parses or throws <see cref="FormatException"/>.</summary>
    public static MacOSRelease Parse(string text) =>
        TryParse(text, out var r) ? r! : throw new FormatException($"not a macOS release the KPI catalog covers: '{text}'");

    /// <inheritdoc/>
    public int CompareTo(MacOSRelease? other) => other is null ? 1 : Index.CompareTo(other.Index);

    /// <inheritdoc/>
    public bool Equals(MacOSRelease? other) => other is not null && Index == other.Index;

    /// <inheritdoc/>
    public override int GetHashCode() => Index;

    /// <inheritdoc/>
    public override string ToString() => DisplayName;
}

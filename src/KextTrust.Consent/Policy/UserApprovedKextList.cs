using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Text;
using KextTrust.Formats.Image4;

namespace KextTrust.Consent.Policy;

/// <summary>One authorization of the UAKL. <see cref="BundleId"/> "" means every kext of the team.</summary>
/// <param name="TeamId">Team identifier; empty for unsigned kexts (approved only with SIP's kext bit off).</param>
/// <param name="BundleId">CFBundleIdentifier; "" for every kext of <paramref name="TeamId"/>.</param>
/// <param name="Source">How it was approved.</param>
/// <param name="CdHash">The approved code directory hash (lower-case hex, 20 bytes), or null for any.</param>
public sealed record UaklEntry(string TeamId, string BundleId, ConsentSource Source, string? CdHash);

/// <summary>
/// The user-authorized kext list: every authorization in force on the Mac (user approvals, MDM, spctl teams,
/// grandfathered and replacement kexts, and — when consent is not in force — each installed kext).
/// <para>Byte format (all integers big-endian), deterministic:</para>
/// <code>
/// "UAKL" | u8 version = 1 | u8 0 | u16 0 | u32 count
/// count × { u8 source (ConsentSource value) | u16 len + UTF-8 team id | u16 len + UTF-8 bundle id ("" = whole team)
///           | u8 cdhash length (0 or 20) + cdhash bytes }
/// </code>
/// Entries are unique and sorted by team id, bundle id (UTF-8 ordinal), then source, then cdhash.
/// <see cref="Hash"/> is the SHA-384 of these bytes: the LocalPolicy's <c>auxp</c> and the kext receipt name it.
/// kmd builds the AuxKC from this list (<see cref="TryFind"/>).
/// </summary>
public sealed record UserApprovedKextList(IReadOnlyList<UaklEntry> Entries)
{
    /// <summary>Builds the canonical list (dedupe + sort).</summary>
    public static UserApprovedKextList Create(IEnumerable<UaklEntry> entries) =>
        new(entries.Distinct()
            .OrderBy(e => e.TeamId, StringComparer.Ordinal).ThenBy(e => e.BundleId, StringComparer.Ordinal)
            .ThenBy(e => e.Source).ThenBy(e => e.CdHash ?? "", StringComparer.Ordinal).ToArray());

    /// <summary>The canonical bytes.</summary>
    public byte[] ToBytes()
    {
        var ms = new MemoryStream();
        Span<byte> b4 = stackalloc byte[4];
        ms.Write("UAKL"u8);
        ms.Write([1, 0, 0, 0]);
        BinaryPrimitives.WriteUInt32BigEndian(b4, (uint)Entries.Count);
        ms.Write(b4);
        foreach (var e in Entries)
        {
            ms.WriteByte((byte)e.Source);
            WriteString(ms, e.TeamId);
            WriteString(ms, e.BundleId);
            var cd = e.CdHash is null ? [] : Convert.FromHexString(e.CdHash);
            ms.WriteByte((byte)cd.Length);
            ms.Write(cd);
        }
        return ms.ToArray();
    }

    private static void WriteString(Stream s, string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        Span<byte> len = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(len, checked((ushort)bytes.Length));
        s.Write(len);
        s.Write(bytes);
    }

    /// <summary>SHA-384 of <see cref="ToBytes"/> (the value of the LocalPolicy's <c>auxp</c>).</summary>
    public Sha384Digest Hash => Sha384Digest.Compute(ToBytes());

    /// <summary><see cref="Hash"/> in lower-case hex.</summary>
    public string Sha384 => Hash.ToString();

    /// <summary>
    /// The entry that authorizes <paramref name="bundleId"/> of <paramref name="teamId"/>: the first in canonical order
    /// naming exactly this team and bundle id, else the first team-wide entry of this (non-empty) team.
    /// </summary>
    public bool TryFind(string teamId, string bundleId, [NotNullWhen(true)] out UaklEntry? entry)
    {
        entry = Entries.FirstOrDefault(x => x.TeamId == teamId && x.BundleId == bundleId)
            ?? Entries.FirstOrDefault(x => x.TeamId == teamId && teamId.Length > 0 && x.BundleId.Length == 0);
        return entry is not null;
    }

    /// <summary>The teams for which <paramref name="bundleId"/> is listed (to explain a team mismatch).</summary>
    public IReadOnlyList<string> TeamsFor(string bundleId) => Entries.Where(e => e.BundleId == bundleId).Select(e => e.TeamId).Distinct().ToArray();

    /// <summary>Reads the byte format back; malformed input is a <see cref="ConsentException"/>.</summary>
    public static UserApprovedKextList Parse(ReadOnlySpan<byte> bytes, string source)
    {
        ConsentException Bad(string m) => new(ConsentCode.InvalidArgument, source, "malformed UAKL: " + m);
        if (bytes.Length < 12 || !bytes[..4].SequenceEqual("UAKL"u8) || bytes[4] != 1)
        {
            throw Bad("bad header");
        }
        var count = BinaryPrimitives.ReadUInt32BigEndian(bytes[8..]);
        var pos = 12;
        var list = new List<UaklEntry>();
        string Str(ReadOnlySpan<byte> b)
        {
            if (pos + 2 > b.Length) { throw Bad("truncated"); }
            var n = BinaryPrimitives.ReadUInt16BigEndian(b[pos..]);
            pos += 2;
            if (pos + n > b.Length) { throw Bad("truncated"); }
            var s = Encoding.UTF8.GetString(b.Slice(pos, n));
            pos += n;
            return s;
        }
        for (var i = 0u; i < count; i++)
        {
            if (pos >= bytes.Length) { throw Bad("truncated"); }
            var src = bytes[pos++];
            if (!Enum.IsDefined((ConsentSource)src)) { throw Bad($"unknown source {src}"); }
            var team = Str(bytes);
            var bundle = Str(bytes);
            if (pos >= bytes.Length) { throw Bad("truncated"); }
            var n = bytes[pos++];
            if (n is not (0 or 20) || pos + n > bytes.Length) { throw Bad("bad cdhash length"); }
            var cd = n == 0 ? null : Convert.ToHexStringLower(bytes.Slice(pos, n));
            pos += n;
            list.Add(new UaklEntry(team, bundle, (ConsentSource)src, cd));
        }
        if (pos != bytes.Length) { throw Bad("trailing bytes"); }
        return new UserApprovedKextList(list);
    }
}

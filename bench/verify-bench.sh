#!/usr/bin/env bash
# Whole-process benchmark of `kextrust verify` against `openssl dgst -sha256` over the same bytes
# (one openssl process = the hashing limit of one core).
#   bash bench/verify-bench.sh [FIXTURE_COUNT]     (default 1000 signed fixture kexts, ~56 MB of executables)
# Inputs: every Mach-O of the osx-arm64 and osx-x64 runtime packs (Microsoft, Developer ID) and a folder of
# our own signed fixture kexts (kextrust pki init + kextrust codesign). Needs hyperfine, openssl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-1000}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

nuget="${NUGET_PACKAGES:-$HOME/.nuget/packages}"
packs=()
for rid in osx-arm64 osx-x64; do
  dir=$(ls -d "$nuget"/microsoft.netcore.app.runtime.$rid/*/runtimes/$rid/native 2>/dev/null | sort -V | tail -1)
  [ -n "$dir" ] || { echo "runtime pack $rid not restored: run dotnet restore tests/KextTrust.TestSupport" >&2; exit 2; }
  packs+=("$dir")
done
find "${packs[@]}" -type f \( -name '*.dylib' -o -name createdump \) | sort > "$work/files.txt"
bytes=$(xargs -a "$work/files.txt" cat | wc -c)
echo "runtime packs: $(wc -l < "$work/files.txt") Mach-O files, $bytes bytes"

bash bench/publish-cli.sh "$work/cli"   # Native AOT as shipped; KEXTRUST_BUILD=r2r for ReadyToRun
kx="$work/cli/kextrust"
"$kx" pki init "$work/pki" >/dev/null
dotnet run -c Release --project bench/KextTrust.Benchmarks -- corpus "$work/fixtures" "$count"
find "$work/fixtures" -name '*.kext' -not -path '*/PlugIns/*' | sort > "$work/kexts.txt"
xargs -a "$work/kexts.txt" "$kx" codesign --p12 "$work/pki/leaf.p12" --password kextrust >/dev/null
find "$work/fixtures" -path '*/MacOS/*' -type f | sort > "$work/fixture-exes.txt"
fixture_bytes=$(xargs -a "$work/fixture-exes.txt" cat | wc -c)
echo "fixtures: $(wc -l < "$work/kexts.txt") signed kexts, $fixture_bytes executable bytes"

# Sanity: everything verifies before it is timed.
"$kx" verify --json "${packs[@]}" > /dev/null
"$kx" verify --json --trust-root "$work/pki/root.pem" "$work/fixtures" > /dev/null

# Every command runs without a shell (-N; hyperfine discards the output): openssl gets the file list itself, so its
# time is one openssl process and nothing else (no xargs, no shell), the strictest form of the limit.
hyperfine -N --warmup 3 --runs 30 --export-json "$work/result.json" --export-markdown "$work/result.md" \
  -n "openssl dgst -sha256 (1 core)" "openssl dgst -sha256 $(tr '\n' ' ' < "$work/files.txt")" \
  -n "kextrust verify --parallel 1" "$kx verify --json --parallel 1 ${packs[*]}" \
  -n "kextrust verify (all cores)" "$kx verify --json ${packs[*]}"
hyperfine -N --warmup 1 --runs 10 --export-json "$work/fixtures.json" --export-markdown "$work/fixtures.md" \
  -n "openssl dgst -sha256 fixtures (1 core)" "openssl dgst -sha256 $(tr '\n' ' ' < "$work/fixture-exes.txt")" \
  -n "kextrust verify fixtures --parallel 1" "$kx verify --json --parallel 1 --trust-root $work/pki/root.pem $work/fixtures" \
  -n "kextrust verify fixtures (all cores)" "$kx verify --json --trust-root $work/pki/root.pem $work/fixtures"
cat "$work/result.md" "$work/fixtures.md"
python3 - "$work/result.json" "$bytes" "$work/fixtures.json" "$fixture_bytes" <<'PY'
import json, sys
for result, size in ((sys.argv[1], int(sys.argv[2])), (sys.argv[3], int(sys.argv[4]))):
    res = json.load(open(result))["results"]
    t = {r["command"]: (r["mean"], r["user"] + r["system"]) for r in res}
    o = next(v[0] for k, v in t.items() if k.startswith("openssl"))
    for name, (wall, cpu) in t.items():
        print(f"{name:40s} {wall*1000:8.1f} ms wall {cpu*1000:8.1f} ms cpu {size/wall/1e6:8.1f} MB/s ({o/wall*100:5.1f} % of openssl)")
print("note: kextrust hashes every page with the strongest CodeDirectory (the 10.0.x runtime packs carry SHA-256 only; "
      "--all-code-directories would add the alternates), and its times include process start-up, the CMS and the chain; "
      "for the fixtures also the bundle, Info.plist and the resource seal of every kext.")
PY

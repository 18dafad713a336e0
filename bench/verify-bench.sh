#!/usr/bin/env bash
# Whole-process benchmark of `kextrust verify` against `openssl dgst -sha256` over the same bytes
# (one openssl process = the hashing limit of one core).
#   bash bench/verify-bench.sh [FIXTURE_COUNT]     (default 200 signed fixture kexts)
# Inputs: every Mach-O of the osx-arm64 and osx-x64 runtime packs (Microsoft, Developer ID) and a folder of
# our own signed fixture kexts (kextrust pki init + kextrust codesign). Needs hyperfine, openssl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-200}"
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

dotnet publish src/KextTrust.Cli -c Release -o "$work/cli" -p:PublishReadyToRun=true --nologo -v q >/dev/null
kx="$work/cli/kextrust"
"$kx" pki init "$work/pki" >/dev/null
dotnet run -c Release --project bench/KextTrust.Benchmarks -- corpus "$work/fixtures" "$count"
find "$work/fixtures" -name '*.kext' -not -path '*/PlugIns/*' | sort > "$work/kexts.txt"
xargs -a "$work/kexts.txt" "$kx" codesign --p12 "$work/pki/leaf.p12" --password kextrust >/dev/null
fixture_bytes=$(find "$work/fixtures" -path '*/MacOS/*' -type f -print0 | xargs -0 cat | wc -c)
echo "fixtures: $(wc -l < "$work/kexts.txt") signed kexts, $fixture_bytes executable bytes"

# Sanity: everything verifies before it is timed.
"$kx" verify --json "${packs[@]}" > /dev/null
"$kx" verify --json --trust-root "$work/pki/root.pem" "$work/fixtures" > /dev/null

hyperfine --warmup 2 --runs 10 --export-json "$work/result.json" --export-markdown "$work/result.md" \
  -n "openssl dgst -sha256 (1 core)" "xargs -a $work/files.txt openssl dgst -sha256 > /dev/null" \
  -n "kextrust verify --parallel 1" "$kx verify --json --parallel 1 ${packs[*]} > /dev/null" \
  -n "kextrust verify (all cores)" "$kx verify --json ${packs[*]} > /dev/null" \
  -n "kextrust verify fixtures (all cores)" "$kx verify --json --trust-root $work/pki/root.pem $work/fixtures > /dev/null"
cat "$work/result.md"
python3 - "$work/result.json" "$bytes" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
size = int(sys.argv[2])
t = {r["command"]: r["mean"] for r in res}
o = t["openssl dgst -sha256 (1 core)"]
for name in ["openssl dgst -sha256 (1 core)", "kextrust verify --parallel 1", "kextrust verify (all cores)"]:
    print(f"{name:34s} {t[name]*1000:8.1f} ms  {size/t[name]/1e6:8.1f} MB/s  ({o/t[name]*100:5.1f} % of openssl)")
print("note: kextrust hashes every page once per CodeDirectory (Microsoft's files carry SHA-1 and SHA-256), "
      "and its times include process start-up, the CMS and the chain.")
PY

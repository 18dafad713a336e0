#!/usr/bin/env bash
# Whole-process benchmark of the kextrust CLI over a corpus of kexts, against llvm-nm-14 -u run once over
# the same executables (an independent tool doing strictly less: symbols only, no plists, no signatures).
#   bash bench/cli-bench.sh [COUNT]        (default 1000 kexts)
# Needs: hyperfine, llvm-14 (apt-get install -y hyperfine llvm-14).
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-1000}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

bash bench/publish-cli.sh "$work/cli"   # Native AOT as shipped; KEXTRUST_BUILD=r2r for ReadyToRun
dotnet run -c Release --project bench/KextTrust.Benchmarks -- corpus "$work/corpus" "$count"
find "$work/corpus" -path '*/Contents/MacOS/*' -type f | sort > "$work/exes.txt"
bytes=$(xargs -a "$work/exes.txt" cat | wc -c)
echo "corpus: $count kexts, $(wc -l < "$work/exes.txt") executables, $bytes bytes"

cmds=("$work/cli/kextrust inspect --json $work/corpus > /dev/null"
      "xargs -a $work/exes.txt llvm-nm-14 -u > /dev/null")
if "$work/cli/kextrust" --help 2>/dev/null | grep -qE "^\s+audit\b"; then
  cmds+=("$work/cli/kextrust audit --json $work/corpus > /dev/null || true")
fi
hyperfine --warmup 2 --runs 10 --export-markdown "$work/result.md" "${cmds[@]}"
cat "$work/result.md"

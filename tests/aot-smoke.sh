#!/usr/bin/env bash
# The shipped form of kextrust is a Native AOT executable: this check publishes it and runs it beside the JIT build
# that the test suite exercised, over inputs neither wrote for itself:
#   - inspect / audit (--json and --sarif) / verify over a 200-kext corpus and Microsoft's signed runtime-pack
#     Mach-O files: byte-identical output, identical exit codes;
#   - codesign + verify --trust-root with a private PKI, as JSON: identical; mdm profile from those kexts: identical;
#   - img4 info / verify --json over the real Image4 files in tests/data/image4: identical;
#   - the demo (SQLite, Secure Enclave, Image4, LocalPolicy, kmd, iBoot, kernel) succeeds, every step as expected.
#   bash tests/aot-smoke.sh
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The JIT build (Debug, as the tests ran it) and the corpus writer; up to date after the tests, built if not.
dotnet build src/KextTrust.Cli --nologo -v q >/dev/null
dotnet build bench/KextTrust.Benchmarks --nologo -v q >/dev/null
jit_dll=src/KextTrust.Cli/bin/Debug/net10.0/kextrust.dll
bench_dll=bench/KextTrust.Benchmarks/bin/Debug/net10.0/KextTrust.Benchmarks.dll
bash bench/publish-cli.sh "$work/aot"
aot="$work/aot/kextrust"
jit=(dotnet "$jit_dll")
fail=0

same() { # NAME ARGS... : runs both builds, compares stdout and exit code
  local name="$1"; shift
  set +e
  "$aot" "$@" > "$work/$name.aot" 2> "$work/$name.aot.err"; local a=$?
  "${jit[@]}" "$@" > "$work/$name.jit" 2> "$work/$name.jit.err"; local j=$?
  set -e
  if [ "$a" != "$j" ] || ! cmp -s "$work/$name.aot" "$work/$name.jit"; then
    echo "FAIL $name: AOT exit $a, JIT exit $j; first difference:"; diff "$work/$name.aot" "$work/$name.jit" | head -n 5
    head -c 400 "$work/$name.aot.err"
    fail=1
  else
    echo "ok   $name: exit $a, $(wc -c < "$work/$name.aot") bytes identical"
  fi
}

dotnet "$bench_dll" corpus "$work/corpus" 200 >/dev/null
nuget="${NUGET_PACKAGES:-$HOME/.nuget/packages}"
packs=$(ls -d "$nuget"/microsoft.netcore.app.runtime.osx-arm64/*/runtimes/osx-arm64/native 2>/dev/null | sort -V | tail -n 1)
[ -n "$packs" ] || { echo "aot-smoke: the osx-arm64 runtime pack is not restored" >&2; exit 2; }

same inspect inspect --json "$work/corpus"
same audit audit --json "$work/corpus"
same sarif audit --sarif "$work/corpus"
mapfile -t pack_files < <(find "$packs" -type f \( -name '*.dylib' -o -name createdump \) | sort)
for f in libcoreclr.dylib libSystem.Native.dylib createdump; do same "inspect-$f" inspect --json "$packs/$f"; done
same audit-packs audit --json "${pack_files[@]}"
same verify-packs verify --json "$packs"
"$aot" pki init "$work/pki" >/dev/null
find "$work/corpus" -maxdepth 1 -name '*.kext' | sort | sed -n 1,20p > "$work/kexts.txt"
mkdir "$work/signed"
xargs -a "$work/kexts.txt" cp -r -t "$work/signed"
find "$work/signed" -maxdepth 1 -name '*.kext' | sort | xargs "$aot" codesign --p12 "$work/pki/leaf.p12" --password kextrust >/dev/null
same verify-signed verify --json --trust-root "$work/pki/root.pem" "$work/signed"
# A kext policy profile from the signed kexts (same output path for both builds, so the JSON and the file compare).
same mdm-profile mdm profile --json --trust-root "$work/pki/root.pem" -o "$work/kexts.mobileconfig" "$work/signed"
cp "$work/kexts.mobileconfig" "$work/kexts.jit.mobileconfig"
"$aot" mdm profile --trust-root "$work/pki/root.pem" -o "$work/kexts.mobileconfig" "$work/signed" >/dev/null
cmp -s "$work/kexts.mobileconfig" "$work/kexts.jit.mobileconfig" || { echo "FAIL mdm-profile: the two builds wrote different profiles"; fail=1; }
for f in tests/data/image4/pyimg4-IMG4 tests/data/image4/img4helper-apticket.shsh2 tests/data/image4/pyimg4-IM4R; do
  same "img4-info-$(basename "$f")" img4 info --json "$f"
done
same img4-verify-shsh2 img4 verify --json tests/data/image4/img4helper-apticket.shsh2
same img4-verify-im4m img4 verify --json tests/data/image4/img4helper-apticket.im4m

set +e
"$aot" demo --json > "$work/demo.json"; rc=$?
set -e
if python3 - "$work/demo.json" "$rc" <<'PY'
import json, sys
d, rc = json.load(open(sys.argv[1])), int(sys.argv[2])
bad = [s for s in d["steps"] if not s["asExpected"]]
assert rc == 0 and d["succeeded"] and not bad and len(d["steps"]) >= 10, (rc, bad)
print(f"ok   demo: {len(d['steps'])} steps as expected in {d['elapsedSeconds']:.2f} s")
PY
then :; else echo "FAIL demo (exit $rc)"; fail=1; fi
exit $fail

#!/usr/bin/env bash
# Whole-process benchmark of `kextrust startup` (iBoot + kernel on the simulated Mac) against
# `openssl dgst -sha384` over the same AuxKC file, for Apple-silicon Macs whose AuxKC holds 10, 100 and 500 kexts,
# and of the kmd rebuild (`kextrust kmutil create`) of the largest.
#   bash bench/startup-bench.sh [COUNTS...]        (default: 10 100 500)
#   BENCH_WORK=DIR keeps the Macs and the published CLI in DIR (default: a temporary folder, removed at the end).
# Each Mac is built through the CLI as a user would: pki init, codesign, machine init --trust-root, install,
# One True Recovery + bputil -g -k, approve --team, kmutil create. Needs hyperfine, openssl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then counts=("$@"); else counts=(10 100 500); fi
if [ -n "${BENCH_WORK:-}" ]; then work="$BENCH_WORK"; mkdir -p "$work"; else work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT; fi

bash bench/publish-cli.sh "$work/cli"   # Native AOT as shipped; KEXTRUST_BUILD=r2r for ReadyToRun
dotnet build bench/KextTrust.Benchmarks -c Release --nologo -v q >/dev/null
bench_dll=bench/KextTrust.Benchmarks/bin/Release/net10.0/KextTrust.Benchmarks.dll
kx="$work/cli/kextrust"
team=BENCH00001
"$kx" pki init "$work/pki" --team "$team" >/dev/null

aux_kc=Preboot/boot/AuxiliaryKernelExtensions/AuxiliaryKernelExtensions.kc
cmds=()
for n in "${counts[@]}"; do
  mac="$work/mac$n"
  dotnet "$bench_dll" corpus "$work/kexts$n" "$n" --boot
  find "$work/kexts$n" -maxdepth 1 -name '*.kext' | sort > "$work/kexts$n.txt"
  xargs -a "$work/kexts$n.txt" "$kx" codesign --p12 "$work/pki/leaf.p12" --password kextrust >/dev/null
  "$kx" machine init "$mac" --platform apple-silicon --macos 14.5 --admin admin:pw --trust-root "$work/pki/root.pem" >/dev/null
  xargs -a "$work/kexts$n.txt" "$kx" install --machine "$mac" --json >/dev/null
  "$kx" startup --machine "$mac" --recovery >/dev/null
  "$kx" bputil --machine "$mac" -g -k -u admin -p pw >/dev/null
  "$kx" startup --machine "$mac" >/dev/null
  "$kx" approve --machine "$mac" --team "$team" --user admin --password pw >/dev/null
  "$kx" kmutil create --machine "$mac" -u admin -p pw --json > "$work/create$n.json"
  "$kx" startup --machine "$mac" --json > "$work/startup$n.json"
  python3 - "$work/create$n.json" "$work/startup$n.json" "$n" <<'PY'
import json, sys
create, boot, n = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), int(sys.argv[3])
assert len(create["included"]) == n, f"AuxKC has {len(create['included'])} kexts, expected {n}"
assert boot["refusal"] is None and len(boot["loaded"]) == n, f"startup loaded {len(boot['loaded'])}: {boot['refusal']}"
print(f"mac{n}: AuxKC of {n} kexts, {create['auxKc']['bytes']} bytes; startup loads all {n}")
PY
  cmds+=(-n "openssl dgst -sha384 AuxKC($n)" "openssl dgst -sha384 $mac/$aux_kc"
         -n "kextrust startup AuxKC($n)" "$kx startup --machine $mac")
done

hyperfine --warmup 3 --runs 15 --export-json "$work/startup.json" --export-markdown "$work/startup.md" "${cmds[@]}"
last="${counts[${#counts[@]}-1]}"
hyperfine --warmup 1 --runs 10 --export-json "$work/rebuild.json" --export-markdown "$work/rebuild.md" \
  -n "kextrust kmutil create ($last kexts)" "$kx kmutil create --machine $work/mac$last -u admin -p pw"
cat "$work/startup.md" "$work/rebuild.md"
python3 - "$work/startup.json" "$work/rebuild.json" "$work" "$aux_kc" "${counts[@]}" <<'PY'
import json, os, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
work, aux = sys.argv[3], sys.argv[4]
print(f"{'AuxKC':>12} {'bytes':>10} | {'openssl ms':>10} {'MB/s':>7} | {'startup ms':>10} {'user+sys ms':>11} {'MB/s':>7} | startup/openssl")
for n in sys.argv[5:]:
    size = os.path.getsize(f"{work}/mac{n}/{aux}")
    o, k = res[f"openssl dgst -sha384 AuxKC({n})"], res[f"kextrust startup AuxKC({n})"]
    print(f"{n + ' kexts':>12} {size:>10} | {o['mean']*1e3:>10.1f} {size/o['mean']/1e6:>7.0f} | {k['mean']*1e3:>10.1f} "
          f"{(k['user']+k['system'])*1e3:>11.1f} {size/k['mean']/1e6:>7.0f} | {k['mean']/o['mean']:.1f}x")
r = json.load(open(sys.argv[2]))["results"][0]
print(f"kmutil create: {r['mean']*1e3:.0f} ms wall, {(r['user']+r['system'])*1e3:.0f} ms CPU")
print("note: both columns include process start; kextrust startup also unseals the Secure Enclave, opens the Mac "
      "(lock, KextPolicy SQLite), verifies two ECDSA P-384 signatures, links and loads every kext and records "
      "kext_load_history_v3; kmutil create includes the admin's PBKDF2 check and checking every kext's signature.")
PY

#!/usr/bin/env python3
"""Whole-process `kextrust verify` over the runtime packs against `openssl dgst -sha256`, in interleaved rounds.

    python3 bench/verify-interleaved.py [--rounds 40] KEXTRUST [KEXTRUST...]

Each round runs openssl (one process given the 28 files), openssl through xargs (the form earlier README figures
used), and every KEXTRUST binary given (e.g. the build before a change and the one after, from
bench/publish-cli.sh) with `--parallel 1` and with all cores, one after the other. Medians over the rounds are
steadier than one series per command on a machine whose speed drifts between minutes. The runtime packs come from
the NuGet cache (restore tests/KextTrust.TestSupport first), like bench/verify-bench.sh.
"""
import argparse
import glob
import os
import statistics
import subprocess
import sys
import tempfile
import time


def runtime_pack_dirs():
    nuget = os.environ.get("NUGET_PACKAGES", os.path.expanduser("~/.nuget/packages"))
    dirs = []
    for rid in ("osx-arm64", "osx-x64"):
        found = sorted(glob.glob(f"{nuget}/microsoft.netcore.app.runtime.{rid}/*/runtimes/{rid}/native"),
                       key=lambda p: [int(x) if x.isdigit() else x for x in p.split("/")[-4].replace("-", ".").split(".")])
        if not found:
            sys.exit(f"runtime pack {rid} not restored: run dotnet restore tests/KextTrust.TestSupport")
        dirs.append(found[-1])
    return dirs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("kextrust", nargs="+")
    a = ap.parse_args()
    packs = runtime_pack_dirs()
    files = sorted(os.path.join(d, f) for d in packs for f in os.listdir(d)
                   if f.endswith(".dylib") or f == "createdump")
    size = sum(os.path.getsize(f) for f in files)
    listing = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)
    with listing:
        listing.write("\n".join(files) + "\n")
    cmds = {"openssl": ["openssl", "dgst", "-sha256", *files],
            "openssl via xargs": ["xargs", "-a", listing.name, "openssl", "dgst", "-sha256"]}
    for k in a.kextrust:
        cmds[f"{k} --parallel 1"] = [k, "verify", "--json", "--parallel", "1", *packs]
        cmds[f"{k} all cores"] = [k, "verify", "--json", *packs]
    for name, c in cmds.items():  # everything verifies (exit 0) before it is timed
        if subprocess.run(c, stdout=subprocess.DEVNULL).returncode != 0:
            sys.exit(f"{name} failed")
    times = {k: [] for k in cmds}
    for i in range(a.rounds + 3):
        for k, c in cmds.items():
            start = time.perf_counter()
            subprocess.run(c, stdout=subprocess.DEVNULL)
            if i >= 3:  # three warm-up rounds
                times[k].append(time.perf_counter() - start)
    os.unlink(listing.name)
    limit = statistics.median(times["openssl"])
    print(f"{len(files)} files, {size} bytes, {a.rounds} rounds")
    for k, v in times.items():
        m = statistics.median(v)
        print(f"{k:60s} median {m * 1000:6.1f} ms  min {min(v) * 1000:6.1f}  {size / m / 1e6:7.1f} MB/s  {limit / m * 100:5.1f} % of openssl")


if __name__ == "__main__":
    main()

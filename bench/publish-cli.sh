#!/usr/bin/env bash
# Publishes the kextrust command for the whole-process benchmarks and the AOT smoke check.
#   bash bench/publish-cli.sh OUT_DIR          -> OUT_DIR/kextrust
#   KEXTRUST_BUILD=aot (default): Native AOT, one self-contained executable, as shipped (see README "Install").
#   KEXTRUST_BUILD=r2r: framework-dependent ReadyToRun build (what `dotnet tool install` gives), for comparison.
# Native AOT needs a C toolchain (gcc or clang) on Linux; the ILCompiler package comes from NuGet.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:?usage: publish-cli.sh OUT_DIR}"
build="${KEXTRUST_BUILD:-aot}"
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64|arm64) arch=arm64 ;;
  *) echo "publish-cli.sh: unsupported machine $(uname -m)" >&2; exit 2 ;;
esac
case "$(uname -s)" in
  Linux) rid="linux-$arch" ;;
  Darwin) rid="osx-$arch" ;;
  *) rid="win-$arch" ;;
esac
case "$build" in
  aot) dotnet publish src/KextTrust.Cli -c Release -r "$rid" -p:PublishAot=true -o "$out" --nologo -v q >/dev/null ;;
  r2r) dotnet publish src/KextTrust.Cli -c Release -p:PublishReadyToRun=true -o "$out" --nologo -v q >/dev/null ;;
  *) echo "publish-cli.sh: KEXTRUST_BUILD must be aot or r2r, not '$build'" >&2; exit 2 ;;
esac
echo "kextrust ($build, $rid): $out/kextrust" >&2

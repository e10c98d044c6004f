#!/usr/bin/env bash
# Installs what korutin needs on Debian/Ubuntu, then builds it (addon + TypeScript).
# Usage: bash scripts/setup.sh [--ci]   (--ci adds the tools the CI jobs use)
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

packages=(build-essential cmake python3 pkg-config libboost-context-dev libuv1-dev)
if [ "${1:-}" = "--ci" ]; then
  packages+=(valgrind clang libclang-rt-14-dev qemu-user qemu-user-binfmt
             gcc-aarch64-linux-gnu g++-aarch64-linux-gnu gcc-arm-linux-gnueabihf gcc-i686-linux-gnu mingw-w64)
fi

# --ci: the arm64 prebuilds link Debian's arm64 Boost.Context (scripts/target-boost.sh).
update=false
if [ "${1:-}" = "--ci" ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  $SUDO dpkg --add-architecture arm64
  update=true
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ] || $update; then
  $SUDO apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi

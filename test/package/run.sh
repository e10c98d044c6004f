#!/usr/bin/env bash
# What ships, tried as a user would: packs korutin, installs the tarball into
# a fresh project in a temporary folder outside the repository, and runs
# test/package/check.js there (imports, types, the CLI, the README's code).
#   --no-compiler   install with a PATH that holds node, npm and sh but no
#                   cc, c++, make or python3: the prebuilt binaries must serve
#   --from-source   install with KORUTIN_BUILD_FROM_SOURCE=1 (the source build)
# Uses the `node` and `npm` on PATH (CI puts each Node version it tests first).
# Usage: bash test/package/run.sh [--no-compiler|--from-source]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
mode=${1:-default}
case "$mode" in default|--no-compiler|--from-source) ;; *) echo "usage: run.sh [--no-compiler|--from-source]" >&2; exit 2 ;; esac
work=$(mktemp -d "${TMPDIR:-/tmp}/korutin-package-XXXXXX")
trap 'rm -rf "$work"' EXIT
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

echo "package test: node $(node -v), npm $(npm -v), mode ${mode#--}"
# Packs dist/ as built (npm run build:ts): --ignore-scripts, so that packing
# never rewrites dist/ under a suite that reads it (CI runs both at once).
(cd "$repo" && npm pack --silent --ignore-scripts --pack-destination "$work" >/dev/null)
tarball=$(ls "$work"/korutin-*.tgz)
echo "tarball: $(basename "$tarball"), $(du -k "$tarball" | cut -f1) KiB"

mkdir "$work/app"
cd "$work/app"
npm init -y >/dev/null

env_for_install=()
if [ "$mode" = --no-compiler ]; then
  # Only node, npm, npx and sh: npm runs install scripts through sh.
  mkdir "$work/bin"
  for tool in node npm npx sh; do ln -s "$(readlink -f "$(command -v "$tool")")" "$work/bin/$tool"; done
  for tool in cc gcc c++ g++ make python3; do
    if PATH="$work/bin" command -v "$tool" >/dev/null; then echo "FAIL: $tool is still on the restricted PATH" >&2; exit 1; fi
  done
  restricted="$work/bin"
  env_for_install=(env -u CC -u CXX "PATH=$restricted")
elif [ "$mode" = --from-source ]; then
  env_for_install=(env KORUTIN_BUILD_FROM_SOURCE=1)
fi
start=$(date +%s%N)
"${env_for_install[@]}" npm install --prefer-offline --no-audit --no-fund "$tarball" >"$work/install.log" 2>&1 \
  || { cat "$work/install.log"; echo "FAIL: npm install of the tarball"; exit 1; }
end=$(date +%s%N)
echo "installed in $(( (end - start) / 1000000 )) ms ($(du -sk node_modules/korutin | cut -f1) KiB unpacked)"

KORUTIN_PACKAGE_MODE=${mode#--} KORUTIN_REPO="$repo" KORUTIN_RESTRICTED_PATH="${restricted:-}" node "$repo/test/package/check.js"

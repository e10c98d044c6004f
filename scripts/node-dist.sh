#!/usr/bin/env bash
# Prints the directory of Node MAJOR's binary and headers (bin/node,
# include/node), fetched once from the npm package node-linux-<arch>@MAJOR
# into a cache outside the repository. ARCH (x64, arm64...) defaults to
# this machine's Node's.
# Usage: dir=$(bash scripts/node-dist.sh 22 [ARCH])
set -euo pipefail
major=${1:?usage: node-dist.sh MAJOR [ARCH]}
arch=${2:-$(node -p "process.arch")}
cache=${KORUTIN_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/korutin-node}
dir="$cache/node-linux-$arch-$major"
if [ ! -x "$dir/package/bin/node" ]; then
  rm -rf "$dir" && mkdir -p "$dir"
  (cd "$dir" && npm pack --silent "node-linux-$arch@$major" >/dev/null 2>&1 && tar xzf ./*.tgz && rm -f ./*.tgz)
fi
echo "$dir/package"

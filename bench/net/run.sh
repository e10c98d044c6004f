#!/usr/bin/env bash
# Runs bench/net with the open-file limit raised as far as allowed (10,000
# idle connections need that many descriptors in the server, and the client).
set -euo pipefail
cd "$(dirname "$0")/../.."
hard=$(ulimit -Hn)
ulimit -n "$hard" 2>/dev/null || true
export KORUTIN_NOFILE=$(ulimit -n)
if [ "$KORUTIN_NOFILE" != unlimited ] && [ "$KORUTIN_NOFILE" -lt 10100 ]; then
  echo "note: the open-file limit is $KORUTIN_NOFILE; 10,000 idle connections need about 10,100 (raise the hard limit)" >&2
fi
exec node dist/bench/net/index.js "$@"

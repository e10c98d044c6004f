#!/usr/bin/env bash
# .ci/wine32.sh - runs a 32-bit Windows program under wine on a Debian host
# whose wine is 64-bit only (wine64 without wine32:i386, which needs the
# i386 architecture added to dpkg: a change to the whole machine).
#
#   .ci/wine32.sh PROGRAM.exe [ARGS...]
#
# On first use it fetches Debian's wine32, libwine, libc6 and libgcc-s1 for
# i386 with apt-get (its own package lists and cache, in the work directory:
# the system's apt and dpkg state are not touched), of the installed wine's
# version, unpacks them there (nothing is installed), and points the i386
# wine loader at the unpacked C library. The programs then run in a 32-bit
# prefix of their own, with the installed wineserver (same version).
# Also needs libz-mingw-w64 (Debian's wine depends on it: user32 imports its
# zlib1.dll).
#
# Environment: KO_WINE32_DIR  work directory (default: ${TMPDIR:-/tmp}/korutin-wine32)
# Exits 125 when it cannot provide a 32-bit wine (the reason on stderr);
# else with the program's exit status.
set -u
DIR=${KO_WINE32_DIR:-${TMPDIR:-/tmp}/korutin-wine32}
R="$DIR/root"
fail() { echo "wine32.sh: $*" >&2; exit 125; }
[ $# -ge 1 ] || fail "usage: .ci/wine32.sh PROGRAM.exe [ARGS...]"

setup() {
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || fail "needs apt-get and dpkg-deb (Debian)"
  local ver
  ver=$(dpkg-query -W -f '${Version}' libwine 2>/dev/null) || fail "no wine installed (package libwine)"
  [ -f /usr/i686-w64-mingw32/lib/zlib1.dll ] || fail "no i686 zlib1.dll (Debian: libz-mingw-w64)"
  rm -rf "$DIR"
  mkdir -p "$DIR/lists/partial" "$DIR/cache/archives/partial" "$DIR/debs" "$R"
  local apt=(-o APT::Architecture=i386 -o APT::Architectures::=i386 -o "Dir::State::Lists=$DIR/lists"
             -o "Dir::Cache=$DIR/cache" -o Dir::State::status=/dev/null)
  apt-get "${apt[@]}" update >"$DIR/apt.log" 2>&1 || fail "apt-get update (i386 lists) failed: $DIR/apt.log"
  (cd "$DIR/debs" && apt-get "${apt[@]}" download "wine32:i386=$ver" "libwine:i386=$ver" libc6:i386 libgcc-s1:i386) \
    >>"$DIR/apt.log" 2>&1 || fail "apt-get download failed: $DIR/apt.log"
  local d
  for d in "$DIR"/debs/*.deb; do dpkg-deb -x "$d" "$R" || fail "dpkg-deb -x $d failed"; done
  # wine finds its libraries next to the C library it runs with.
  ln -sfn "$R/usr/lib/i386-linux-gnu/wine" "$R/lib/i386-linux-gnu/wine"
  # The i386 loader asks for /lib/ld-linux.so.2, absent here: point it (a
  # string in the binary, so a path no longer than that one) at ours.
  local short
  short=$(mktemp -u /tmp/kw32XXXX) || fail "mktemp failed"
  ln -sfn "$R/lib/ld-linux.so.2" "$short"
  python3 - "$R/usr/lib/wine/wine" "$short" <<'EOF' || fail "could not patch the wine loader's interpreter"
import sys
path, new = sys.argv[1], sys.argv[2].encode()
old = b"/lib/ld-linux.so.2\0"
b = bytearray(open(path, "rb").read())
i = b.find(old)
assert i > 0 and len(new) < len(old)
b[i:i + len(old)] = new + b"\0" * (len(old) - len(new))
open(path, "wb").write(b)
EOF
  echo "$short" > "$DIR/interp"
  touch "$DIR/ready"
}

if [ ! -f "$DIR/ready" ] || [ ! -e "$(cat "$DIR/interp" 2>/dev/null)" ]; then
  setup
fi
WINEDLLPATH=/usr/i686-w64-mingw32/lib WINEARCH=win32 WINEPREFIX="$DIR/prefix" WINEDEBUG=${WINEDEBUG:--all} \
  LD_LIBRARY_PATH="$R/lib/i386-linux-gnu" "$R/usr/lib/wine/wine" "$@" 2> >(grep -v -E 'FreeType|font library|or equal to 2\.0\.5|www\.freetype\.org' >&2)

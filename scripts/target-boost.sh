#!/usr/bin/env bash
# Prints the path of Boost.Context's static library (libboost_context.a) for
# a cross target, for scripts/prebuild.sh: the installed one when the
# target's multiarch package is installed, else the one from Debian's
# libboost-context-dev package for that architecture, downloaded once (with
# `apt-get download`, which needs `dpkg --add-architecture ARCH` and an
# `apt-get update`: scripts/setup.sh --ci does both) and unpacked into a
# cache outside the repository. It must match the installed Boost headers'
# version, so it is taken from the same Debian release. Prints nothing, and
# exits 0, when neither can be had: the build then leaves the boost backend out.
# Usage: lib=$(bash scripts/target-boost.sh arm64)
set -euo pipefail
arch=${1:?usage: target-boost.sh ARCH, in Node terms: arm64, arm or ia32}
case "$arch" in
  arm64) deb_arch=arm64 multiarch=aarch64-linux-gnu ;;
  arm) deb_arch=armhf multiarch=arm-linux-gnueabihf ;;
  ia32) deb_arch=i386 multiarch=i386-linux-gnu ;;
  *) echo "target-boost.sh: no Debian architecture for '$arch'" >&2; exit 2 ;;
esac
installed=/usr/lib/$multiarch/libboost_context.a
if [ -f "$installed" ]; then echo "$installed"; exit 0; fi
depends=$(dpkg-query -W -f '${Depends}' libboost-context-dev 2>/dev/null) || true
pkg=$(echo "$depends" | grep -o "libboost-context[0-9.]*-dev" | head -1) || true
[ -n "$pkg" ] || exit 0
cache=${KORUTIN_BOOST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/korutin-boost}
dir="$cache/$pkg-$deb_arch"
lib="$dir/usr/lib/$multiarch/libboost_context.a"
if [ ! -f "$lib" ]; then
  rm -rf "$dir" && mkdir -p "$dir"
  (cd "$dir" && apt-get download -q "$pkg:$deb_arch" >/dev/null 2>&1 && dpkg-deb -x ./*.deb . && rm -f ./*.deb) || { rm -rf "$dir"; exit 0; }
fi
[ -f "$lib" ] && echo "$lib"
exit 0

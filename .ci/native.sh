#!/usr/bin/env bash
# .ci/native.sh - the native suite (C) in three variants, plus the install.
#
#   1. plain:    Release build; ctest (korutin-selfcheck per backend, the
#                scheduler's tests, the C example); korutin-selfcheck --json;
#                a quick korutin-bench run.
#   2. valgrind: the plain build's korutin-selfcheck and example under
#                valgrind --error-exitcode=1 (definite leaks count as errors).
#   3. asan:     -DKORUTIN_ASAN=ON with clang (gcc when clang is missing);
#                ctest, then korutin-selfcheck again with ASan's fake stacks
#                (detect_stack_use_after_return=1), which exercise the
#                engine's fiber annotations hardest.
#   4. install:  cmake --install of the plain build into a temporary prefix;
#                examples/c/hello.c built against it with pkg-config and with
#                find_package(korutin), and run.
#
# Debian packages it needs (it installs nothing itself):
#   cmake make gcc pkg-config valgrind libboost-context-dev libuv1-dev
#   clang libclang-rt-14-dev (the ASan variant; without clang it uses gcc)
#   python3 (optional: validates the --json output)
#
# Usage: .ci/native.sh
# Environment: KO_NATIVE_DIR  build root (default: ${TMPDIR:-/tmp}/korutin-native)
#              KO_JOBS        parallel build jobs (default: 2)
# Prints "native: STEP: PASS|FAIL" lines and exits non-zero when any failed.
# Logs stay in the build root.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${KO_NATIVE_DIR:-${TMPDIR:-/tmp}/korutin-native}
JOBS=${KO_JOBS:-2}
mkdir -p "$OUT"
FAILED=0
SUMMARY=()

have() { command -v "$1" >/dev/null 2>&1; }

# step NAME LOG CMD...: runs CMD with its output in LOG (and on screen when
# it fails), records PASS or FAIL.
step() {
  local name=$1 log=$2; shift 2
  echo "--- $name"
  if "$@" >"$log" 2>&1; then
    SUMMARY+=("native: $name: PASS")
    tail -n 12 "$log"
  else
    local rc=$?
    SUMMARY+=("native: $name: FAIL (exit $rc, log $log)")
    FAILED=1
    tail -n 60 "$log"
  fi
}

build() { # build DIR CMAKE-ARGS...
  local dir=$1; shift
  rm -rf "$dir"
  cmake -S "$ROOT" -B "$dir" "$@" && cmake --build "$dir" -j "$JOBS"
}

# 1. plain
PLAIN=$OUT/plain
step "plain: build" "$OUT/plain-build.log" build "$PLAIN" -DCMAKE_BUILD_TYPE=Release
step "plain: ctest" "$OUT/plain-ctest.log" ctest --test-dir "$PLAIN" --output-on-failure -j 1
json_check() {
  "$PLAIN/engine/selfcheck/korutin-selfcheck" --json >"$OUT/selfcheck.json" || return 1
  if have python3; then python3 -m json.tool "$OUT/selfcheck.json" >/dev/null || return 1; fi
  cat "$OUT/selfcheck.json"
}
step "plain: selfcheck --json" "$OUT/plain-json.log" json_check
step "plain: bench (quick)" "$OUT/plain-bench.log" "$PLAIN/engine/bench/korutin-bench" --quick

# 2. valgrind
if have valgrind; then
  VG=(valgrind --error-exitcode=1 --leak-check=full --show-leak-kinds=definite
      --errors-for-leak-kinds=definite -q)
  step "valgrind: selfcheck" "$OUT/valgrind-selfcheck.log" "${VG[@]}" "$PLAIN/engine/selfcheck/korutin-selfcheck"
  step "valgrind: example" "$OUT/valgrind-hello.log" "${VG[@]}" "$PLAIN/korutin-hello"
else
  SUMMARY+=("native: valgrind: FAIL (valgrind is not installed)")
  FAILED=1
fi

# 3. ASan
ASAN=$OUT/asan
if have clang; then ASAN_CC=clang; else ASAN_CC=gcc; fi
step "asan ($ASAN_CC): build" "$OUT/asan-build.log" build "$ASAN" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DKORUTIN_ASAN=ON -DCMAKE_C_COMPILER="$ASAN_CC"
step "asan ($ASAN_CC): ctest" "$OUT/asan-ctest.log" ctest --test-dir "$ASAN" --output-on-failure -j 1
if [ "$ASAN_CC" = clang ]; then
  # gcc 12's runtime fragments the address space with fake stacks under
  # thread churn (the threads backend's mapping count keeps growing), so
  # this run is clang's.
  step "asan ($ASAN_CC): selfcheck, fake stacks" "$OUT/asan-fakestack.log" \
    env ASAN_OPTIONS=detect_stack_use_after_return=1 "$ASAN/engine/selfcheck/korutin-selfcheck"
fi

# 4. install, then build the example against the installed package
PREFIX=$OUT/prefix
install_check() {
  rm -rf "$PREFIX" "$OUT/consumer"
  cmake --install "$PLAIN" --prefix "$PREFIX" || return 1
  local pc
  pc=$(dirname "$(find "$PREFIX" -name korutin.pc | head -n 1)")
  [ -f "$pc/korutin.pc" ] || { echo "no korutin.pc installed"; return 1; }
  echo "pkg-config --cflags --libs korutin: $(PKG_CONFIG_PATH=$pc pkg-config --cflags --libs korutin)"
  # shellcheck disable=SC2046
  cc -o "$OUT/hello-pkgconfig" "$ROOT/examples/c/hello.c" \
    $(PKG_CONFIG_PATH=$pc pkg-config --cflags --libs korutin) || return 1
  "$OUT/hello-pkgconfig" || return 1
  mkdir -p "$OUT/consumer"
  cp "$ROOT/examples/c/hello.c" "$OUT/consumer/"
  cat >"$OUT/consumer/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.19)
project(hello_consumer C)
find_package(korutin 0.1 REQUIRED)
add_executable(hello hello.c)
target_link_libraries(hello PRIVATE korutin::korutin)
EOF
  cmake -S "$OUT/consumer" -B "$OUT/consumer/build" -DCMAKE_PREFIX_PATH="$PREFIX" &&
    cmake --build "$OUT/consumer/build" && "$OUT/consumer/build/hello"
}
step "install: pkg-config and find_package" "$OUT/install.log" install_check

echo
printf '%s\n' "${SUMMARY[@]}"
exit $FAILED

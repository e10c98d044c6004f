#!/usr/bin/env bash
# .ci/cross.sh - cross-builds korutin and proves its switch backends on other
# CPUs and ABIs, under qemu-user (Linux) and wine (Windows).
#
# For each Linux target (i686, aarch64, armhf): configures with
# cmake/toolchains/<target>.cmake and -DKORUTIN_WITH_BOOST=OFF, builds the
# library and korutin-selfcheck, then runs:
#   1. asm-abi: a direct test of the asm backend's ko_asm_make/ko_asm_jump,
#      built from the sources at the end of this script: every callee-saved
#      register (general and floating point) must survive each switch among
#      five contexts, switching at random call depths; the FP control register
#      (rounding mode) is per context and a new context inherits its maker's;
#      entry runs on an aligned stack inside its own stack; the unwinder stops
#      at the coroutine's first frame;
#   2. korutin-selfcheck --backend all (the engine's own self-check).
# Both run under qemu-user. Exception: i686 on an x86-64 host whose kernel
# runs 32-bit programs runs natively through the target's loader (asm-abi
# under qemu-i386 too), because qemu-i386 cannot run the selfcheck's forked
# children (Debian 12's qemu 7.2 with glibc 2.36: a fork() child hangs).
# Under qemu, failures of the tests in QEMU_UNJUDGED_TESTS are shown but do
# not fail the target (the reason is printed); every other failure does.
# For x86_64-w64-mingw32 and i686-w64-mingw32: builds asm-abi (on Windows
# it also checks the TIB stack bounds per context, a Windows unwind walk on
# Win64 or a DWARF one on Win32, and a C++ exception thrown and caught
# inside a coroutine), then libkorutin and korutin-selfcheck with CMake
# (statically linked), and runs both under wine (32-bit programs: see the
# package list). A wine that cannot run the target's programs makes the
# target BUILT, with the reason. The scheduler is not built (KORUTIN_WITH_SCHED is off in
# cross builds; Debian has no mingw build of libuv).
# "native" does steps 1 and 2 on the build host: the only run of asm-abi
# against the host's own switch file (x86-64 System V here).
#
# Debian packages it needs (it installs nothing itself):
#   cmake make gcc-i686-linux-gnu gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf
#   qemu-user gcc-mingw-w64-x86-64 g++-mingw-w64-x86-64 gcc-mingw-w64-i686
#   g++-mingw-w64-i686
#   wine (optional: the Windows runs; wine64 runs x86_64 only: for i686,
#   wine32:i386 when installed, else .ci/wine32.sh unpacks Debian's wine32
#   privately, which needs libz-mingw-w64, python3 and network access)
#
# Usage: .ci/cross.sh [TARGET...]
#   TARGET: i686-linux-gnu aarch64-linux-gnu arm-linux-gnueabihf
#           x86_64-w64-mingw32 i686-w64-mingw32 native
#           (default: all)
# Environment: KO_CROSS_DIR  build root (default: ${TMPDIR:-/tmp}/korutin-cross)
#              KO_JOBS       parallel build jobs (default: 2)
# Prints one line per target, "cross: TARGET: PASS|FAIL|BUILT (...)", and
# exits non-zero when any target failed. Logs stay in the build root.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${KO_CROSS_DIR:-${TMPDIR:-/tmp}/korutin-cross}
JOBS=${KO_JOBS:-2}
TIMEOUT=900
mkdir -p "$OUT"

if [ $# -eq 0 ]; then
  set -- i686-linux-gnu aarch64-linux-gnu arm-linux-gnueabihf x86_64-w64-mingw32 i686-w64-mingw32 native
fi

have() { command -v "$1" >/dev/null 2>&1; }

qemu_for() {
  case $1 in
    i686-linux-gnu) echo qemu-i386 ;;
    aarch64-linux-gnu) echo qemu-aarch64 ;;
    arm-linux-gnueabihf) echo qemu-arm ;;
  esac
}

# asm_file_for TARGET CC: the asm switch file for TARGET (backends/asm/arch.txt:
# the first row of its object format and CC's pointer size whose CPU names
# match the triplet's first part, or `uname -m` for native).
asm_file_for() {
  local t=$1 cc=$2 cpu format=elf bits key file fmt b node cpus
  cpu=${t%%-*}
  [ "$t" = native ] && cpu=$(uname -m)
  case $t in *mingw*) format=pe ;; esac
  bits=$(( $(echo | "$cc" -dM -E - | sed -n 's/^#define __SIZEOF_POINTER__ //p') * 8 ))
  while read -r key file fmt b node cpus; do
    case $key in ''|'#'*) continue ;; esac
    if [ "$fmt" = "$format" ] && [ "$b" = "$bits" ] && [[ $cpu =~ $cpus ]]; then
      echo "backends/asm/$file"; return 0
    fi
  done < "$ROOT/backends/asm/arch.txt"
  return 1
}

# Writes the asm-abi sources (see the end of this script) into $1.
write_abi_sources() {
  mkdir -p "$1"
  sed -n '/^#### asm_abi_check.c$/,/^#### end$/p' "$0" | sed '1d;$d' > "$1/asm_abi_check.c"
  sed -n '/^#### asm_abi_regs.S$/,/^#### end$/p' "$0" | sed '1d;$d' > "$1/asm_abi_regs.S"
  sed -n '/^#### asm_abi_cxx.cc$/,/^#### end$/p' "$0" | sed '1d;$d' > "$1/asm_abi_cxx.cc"
}

# run_logged LOG CMD... : runs CMD with a time limit, output to LOG.
run_logged() {
  local log=$1; shift
  timeout "$TIMEOUT" "$@" >"$log" 2>&1
}

# Configures and builds; sets CONFIG_NOTE. $1 target, $2 build dir, extra cmake args follow.
configure() {
  local t=$1 dir=$2; shift 2
  local tc=()
  [ "$t" != native ] && tc=(-DCMAKE_TOOLCHAIN_FILE="$ROOT/cmake/toolchains/$t.cmake")
  rm -rf "$dir"
  run_logged "$dir.configure.log" cmake -S "$ROOT" -B "$dir" "${tc[@]}" -DKORUTIN_WITH_BOOST=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
}

# Tests whose verdict qemu-user cannot give, and why. Their failures under
# qemu are reported but do not fail the target; everywhere else they count.
QEMU_UNJUDGED_TESTS="create-destroy-100k"
QEMU_UNJUDGED_WHY="its RSS bound counts qemu's own translation cache and page tables (the same x86-64 binary passes natively and fails under qemu-x86_64), and 100,000 thread creations outlast its time limit under emulation"

# probe_exec CC RUNNER... : can RUNNER run a target program that forks?
# Prints nothing; status 0 = yes, 1 = runs but its fork() child hangs or
# dies, 2 = cannot run target programs at all.
probe_exec() {
  local cc=$1 d="$OUT/probe-$2"; shift 2
  mkdir -p "$d"
  printf '%s\n' '#include <stdio.h>' '#include <stdlib.h>' '#include <sys/wait.h>' '#include <unistd.h>' \
    'int main(void) { int st = 0; pid_t p = fork(); if (p == 0) exit(7);' \
    '  if (p < 0 || waitpid(p, &st, 0) != p) return 1; return WIFEXITED(st) && WEXITSTATUS(st) == 7 ? 42 : 1; }' > "$d/fork.c"
  "$cc" -o "$d/fork" "$d/fork.c" >/dev/null 2>&1 || return 2
  printf 'int main(void) { return 42; }\n' > "$d/plain.c"
  "$cc" -o "$d/plain" "$d/plain.c" >/dev/null 2>&1 || return 2
  timeout 60 "$@" "$d/plain" >/dev/null 2>&1
  [ $? = 42 ] || return 2
  timeout 20 "$@" "$d/fork" >/dev/null 2>&1
  [ $? = 42 ] || return 1
  return 0
}

linux_target() {
  local t=$1 dir="$OUT/$t" cc qemu sysroot ok=1
  local qrun=() nrun=() srun=() how notes=""
  if [ "$t" = native ]; then
    cc=${CC:-cc}
    how="native"
  else
    cc=$t-gcc
    qemu=$(qemu_for "$t")
    sysroot=/usr/$t
    for tool in "$cc" "$qemu" cmake; do
      have "$tool" || { echo "cross: $t: FAIL (missing $tool; see the package list at the top of .ci/cross.sh)"; return 1; }
    done
    [ -d "$sysroot" ] || { echo "cross: $t: FAIL (no target libc in $sysroot; Debian: the gcc-$t package brings it)"; return 1; }
    qrun=("$qemu" -L "$sysroot")
    # An x86-64 kernel runs i386 programs itself: through the target's
    # loader they run natively, which is better evidence than emulation.
    if [ "$t" = i686-linux-gnu ] && [ "$(uname -m)" = x86_64 ] && [ -x "$sysroot/lib/ld-linux.so.2" ]; then
      nrun=("$sysroot/lib/ld-linux.so.2" --library-path "$sysroot/lib")
      probe_exec "$cc" "$t-native" "${nrun[@]}" || nrun=()
    fi
  fi

  # 1. asm-abi, straight from the switch file: under qemu, and natively
  #    when this host can run the target's programs.
  local abi="$dir-asm-abi" asmsrc res_abi="" r
  asmsrc=$(asm_file_for "$t" "$cc")
  write_abi_sources "$abi"
  # the size of a context where it is more than the saved stack pointer
  local ctxsize
  ctxsize=$(sed -n 's/^#define KO_ASM_CTX_SIZE \([0-9][0-9]*\)$/\1/p' "$ROOT/backends/asm/asm.c")
  if ! "$cc" -O2 -g -funwind-tables -no-pie ${ctxsize:+-DKO_ASM_CTX_SIZE=$ctxsize} -o "$abi/asm_abi_check" "$abi/asm_abi_check.c" \
        "$abi/asm_abi_regs.S" "$ROOT/$asmsrc" -lm >"$abi/build.log" 2>&1; then
    res_abi="asm-abi: build FAILED ($abi/build.log)"; ok=0
  else
    local where runner
    for where in qemu native; do
      if [ $where = qemu ]; then
        [ "$t" = native ] && continue
        runner=("${qrun[@]}")
      else
        [ "$t" = native ] || [ ${#nrun[@]} -gt 0 ] || continue
        runner=("${nrun[@]}")
      fi
      if run_logged "$abi/run-$where.log" "${runner[@]}" "$abi/asm_abi_check"; then
        r="$(tail -n 1 "$abi/run-$where.log")"
      else
        r="FAILED, exit $? ($(grep -m1 FAIL "$abi/run-$where.log" || tail -n 1 "$abi/run-$where.log"); log $abi/run-$where.log)"; ok=0
      fi
      res_abi="${res_abi:+$res_abi; }asm-abi ($where): $r"
    done
  fi

  # 2. the library and the engine's self-check.
  local res_sc
  if [ "$t" = native ]; then
    srun=()
  elif [ ${#nrun[@]} -gt 0 ]; then
    srun=("${nrun[@]}"); how="native 32-bit process on this x86-64 kernel (asm-abi also under $qemu)"
  else
    srun=("${qrun[@]}"); how="qemu-user $qemu"
    probe_exec "$cc" "$t-qemu" "${qrun[@]}"
    case $? in
      1) notes="$qemu here cannot run a forking glibc program (a 3-line fork() test hangs or crashes in the child), and korutin-selfcheck runs each test in a forked child" ;;
      2) notes="$qemu cannot run this target's programs here" ;;
    esac
  fi
  if ! configure "$t" "$dir"; then
    res_sc="configure FAILED ($dir.configure.log)"; ok=0
  elif ! run_logged "$dir.build.log" cmake --build "$dir" -j "$JOBS" --target korutin; then
    res_sc="libkorutin build FAILED ($dir.build.log)"; ok=0
  elif ! cmake --build "$dir" --target help 2>/dev/null | grep -q 'korutin-selfcheck'; then
    res_sc="korutin-selfcheck: FAILED, this tree has no korutin-selfcheck target (engine/selfcheck)"; ok=0
  elif ! run_logged "$dir.selfcheck-build.log" cmake --build "$dir" -j "$JOBS" --target korutin-selfcheck; then
    res_sc="korutin-selfcheck build FAILED ($dir.selfcheck-build.log)"; ok=0
  elif [ -n "$notes" ]; then
    res_sc="korutin-selfcheck: NOT RUN: $notes"; ok=0
  else
    local exe
    exe=$(find "$dir" -type f -name korutin-selfcheck -perm -u+x | head -n 1)
    if [ -z "$exe" ]; then
      res_sc="korutin-selfcheck: built but not found in $dir"; ok=0
    else
      run_logged "$dir.selfcheck.log" "${srun[@]}" "$exe" --backend all -v
      local rc=$? summary fails judged="" excused="" line b tn
      # "selfcheck: ..." closes its output; the table above it gives each
      # backend's passed/failed/skipped counts.
      summary=$(grep -E '^selfcheck: ' "$dir.selfcheck.log" | tail -n 1)
      [ -n "$summary" ] && summary="$summary [$(awk '/^backend +passed/ {on = 1; next} on && NF == 0 {on = 0}
        on && $2 ~ /^[0-9]+$/ {printf "%s%s %s passed %s failed %s skipped", sep, $1, $2, $3, $4; sep = ", "}' "$dir.selfcheck.log")]"
      # Failed tests: lines "  BACKEND  TEST  FAIL ...".
      fails=$(sed -n 's/^  \([a-z0-9_-]*\) \{1,\}\([a-z0-9_-]*\) \{1,\}FAIL.*/\1:\2/p' "$dir.selfcheck.log")
      for line in $fails; do
        b=${line%%:*}; tn=${line#*:}
        if [ "${srun[0]:-}" = "${qrun[0]:-none}" ] && [[ " $QEMU_UNJUDGED_TESTS " == *" $tn "* ]]; then
          excused="${excused:+$excused }$b/$tn"
        else
          judged="${judged:+$judged }$b/$tn"
        fi
      done
      if [ -z "$summary" ]; then
        res_sc="korutin-selfcheck --backend all: FAILED, exit $rc and no summary (log $dir.selfcheck.log)"; ok=0
      elif [ -n "$judged" ] || { [ $rc != 0 ] && [ -z "$excused" ]; }; then
        res_sc="korutin-selfcheck --backend all: $summary; failed: ${judged:-?}${excused:+; failed but not judged under qemu: $excused} (log $dir.selfcheck.log)"; ok=0
      else
        res_sc="korutin-selfcheck --backend all: $summary${excused:+; failed but not judged under qemu-user: $excused, because $QEMU_UNJUDGED_WHY}"
      fi
    fi
  fi
  if [ $ok = 1 ]; then
    echo "cross: $t: PASS ($how; $res_abi; $res_sc)"
  else
    echo "cross: $t: FAIL ($how; $res_abi; $res_sc)"
    return 1
  fi
}

# The wine that runs a target's programs: WRUN (a command prefix).
# wine_runs EXE: can WRUN run EXE (a program that only returns 42)?
wine_runs() {
  timeout 300 "${WRUN[@]}" "$1" >/dev/null 2>&1
  [ $? = 42 ]
}

# Summary of a korutin-selfcheck log: its last "selfcheck: " line and each
# backend's counts from the table above it.
selfcheck_summary() {
  local s
  s=$(grep -E '^selfcheck: ' "$1" | tail -n 1)
  [ -n "$s" ] && s="$s [$(awk '/^backend +passed/ {on = 1; next} on && NF == 0 {on = 0}
    on && $2 ~ /^[0-9]+$/ {printf "%s%s %s passed %s failed %s skipped", sep, $1, $2, $3, $4; sep = ", "}' "$1")]"
  echo "$s"
}

# x86_64-w64-mingw32, i686-w64-mingw32: asm-abi (plus, on Windows, the TIB
# stack bounds, a Windows unwind walk on Win64 or a DWARF one on Win32, and
# a C++ exception thrown and caught inside a coroutine), then the library
# and korutin-selfcheck built with CMake, both run under wine.
mingw_target() {
  local t=$1 dir="$OUT/$1" cc=$1-gcc tool
  for tool in $t-gcc $t-g++ cmake make; do
    have "$tool" || { echo "cross: $t: FAIL (missing $tool; see the package list at the top of .ci/cross.sh)"; return 1; }
  done
  local asmsrc abi="$dir-asm-abi"
  asmsrc=$(asm_file_for "$t" "$cc") || { echo "cross: $t: FAIL (no row for it in backends/asm/arch.txt)"; return 1; }
  write_abi_sources "$abi"
  if ! { $cc -O2 -g -c -o "$abi/check.o" "$abi/asm_abi_check.c" &&
         $cc -c -o "$abi/regs.o" "$abi/asm_abi_regs.S" &&
         $cc -c -o "$abi/switch.o" "$ROOT/$asmsrc" &&
         $t-g++ -O2 -c -o "$abi/cxx.o" "$abi/asm_abi_cxx.cc" &&
         $t-g++ -static -o "$abi/asm_abi_check.exe" "$abi/check.o" "$abi/regs.o" "$abi/switch.o" "$abi/cxx.o"; } >"$abi/build.log" 2>&1; then
    echo "cross: $t: FAIL (asm-abi build failed: $abi/build.log)"; return 1
  fi
  # Static: the runtime DLLs (libgcc, libwinpthread) need no PATH under wine.
  if ! configure "$t" "$dir" -G "Unix Makefiles" -DCMAKE_EXE_LINKER_FLAGS=-static; then
    echo "cross: $t: FAIL (configure failed; $dir.configure.log)"; return 1
  fi
  if ! run_logged "$dir.build.log" cmake --build "$dir" -j "$JOBS" --target korutin korutin-selfcheck; then
    echo "cross: $t: FAIL (build of libkorutin and korutin-selfcheck failed; $dir.build.log)"; return 1
  fi
  local built="built: asm-abi, libkorutin, korutin-selfcheck ($asmsrc)"
  if ! have wine; then
    echo "cross: $t: BUILT ($built; not run: wine is not installed)"; return 0
  fi
  mkdir -p "$OUT/wineprefix" "$OUT/probe-$t"
  printf 'int main(void) { return 42; }\n' > "$OUT/probe-$t/plain.c"
  $cc -o "$OUT/probe-$t/plain.exe" "$OUT/probe-$t/plain.c" >/dev/null 2>&1
  local how="wine $(wine --version 2>/dev/null | sed 's/^wine-//')"
  WRUN=(env WINEPREFIX="$OUT/wineprefix" WINEDEBUG=-all wine)
  if ! wine_runs "$OUT/probe-$t/plain.exe"; then
    local why="this wine cannot run $t programs"
    case $t in
      i686-*)
        # wine64 alone runs no 32-bit programs; .ci/wine32.sh unpacks
        # Debian's wine32 privately (no dpkg change) and runs them with it.
        WRUN=(bash "$ROOT/.ci/wine32.sh")
        how="$how, 32-bit side: Debian's wine32 unpacked by .ci/wine32.sh"
        wine_runs "$OUT/probe-$t/plain.exe" && why="" ||
          why="$why: 32-bit Windows programs need wine32 (Debian: wine32:i386), and .ci/wine32.sh could not provide it ($(bash "$ROOT/.ci/wine32.sh" /dev/null 2>&1 | grep -m1 'wine32.sh:'))" ;;
    esac
    if [ -n "$why" ]; then
      echo "cross: $t: BUILT ($built; not run: $why)"; return 0
    fi
  fi
  local ok=1 res_abi res_sc exe
  if run_logged "$abi/run.log" "${WRUN[@]}" "$abi/asm_abi_check.exe"; then
    res_abi="asm-abi: $(grep 'checks,' "$abi/run.log" | tail -n 1)"
  else
    res_abi="asm-abi: FAILED, exit $? ($(grep -m1 -E 'FAIL|terminate' "$abi/run.log"); log $abi/run.log)"; ok=0
  fi
  exe=$(find "$dir" -type f -name korutin-selfcheck.exe | head -n 1)
  run_logged "$dir.selfcheck.log" "${WRUN[@]}" "$exe" --backend all -v
  local rc=$? summary fails
  summary=$(selfcheck_summary "$dir.selfcheck.log")
  fails=$(sed -n 's/^  \([a-z0-9_-]*\) \{1,\}\([a-z0-9_-]*\) \{1,\}FAIL.*/\1\/\2/p' "$dir.selfcheck.log" | tr '\n' ' ')
  if [ -z "$summary" ]; then
    res_sc="korutin-selfcheck --backend all: FAILED, exit $rc and no summary (log $dir.selfcheck.log)"; ok=0
  elif [ $rc != 0 ] || [ -n "$fails" ]; then
    res_sc="korutin-selfcheck --backend all: $summary; failed: ${fails:-?}(log $dir.selfcheck.log)"; ok=0
  else
    res_sc="korutin-selfcheck --backend all: $summary"
  fi
  if [ $ok = 1 ]; then
    echo "cross: $t: PASS ($how; $res_abi; $res_sc)"
  else
    echo "cross: $t: FAIL ($how; $res_abi; $res_sc)"
    return 1
  fi
}

status=0
for t in "$@"; do
  case $t in
    i686-linux-gnu|aarch64-linux-gnu|arm-linux-gnueabihf|native) linux_target "$t" || status=1 ;;
    x86_64-w64-mingw32|i686-w64-mingw32) mingw_target "$t" || status=1 ;;
    *) echo "cross: $t: FAIL (unknown target)"; status=1 ;;
  esac
done
exit $status

# The asm-abi test's sources follow (a quoted here-document: never run, only
# read back by write_abi_sources()).
: <<'END_OF_SOURCES'
#### asm_abi_check.c
/*
 * asm_abi_check.c - tests the asm backend's two functions directly:
 *   void ko_asm_jump(void **from, void **to);
 *   void *ko_asm_make(void *top, void *lo, void (*entry)(void *), void *arg);
 * or, with the split layout of switch_x86_64_sysv_elf.S (SPLIT: contexts
 * are KO_ASM_CTX_SIZE-byte blocks, the size cross.sh reads from asm.c):
 *   void ko_asm_jump(void *from, void *to, void *value);
 *   void ko_asm_make(void *ctx, void *top, void *lo, void (*entry)(void *), void *arg);
 * Five contexts (main + NCO coroutines) pass control round a ring, each
 * switch made at a random call depth through ko_test_switch, which loads a
 * fresh pattern into every callee-saved register before the switch and
 * reads them all back after it.
 */
#define _GNU_SOURCE
#include <fenv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <windows.h>
#include <intrin.h>
#endif
#if !defined(_WIN32)
#include <sys/mman.h>
#endif
#if !defined(_WIN64)
#include <unwind.h>
#endif
/* The TEB's ExceptionList and DeallocationStack (Win64: gs, Win32: fs). */
#if defined(_WIN64)
#define TEB_EXCEPT() ((uintptr_t)__readgsqword(0))
#define TEB_DEALLOC() ((uintptr_t)__readgsqword(0x1478))
#elif defined(_WIN32)
#define TEB_EXCEPT() ((uintptr_t)__readfsdword(0))
#define TEB_DEALLOC() ((uintptr_t)__readfsdword(0xE0C))
#endif

#if defined(__x86_64__) && !defined(_WIN32)
#define SPLIT 1
#ifndef KO_ASM_CTX_SIZE
#error "asm_abi_check: build with -DKO_ASM_CTX_SIZE (backends/asm/asm.c)"
#endif
void ko_asm_make(void *ctx, void *top, void *lo, void (*entry)(void *), void *arg);
#elif defined(_WIN32)
/* Windows: and the DeallocationStack the context's TIB gets. */
void *ko_asm_make(void *top, void *lo, void (*entry)(void *), void *arg, void *dealloc);
#define MAKE(top, lo, entry, arg, base) ko_asm_make(top, lo, entry, arg, base)
#else
void *ko_asm_make(void *top, void *lo, void (*entry)(void *), void *arg);
#define MAKE(top, lo, entry, arg, base) ko_asm_make(top, lo, entry, arg)
#endif
/* ko_asm_jump(from, to) with every callee-saved register checked. */
void ko_test_switch(void *from, void *to, const uintptr_t *fill, uintptr_t *got);
void probe_entry(void *arg);
void co_entry(void *arg);
uintptr_t probe_sp; /* sp as probe_entry found it; it then jumps to co_entry */

/* NWORDS: machine words of callee-saved registers ko_test_switch checks. */
#if defined(_WIN64)
#define NWORDS 28 /* rbx rbp rdi rsi r12-r15, xmm6-xmm15 */
#define ENTRY_SP_OK(sp) ((((sp) + 8) & 15) == 0)
#elif defined(__x86_64__)
#define NWORDS 6 /* rbx rbp r12-r15 */
#define ENTRY_SP_OK(sp) ((((sp) + 8) & 15) == 0)
#elif defined(__i386__)
#define NWORDS 4 /* ebx esi edi ebp */
#define ENTRY_SP_OK(sp) ((((sp) + 4) & 15) == 0)
#elif defined(__aarch64__)
#define NWORDS 19 /* x19-x29, d8-d15 */
#define ENTRY_SP_OK(sp) (((sp) & 15) == 0)
#elif defined(__arm__)
#define NWORDS 24 /* r4-r11, d8-d15 */
#define ENTRY_SP_OK(sp) (((sp) & 7) == 0)
#else
#error "asm_abi_check: unknown CPU"
#endif

static int failures, checks;
#define CHECK(c, ...) do { checks++; if (!(c)) { failures++; printf("FAIL line %d: ", __LINE__); \
  printf(__VA_ARGS__); printf("\n"); } } while (0)

#define NCO 4
#define ROUNDS 300
#define STACK (256 * 1024)
#define TOP_OFFSET 5  /* an unaligned top: ko_asm_make must align it */
#define LO_OFFSET 64
#ifdef SPLIT
/* A context: the registers, the stack pointer and the return address. */
static _Alignas(64) unsigned char ctxmem[NCO + 1][KO_ASM_CTX_SIZE];
#define CTX(i) ((void *)ctxmem[i])
#else
/* A context: the saved stack pointer. */
static void *ctx[NCO + 1];
#define CTX(i) ((void *)&ctx[i])
#endif
static unsigned char *stack_lo[NCO + 1];
static int markers[NCO + 1];
static int co_rounds[NCO + 1];
static const int modes[4] = {FE_TONEAREST, FE_UPWARD, FE_DOWNWARD, FE_TOWARDZERO};
static int made_mode;

static uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static void fill_pattern(uintptr_t *f, int who, int round) {
  for (int i = 0; i < NWORDS; i++)
    f[i] = (uintptr_t)splitmix(((uint64_t)who << 40) | ((uint64_t)round << 8) | (unsigned)i);
}

/* The FP control state the switch must keep per context (no status flags). */
static unsigned fp_ctl(void) {
#if defined(__i386__) || defined(__x86_64__)
  unsigned short cw;
  unsigned mx;
  __asm__ volatile("fnstcw %0" : "=m"(cw));
  __asm__ volatile("stmxcsr %0" : "=m"(mx));
  return ((unsigned)cw << 16) ^ (mx & 0xffc0);
#elif defined(__aarch64__)
  uint64_t v;
  __asm__ volatile("mrs %0, fpcr" : "=r"(v));
  return (unsigned)v;
#else
  unsigned v;
  __asm__ volatile("vmrs %0, fpscr" : "=r"(v));
  return v & ~0xf800009fu;
#endif
}

/* Recurses `depth` frames, switches to `next` at the bottom, and checks
 * everything on the way back up. Returns the number of errors. */
static int hop(int self, int next, int round, int depth, uint64_t rng) {
  volatile uint64_t local[8];
  for (int i = 0; i < 8; i++) local[i] = splitmix(rng + i);
  volatile double d = (double)depth / 3.0;
  int bad = 0;
  if (depth > 0) {
    bad += hop(self, next, round, depth - 1, rng * 31 + 7);
  } else {
    uintptr_t fill[NWORDS], got[NWORDS];
    fill_pattern(fill, self, round);
    unsigned before = fp_ctl();
    ko_test_switch(CTX(self), CTX(next), fill, got);
    for (int i = 0; i < NWORDS; i++)
      if (got[i] != fill[i]) {
        bad++;
        printf("FAIL context %d round %d: callee-saved word %d is %#llx, expected %#llx\n", self, round, i,
               (unsigned long long)got[i], (unsigned long long)fill[i]);
      }
    if (fp_ctl() != before) {
      bad++;
      printf("FAIL context %d round %d: FP control %#x became %#x\n", self, round, before, fp_ctl());
    }
    if (fegetround() != modes[self % 4]) {
      bad++;
      printf("FAIL context %d round %d: rounding mode lost\n", self, round);
    }
  }
  for (int i = 0; i < 8; i++)
    if (local[i] != splitmix(rng + i)) bad++;
  if (d != (double)depth / 3.0) bad++;
  return bad;
}

#if !defined(_WIN64)
struct bt { int n; uintptr_t last; };
static _Unwind_Reason_Code bt_cb(struct _Unwind_Context *c, void *p) {
  struct bt *b = p;
  uintptr_t ip = (uintptr_t)_Unwind_GetIP(c);
  b->n++;
  if (ip) b->last = ip;
  return b->n > 100 ? _URC_END_OF_STACK : _URC_NO_REASON;
}

static void unwind_checks(void) {
  struct bt b = {0, 0};
  _Unwind_Reason_Code r = _Unwind_Backtrace(bt_cb, &b);
#if defined(__arm__)
  /* EHABI: ko_asm_start is EXIDX_CANTUNWIND; the walk stops there. */
  CHECK(b.n >= 1 && b.n < 10 && r == _URC_FAILURE, "the unwind did not stop at the first frame: %d frames, code %d", b.n, (int)r);
#else
  /* DWARF: ko_asm_start's return address is undefined; it follows ko_asm_make. */
  CHECK(b.n < 10 && r == _URC_END_OF_STACK && b.last > (uintptr_t)ko_asm_make &&
        b.last < (uintptr_t)ko_asm_make + 0x200,
        "the unwind did not end at ko_asm_start: %d frames, code %d, last ip %#lx", b.n, (int)r, (unsigned long)b.last);
#endif
}
#endif

#ifdef _WIN32
int cxx_throw_catch(int v);

static void windows_checks(int self) {
  NT_TIB *tib = (NT_TIB *)NtCurrentTeb();
  uintptr_t top = ((uintptr_t)stack_lo[self] + STACK - TOP_OFFSET) & ~(uintptr_t)15;
  CHECK((uintptr_t)tib->StackBase == top, "StackBase %p", tib->StackBase);
  CHECK((unsigned char *)tib->StackLimit == stack_lo[self] + LO_OFFSET, "StackLimit %p", tib->StackLimit);
  CHECK((unsigned char *)TEB_DEALLOC() == stack_lo[self], "DeallocationStack");
  CHECK(TEB_EXCEPT() == ~(uintptr_t)0, "ExceptionList %#lx", (unsigned long)TEB_EXCEPT());
#if defined(_WIN64)
  /* The Windows unwinder must walk this stack to a null return address. */
  CONTEXT c;
  RtlCaptureContext(&c);
  int n = 0;
  DWORD64 lastpc = 0;
  while (c.Rip && n < 100) {
    DWORD64 base;
    PRUNTIME_FUNCTION f = RtlLookupFunctionEntry(c.Rip, &base, NULL);
    lastpc = c.Rip;
    if (f) {
      void *hd;
      DWORD64 est;
      RtlVirtualUnwind(0, base, c.Rip, f, &c, &hd, &est, NULL);
    } else {
      c.Rip = *(DWORD64 *)c.Rsp;
      c.Rsp += 8;
    }
    n++;
    if (c.Rip)
      CHECK(c.Rsp > (DWORD64)stack_lo[self] && c.Rsp < top, "unwound rsp %#llx outside the stack", (unsigned long long)c.Rsp);
  }
  CHECK(c.Rip == 0 && n < 10, "the Windows unwind did not end at a null return address: %d frames", n);
  /* ko_asm_start, the first frame, directly follows ko_asm_make. */
  CHECK(lastpc > (DWORD64)(uintptr_t)ko_asm_make && lastpc < (DWORD64)(uintptr_t)ko_asm_make + 0x200,
        "the last frame %#llx is not ko_asm_start", (unsigned long long)lastpc);
#else
  /* Win32 code from mingw-w64 unwinds with DWARF CFI, as on Linux. */
  unwind_checks();
#endif
  /* SEH dispatch checks frames against the TIB's stack bounds. */
  CHECK(cxx_throw_catch(self) == self * 7, "a C++ exception thrown and caught inside the coroutine");
}
#endif

void co_entry(void *arg) {
  int self = (int)((int *)arg - markers);
  CHECK(self >= 1 && self <= NCO, "entry got a wrong arg %p", arg);
  CHECK(ENTRY_SP_OK(probe_sp), "context %d: sp at entry %#lx is misaligned", self, (unsigned long)probe_sp);
  CHECK(probe_sp > (uintptr_t)stack_lo[self] + LO_OFFSET && probe_sp < (uintptr_t)stack_lo[self] + STACK - TOP_OFFSET,
        "context %d: sp at entry is outside its stack", self);
  CHECK(fegetround() == made_mode, "context %d starts with rounding mode %d, made with %d", self, fegetround(), made_mode);
  /* Doubles through varargs. */
  char buf[64], want[64];
  fesetround(FE_TONEAREST);
  snprintf(buf, sizeof buf, "%.3f %.1f", 3.14159, -2.5 * self);
  snprintf(want, sizeof want, "3.142 -%d.%d", (25 * self) / 10, (25 * self) % 10);
  CHECK(strcmp(buf, want) == 0, "snprintf gave \"%s\", expected \"%s\"", buf, want);
#ifdef _WIN32
  windows_checks(self);
#else
  unwind_checks();
#endif
  fesetround(modes[self % 4]);
  uint64_t rng = splitmix((uint64_t)self * 977);
  for (int round = 0;; round++) {
    rng = splitmix(rng);
    int bad = hop(self, (self + 1) % (NCO + 1), round, (int)(rng % 40), rng);
    CHECK(bad == 0, "context %d round %d: %d errors", self, round, bad);
    co_rounds[self] = round + 1;
  }
}

static unsigned char *alloc_stack(void) {
#ifdef _WIN32
  return VirtualAlloc(NULL, STACK, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
#else
  void *p = mmap(NULL, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
#endif
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
#ifdef _WIN32
  NT_TIB *tib = (NT_TIB *)NtCurrentTeb();
  void *base0 = tib->StackBase, *limit0 = tib->StackLimit;
  uintptr_t dealloc0 = TEB_DEALLOC(), except0 = TEB_EXCEPT();
#endif
  made_mode = FE_DOWNWARD;
  fesetround(made_mode);
  for (int i = 1; i <= NCO; i++) {
    stack_lo[i] = alloc_stack();
    if (!stack_lo[i]) {
      printf("FAIL: no memory for a stack\n");
      return 2;
    }
    memset(stack_lo[i], 0xa5, STACK);
    unsigned char *top = stack_lo[i] + STACK - TOP_OFFSET;
#ifdef SPLIT
    ko_asm_make(ctxmem[i], top, stack_lo[i] + LO_OFFSET, probe_entry, &markers[i]);
    uintptr_t sp = ((uintptr_t *)ctxmem[i])[1]; /* ctx + 0x08: the stack pointer */
    CHECK(sp < (uintptr_t)top && sp > (uintptr_t)top - 1024, "ko_asm_make left the stack pointer %#lx", (unsigned long)sp);
#else
    ctx[i] = MAKE(top, stack_lo[i] + LO_OFFSET, probe_entry, &markers[i], stack_lo[i]);
    CHECK((uintptr_t)ctx[i] < (uintptr_t)top && (uintptr_t)ctx[i] > (uintptr_t)top - 1024, "ko_asm_make returned %p", ctx[i]);
#endif
  }
  fesetround(FE_TONEAREST);
  for (int round = 0; round < ROUNDS; round++) {
    int bad = hop(0, 1, round, round % 17, splitmix(round));
    CHECK(bad == 0, "main round %d: %d errors", round, bad);
#ifdef _WIN32
    CHECK(tib->StackBase == base0 && tib->StackLimit == limit0 && TEB_DEALLOC() == dealloc0 &&
          TEB_EXCEPT() == except0, "main's TIB fields were not restored");
#endif
  }
  for (int i = 1; i <= NCO; i++) CHECK(co_rounds[i] == ROUNDS - 1, "context %d did %d rounds", i, co_rounds[i]);
  printf("%d checks, %d failed\n", checks, failures);
  return failures ? 1 : 0;
}
#### end
#### asm_abi_regs.S
/*
 * void ko_test_switch(void *from, void *to, const uintptr_t *fill, uintptr_t *got);
 *   Loads fill[] into every callee-saved register, scribbles on the
 *   scratch ones, calls ko_asm_jump(from, to), then stores every
 *   callee-saved register into got[]. Keeps its own caller's registers.
 * probe_entry: records sp in probe_sp, then jumps to co_entry.
 */
#if defined(__x86_64__) && defined(_WIN64)
    .text
    .globl ko_test_switch
ko_test_switch:
    pushq %rbp; pushq %rbx; pushq %rdi; pushq %rsi; pushq %r12; pushq %r13; pushq %r14; pushq %r15
    subq $0xc8, %rsp
    movaps %xmm6, 0x20(%rsp); movaps %xmm7, 0x30(%rsp); movaps %xmm8, 0x40(%rsp); movaps %xmm9, 0x50(%rsp)
    movaps %xmm10, 0x60(%rsp); movaps %xmm11, 0x70(%rsp); movaps %xmm12, 0x80(%rsp); movaps %xmm13, 0x90(%rsp)
    movaps %xmm14, 0xa0(%rsp); movaps %xmm15, 0xb0(%rsp)
    movq %r9, 0xc0(%rsp)
    movq 0(%r8), %rbx; movq 8(%r8), %rbp; movq 16(%r8), %rdi; movq 24(%r8), %rsi
    movq 32(%r8), %r12; movq 40(%r8), %r13; movq 48(%r8), %r14; movq 56(%r8), %r15
    movdqu 64(%r8), %xmm6; movdqu 80(%r8), %xmm7; movdqu 96(%r8), %xmm8; movdqu 112(%r8), %xmm9
    movdqu 128(%r8), %xmm10; movdqu 144(%r8), %xmm11; movdqu 160(%r8), %xmm12; movdqu 176(%r8), %xmm13
    movdqu 192(%r8), %xmm14; movdqu 208(%r8), %xmm15
    movq $-1, %rax; movq $-1, %r10; movq $-1, %r11; pcmpeqd %xmm0, %xmm0; pcmpeqd %xmm5, %xmm5
    call ko_asm_jump
    movq 0xc0(%rsp), %rax
    movq %rbx, 0(%rax); movq %rbp, 8(%rax); movq %rdi, 16(%rax); movq %rsi, 24(%rax)
    movq %r12, 32(%rax); movq %r13, 40(%rax); movq %r14, 48(%rax); movq %r15, 56(%rax)
    movdqu %xmm6, 64(%rax); movdqu %xmm7, 80(%rax); movdqu %xmm8, 96(%rax); movdqu %xmm9, 112(%rax)
    movdqu %xmm10, 128(%rax); movdqu %xmm11, 144(%rax); movdqu %xmm12, 160(%rax); movdqu %xmm13, 176(%rax)
    movdqu %xmm14, 192(%rax); movdqu %xmm15, 208(%rax)
    movaps 0x20(%rsp), %xmm6; movaps 0x30(%rsp), %xmm7; movaps 0x40(%rsp), %xmm8; movaps 0x50(%rsp), %xmm9
    movaps 0x60(%rsp), %xmm10; movaps 0x70(%rsp), %xmm11; movaps 0x80(%rsp), %xmm12; movaps 0x90(%rsp), %xmm13
    movaps 0xa0(%rsp), %xmm14; movaps 0xb0(%rsp), %xmm15
    addq $0xc8, %rsp
    popq %r15; popq %r14; popq %r13; popq %r12; popq %rsi; popq %rdi; popq %rbx; popq %rbp
    ret
    .globl probe_entry
probe_entry:
    movq %rsp, probe_sp(%rip)
    jmp co_entry
#elif defined(__x86_64__)
    .text
    .globl ko_test_switch
ko_test_switch:
    pushq %rbp; pushq %rbx; pushq %r12; pushq %r13; pushq %r14; pushq %r15
    pushq %rcx
    movq 0(%rdx), %rbx; movq 8(%rdx), %rbp; movq 16(%rdx), %r12
    movq 24(%rdx), %r13; movq 32(%rdx), %r14; movq 40(%rdx), %r15
    movq $-1, %rax; movq $-1, %rcx; movq $-1, %rdx; movq $-1, %r8; movq $-1, %r9; movq $-1, %r10; movq $-1, %r11
    call ko_asm_jump
    movq (%rsp), %rax
    movq %rbx, 0(%rax); movq %rbp, 8(%rax); movq %r12, 16(%rax)
    movq %r13, 24(%rax); movq %r14, 32(%rax); movq %r15, 40(%rax)
    popq %rcx
    popq %r15; popq %r14; popq %r13; popq %r12; popq %rbx; popq %rbp
    ret
    .globl probe_entry
probe_entry:
    movq %rsp, probe_sp(%rip)
    jmp co_entry
    .section .note.GNU-stack,"",%progbits
#elif defined(__i386__)
#ifdef _WIN32
#define SYM(x) _##x
#else
#define SYM(x) x
#endif
    .text
    .globl SYM(ko_test_switch)
SYM(ko_test_switch):
    pushl %ebp; pushl %ebx; pushl %esi; pushl %edi
    movl 32(%esp), %eax; pushl %eax      /* got */
    movl 32(%esp), %eax                  /* fill */
    movl 24(%esp), %ecx                  /* from */
    movl 28(%esp), %edx                  /* to */
    movl 0(%eax), %ebx; movl 4(%eax), %esi; movl 8(%eax), %edi; movl 12(%eax), %ebp
    pushl %edx; pushl %ecx
    movl $-1, %eax; movl $-1, %ecx; movl $-1, %edx
    call SYM(ko_asm_jump)
    addl $8, %esp
    movl (%esp), %eax
    movl %ebx, 0(%eax); movl %esi, 4(%eax); movl %edi, 8(%eax); movl %ebp, 12(%eax)
    addl $4, %esp
    popl %edi; popl %esi; popl %ebx; popl %ebp
    ret
    .globl SYM(probe_entry)
SYM(probe_entry):
    movl %esp, SYM(probe_sp)
    jmp SYM(co_entry)
#ifndef _WIN32
    .section .note.GNU-stack,"",%progbits
#endif
#elif defined(__aarch64__)
    .text
    .globl ko_test_switch
ko_test_switch:
    stp x29, x30, [sp, #-176]!
    stp x19, x20, [sp, #16]; stp x21, x22, [sp, #32]; stp x23, x24, [sp, #48]
    stp x25, x26, [sp, #64]; stp x27, x28, [sp, #80]
    stp d8, d9, [sp, #96]; stp d10, d11, [sp, #112]; stp d12, d13, [sp, #128]; stp d14, d15, [sp, #144]
    str x3, [sp, #160]
    ldp x19, x20, [x2, #0]; ldp x21, x22, [x2, #16]; ldp x23, x24, [x2, #32]
    ldp x25, x26, [x2, #48]; ldp x27, x28, [x2, #64]; ldr x29, [x2, #80]
    ldp d8, d9, [x2, #88]; ldp d10, d11, [x2, #104]; ldp d12, d13, [x2, #120]; ldp d14, d15, [x2, #136]
    mov x2, #-1; mov x3, #-1; mov x9, #-1; mov x15, #-1; movi v0.2d, #-1; movi v16.2d, #-1
    bl ko_asm_jump
    ldr x3, [sp, #160]
    stp x19, x20, [x3, #0]; stp x21, x22, [x3, #16]; stp x23, x24, [x3, #32]
    stp x25, x26, [x3, #48]; stp x27, x28, [x3, #64]; str x29, [x3, #80]
    stp d8, d9, [x3, #88]; stp d10, d11, [x3, #104]; stp d12, d13, [x3, #120]; stp d14, d15, [x3, #136]
    ldp x19, x20, [sp, #16]; ldp x21, x22, [sp, #32]; ldp x23, x24, [sp, #48]
    ldp x25, x26, [sp, #64]; ldp x27, x28, [sp, #80]
    ldp d8, d9, [sp, #96]; ldp d10, d11, [sp, #112]; ldp d12, d13, [sp, #128]; ldp d14, d15, [sp, #144]
    ldp x29, x30, [sp], #176
    ret
    .globl probe_entry
probe_entry:
    mov x9, sp
    adrp x10, probe_sp
    str x9, [x10, :lo12:probe_sp]
    b co_entry
    .section .note.GNU-stack,"",%progbits
#elif defined(__arm__)
    .syntax unified
    .text
    .globl ko_test_switch
    .type ko_test_switch, %function
ko_test_switch:
    push {r4-r11, lr}
    vpush {d8-d15}
    push {r3}
    ldm r2!, {r4-r11}
    vldm r2, {d8-d15}
    mov r2, #-1
    mov r3, #-1
    mov r12, #-1
    vmov d0, r2, r3
    vmov d7, r2, r3
    bl ko_asm_jump
    ldr r3, [sp]
    stm r3!, {r4-r11}
    vstm r3, {d8-d15}
    add sp, sp, #4
    vpop {d8-d15}
    pop {r4-r11, pc}
    .globl probe_entry
    .type probe_entry, %function
probe_entry:
    mov r12, sp
    ldr r2, =probe_sp
    str r12, [r2]
    b co_entry
    .ltorg
    .section .note.GNU-stack,"",%progbits
#endif
#### end
#### asm_abi_cxx.cc
#include <stdexcept>
extern "C" int cxx_throw_catch(int v) {
  try {
    throw std::runtime_error("thrown inside a coroutine");
  } catch (const std::exception &) {
    return v * 7;
  }
  return -1;
}
#### end
END_OF_SOURCES

/*
 * kt.h - the tiny test harness of korutin-selfcheck.
 *
 * A test is a function taking a `kt *`; it checks with KT_CHECK, may skip
 * itself with kt_skip() and may leave a note (shown beside its result).
 * Each group file ends with a table of its tests:
 *
 *   const kt_test kt_group_align[] = {
 *     {"align-entry", align_entry},
 *     {NULL, NULL},
 *   };
 *
 * and main.c lists the groups. The runner calls every test once per
 * backend, each in a child process of its own (so a crash or a hang is
 * that test's failure, not the end of the report).
 */
#ifndef KT_H
#define KT_H

#include "korutin.h"

#include <stddef.h>
#include <stdint.h>

typedef struct kt {
  const ko_backend *be;
  int own_thread;        /* the backend runs each coroutine on a thread */
  int failed;
  int skipped;
  char msg[400];         /* the first failure, or why it was skipped */
  char note[200];        /* optional: what was measured or scaled */
  double value;          /* a figure a measurement reports */
} kt;

typedef void (*kt_fn)(kt *t);
typedef struct kt_test {
  const char *name;
  kt_fn fn;
} kt_test;

/* The groups, one per file. */
extern const kt_test kt_group_regs[];
extern const kt_test kt_group_fpu[];
extern const kt_test kt_group_align[];
extern const kt_test kt_group_stack[];
extern const kt_test kt_group_walk[];
extern const kt_test kt_group_leak[];
extern const kt_test kt_group_api[];

/* Evaluates to 1 when cond holds; otherwise records a failure (the first
 * one is kept, with file and line) and evaluates to 0. An optional
 * printf-style message may follow (its arguments are always evaluated):
 *   if (!KT_CHECK(t, got == want, "got %d", got)) return; */
#define KT_CHECK(t, cond, ...) kt_check((t), (cond) != 0, __FILE__, __LINE__, #cond, " " __VA_ARGS__)

/* mingw: the C99 printf of its own (__USE_MINGW_ANSI_STDIO, set by the
 * build), not msvcrt's. */
#if defined(__MINGW32__)
#define KT_PRINTF gnu_printf
#else
#define KT_PRINTF printf
#endif

int kt_check(kt *t, int ok, const char *file, int line, const char *expr, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(KT_PRINTF, 6, 7)))
#endif
    ;
void kt_skip(kt *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(KT_PRINTF, 2, 3)))
#endif
    ;
void kt_note(kt *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(KT_PRINTF, 2, 3)))
#endif
    ;

/* ko_create on the test's backend; records a failure and returns NULL on
 * error. stack_size 0: the default. */
ko_coro *kt_create(kt *t, ko_fn fn, void *arg, size_t stack_size);

/* Under a tool that changes what a test can observe. */
int kt_under_valgrind(void);
int kt_under_asan(void);
int kt_under_qemu(void); /* qemu-user: the process is named qemu-<cpu> */
int kt_under_wine(void); /* Windows programs run by Wine (its ntdll says so) */

/* Resident set size in bytes, from /proc/self/statm (0 if unknown). */
size_t kt_rss(void);
/* Number of mappings in /proc/self/maps (0 if unknown). */
size_t kt_map_count(void);
/* Monotonic time in nanoseconds. */
double kt_now_ns(void);

/* Runs fn(arg, fd) in a child process that may write up to `cap` bytes to
 * the pipe `fd`; they land in `out` (*got says how many). The child gets
 * `timeout_s` seconds (an alarm ends it; the parent kills it a little
 * later if need be). Returns the child's wait status, or -1 when it could
 * not be started; *timed_out says whether it ran out of time. */
int kt_fork(void (*fn)(void *arg, int fd), void *arg, unsigned timeout_s,
            void *out, size_t cap, size_t *got, int *timed_out);
/* In such a child: sends a line of text to the parent. */
void kt_child_send(int fd, const char *text);
/* Whether a child process works here: a child that only exits must be
 * gone within a few seconds (under qemu-i386 with a dynamically linked
 * glibc, fork()'s child hangs). NULL when it works, else why not. */
const char *kt_fork_broken(void);

#ifdef _WIN32
/* Windows has no fork(): kt_fork() fails there, and a child is this
 * program run again (CreateProcess) with `args` after its name. The
 * child's stdout (up to `cap` bytes) lands in `out`; it gets `timeout_s`
 * seconds. Returns its exit code (an NTSTATUS such as 0xC00000FD when an
 * exception ended it), or -1 when it could not be started. (kt_win.c) */
long kt_spawn_self(const char *args, unsigned timeout_s, void *out, size_t cap, size_t *got,
                   int *timed_out);
/* In such a child: writes to the parent (stdout, binary). */
void kt_child_write(const void *p, size_t n);
/* The tests a child may be asked to run that are not in a group
 * (`korutin-selfcheck --child BACKEND NAME`). */
extern const kt_test kt_children[];
#endif

/* A fast deterministic generator (xorshift64*). */
static inline uint64_t kt_rand(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1DULL;
}

/* A 64-bit mix of a few words (splitmix64 finaliser). */
static inline uint64_t kt_mix(uint64_t a, uint64_t b) {
  uint64_t z = a * 0x9E3779B97F4A7C15ULL + b;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

#endif

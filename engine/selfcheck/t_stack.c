/*
 * t_stack.c - recursion deep into a coroutine's stack, and what happens
 * past its end.
 *
 * stack-deep: recursion that uses 90% of a 256 KiB stack, switching out at
 * the deepest point, every frame checked on the way back up.
 * stack-longjmp: longjmp out of deep frames inside a coroutine, after it
 * switched out and back at the bottom (C's way to unwind). Under ASan the
 * longjmp makes it clear the poison of the frames left behind, from the
 * stack pointer to the top of the stack it believes it is on: with wrong
 * stack bounds from the engine's fiber annotations it refuses, and the test
 * finds those frames still poisoned.
 * stack-overflow: unbounded recursion in a child process. It must fault
 * (SIGSEGV or SIGBUS) on the guard page below the stack: a handler on an
 * alternate signal stack reports the fault address, which must fall inside
 * the guard, then lets the signal kill the child. On Windows (no signals,
 * no alternate stacks) a vectored exception handler reports the exception
 * (STATUS_STACK_OVERFLOW, or a guard-page or access violation) and its
 * address, which must lie in the guard below the stack (from the
 * reservation's base to lo: engine/src/stack_win.c), then ends the child
 * with that code; it runs on the overflowed stack, in the room the guard's
 * PAGE_GUARD pages leave once tripped.
 */
#include "kt.h"

#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#else
#include <sys/wait.h>
#include <unistd.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif
#ifdef HAVE_ASAN
#include <sanitizer/asan_interface.h>
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define HAVE_VALGRIND_H 1
#endif
#endif

#define DEEP_STACK (256 * 1024)
#define FRAME_WORDS 24

/* ------------------------------------------------------------ stack-deep */

typedef struct deep {
  kt *t;
  uintptr_t floor;    /* stop recursing below this address */
  uintptr_t lowest;   /* the deepest local seen */
  unsigned depth;     /* frames reached */
  unsigned bad;       /* frames found damaged on the way up */
} deep;

#if defined(__GNUC__)
__attribute__((noinline))
#endif
static uint64_t descend(deep *d, unsigned level) {
  volatile uint64_t words[FRAME_WORDS];
  for (unsigned i = 0; i < FRAME_WORDS; i++) words[i] = kt_mix(level, i);
  uintptr_t here = (uintptr_t)words;
  uint64_t below = 0;
  if (here > d->floor) {
    below = descend(d, level + 1);
  } else {
    d->lowest = here;
    d->depth = level;
    ko_yield(NULL); /* switch out and back at the deepest point */
  }
  uint64_t sum = below;
  for (unsigned i = 0; i < FRAME_WORDS; i++) {
    if (words[i] != kt_mix(level, i)) d->bad++;
    sum += words[i];
  }
  return sum;
}

static void *deep_body(ko_coro *co, void *arg) {
  deep *d = (deep *)arg;
  void *lo;
  size_t size;
  ko_coro_stack(co, &lo, &size);
  d->floor = (uintptr_t)lo + size / 10; /* leave 10% */
  return (void *)(uintptr_t)descend(d, 1);
}

static void stack_deep(kt *t) {
  deep d = {.t = t};
  ko_coro *co = kt_create(t, deep_body, &d, DEEP_STACK);
  if (!co) return;
  void *lo;
  size_t size;
  ko_coro_stack(co, &lo, &size);
  KT_CHECK(t, size >= DEEP_STACK, "usable stack %zu bytes", size);
  KT_CHECK(t, ko_resume(co, NULL, NULL) == KO_OK);
  KT_CHECK(t, ko_status(co) == KO_SUSPENDED, "it should wait at its deepest point");
  uintptr_t top = (uintptr_t)lo + size;
  double used = (double)(top - d.lowest) / (double)size;
  KT_CHECK(t, used >= 0.88, "only %.0f%% of the stack was used", used * 100);
  void *sum = NULL;
  KT_CHECK(t, ko_resume(co, NULL, &sum) == KO_OK);
  uint64_t want = 0;
  for (unsigned level = 1; level <= d.depth; level++)
    for (unsigned i = 0; i < FRAME_WORDS; i++) want += kt_mix(level, i);
  KT_CHECK(t, d.bad == 0, "%u damaged frames", d.bad);
  KT_CHECK(t, (uintptr_t)sum == (uintptr_t)want, "frame checksum");
  kt_note(t, "%u frames, %.0f%% of %d KiB", d.depth, used * 100, DEEP_STACK / 1024);
  ko_destroy(co);
}

/* --------------------------------------------------------- stack-longjmp */

typedef struct jumper {
  jmp_buf top;
  unsigned reached;
  char *first, *deepest;  /* frame addresses of the outermost and innermost sink */
} jumper;

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winfinite-recursion" /* it ends in longjmp */
__attribute__((noinline))
#endif
static void sink(jumper *j, unsigned level, unsigned bottom) {
  volatile uint64_t words[FRAME_WORDS];
  for (unsigned i = 0; i < FRAME_WORDS; i++) words[i] = kt_mix(level, i);
  if (level == 1) j->first = (char *)__builtin_frame_address(0);
  if (level < bottom) {
    sink(j, level + 1, bottom);
  } else {
    j->reached = level;
    j->deepest = (char *)__builtin_frame_address(0);
    ko_yield(NULL);
    longjmp(j->top, (int)level);
  }
  words[0]++; /* not reached: the longjmp leaves every frame */
}
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

typedef struct jump_arg { kt *t; jumper *j; } jump_arg;

static void *longjmp_body(ko_coro *co, void *arg) {
  (void)co;
  kt *t = ((jump_arg *)arg)->t;
  jumper *j = ((jump_arg *)arg)->j;
  volatile unsigned sum = 0, round = 0;
  while (round < 20) {
    int got = setjmp(j->top);
    if (got == 0) sink(j, 1, 50 + 10 * round);
#ifdef HAVE_ASAN
    /* The frames between the innermost sink's and the outermost's. */
    char *lo = j->deepest - 256, *hi = j->first;
    void *bad = __asan_region_is_poisoned(lo, (size_t)(hi - lo));
    KT_CHECK(t, bad == NULL, "ASan still has poison at %p in the frames longjmp left (%p-%p): wrong stack "
             "bounds in the fiber annotations?", bad, (void *)lo, (void *)hi);
#else
    (void)t;
#endif
    sum += (unsigned)got;
    round++;
  }
  return (void *)(uintptr_t)sum;
}

static void stack_longjmp(kt *t) {
  jumper j = {.reached = 0};
  jump_arg ja = {t, &j};
  ko_coro *co = kt_create(t, longjmp_body, &ja, DEEP_STACK);
  if (!co) return;
  unsigned want = 0;
  for (unsigned round = 0; round < 20; round++) {
    KT_CHECK(t, ko_resume(co, NULL, NULL) == KO_OK && ko_status(co) == KO_SUSPENDED);
    KT_CHECK(t, j.reached == 50 + 10 * round, "round %u reached depth %u", round, j.reached);
    want += j.reached;
  }
  void *sum = NULL;
  KT_CHECK(t, ko_resume(co, NULL, &sum) == KO_OK && ko_status(co) == KO_DONE);
  KT_CHECK(t, (uintptr_t)sum == want, "sum of the longjmp values %lu, want %u", (unsigned long)(uintptr_t)sum,
           want);
  ko_destroy(co);
}

/* -------------------------------------------------------- stack-overflow */

static uintptr_t guard_lo, guard_hi; /* the guard region [lo, hi) */
#ifndef _WIN32
static int report_fd = -1; /* the pipe to the parent */
#endif

static void put_hex(char *p, uintptr_t v) {
  for (int i = 15; i >= 0; i--, v >>= 4) p[i] = "0123456789abcdef"[v & 15];
}

#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Winfinite-recursion"
__attribute__((noinline))
#endif
static uint64_t dive(unsigned level) {
  volatile uint64_t words[FRAME_WORDS];
  for (unsigned i = 0; i < FRAME_WORDS; i++) words[i] = level + i;
  return dive(level + 1) + words[level % FRAME_WORDS];
}

#ifdef _WIN32
/* Formats by hand (little stack left), writes, ends the process. */
static LONG CALLBACK on_exception(EXCEPTION_POINTERS *ep) {
  DWORD code = ep->ExceptionRecord->ExceptionCode;
  if (code != EXCEPTION_STACK_OVERFLOW && code != EXCEPTION_GUARD_PAGE && code != EXCEPTION_ACCESS_VIOLATION)
    return EXCEPTION_CONTINUE_SEARCH;
  uintptr_t a = ep->ExceptionRecord->NumberParameters >= 2 ? ep->ExceptionRecord->ExceptionInformation[1] : 0;
  char msg[80] = "fault code=0x0000000000000000 addr=0x0000000000000000 guard=0\n";
  put_hex(msg + 13, code);
  put_hex(msg + 37, a);
  msg[60] = (char)(a >= guard_lo && a < guard_hi ? '1' : '0');
  kt_child_write(msg, strlen(msg));
  TerminateProcess(GetCurrentProcess(), code);
  return EXCEPTION_CONTINUE_SEARCH;
}

static void *overflow_body(ko_coro *co, void *arg) {
  (void)co;
  (void)arg;
  return (void *)(uintptr_t)dive(0);
}

/* Run as `korutin-selfcheck --child BACKEND overflow-child`. */
static void overflow_child(kt *t) {
  AddVectoredExceptionHandler(1, on_exception);
  ko_options opt = {0};
  opt.backend = t->be;
  opt.stack_size = 64 * 1024;
  ko_coro *co;
  if (ko_create(&co, &opt, overflow_body, NULL) != KO_OK) {
    kt_child_send(1, "ko_create failed\n");
    return;
  }
  void *lo;
  ko_coro_stack(co, &lo, NULL);
  MEMORY_BASIC_INFORMATION mbi;
  if (!VirtualQuery((char *)lo - 1, &mbi, sizeof mbi)) {
    kt_child_send(1, "VirtualQuery failed\n");
    return;
  }
  guard_lo = (uintptr_t)mbi.AllocationBase;
  guard_hi = (uintptr_t)lo;
  ko_resume(co, NULL, NULL);
  kt_child_send(1, "returned from the overflowing coroutine\n");
}

const kt_test kt_children[] = {
  {"overflow-child", overflow_child},
  {NULL, NULL},
};

static void stack_overflow(kt *t) {
  char args[96], out[256] = {0};
  snprintf(args, sizeof args, "--child %s overflow-child", ko_backend_name(t->be));
  size_t got = 0;
  int timed_out = 0;
  long code = kt_spawn_self(args, 60, out, sizeof out - 1, &got, &timed_out);
  unsigned long ucode = (unsigned long)code & 0xffffffffUL;
  out[got] = 0;
  char *nl = strchr(out, '\n');
  if (nl) *nl = 0;
  if (!KT_CHECK(t, code != -1, "could not start a child process")) return;
  if (!KT_CHECK(t, !timed_out, "the overflowing child hung")) return;
  KT_CHECK(t, ucode == EXCEPTION_STACK_OVERFLOW || ucode == EXCEPTION_GUARD_PAGE || ucode == EXCEPTION_ACCESS_VIOLATION,
           "child exited with 0x%08lx; it said \"%s\"", ucode, out);
  KT_CHECK(t, strncmp(out, "fault", 5) == 0 && strstr(out, "guard=1") != NULL,
           "the fault was not in the guard: \"%s\"", out);
  kt_note(t, "%s", out);
}
#else
/* Async-signal-safe: formats by hand, write(2), then dies by the signal. */
static void on_fault(int sig, siginfo_t *si, void *uc) {
  (void)uc;
  uintptr_t a = (uintptr_t)si->si_addr;
  char msg[64] = "fault sig=00 addr=0x0000000000000000 guard=0\n";
  msg[10] = (char)('0' + sig / 10);
  msg[11] = (char)('0' + sig % 10);
  put_hex(msg + 20, a);
  msg[43] = (char)(a >= guard_lo && a < guard_hi ? '1' : '0');
  if (write(report_fd, msg, strlen(msg)) < 0) {
  }
#ifdef HAVE_VALGRIND_H
  VALGRIND_ENABLE_ERROR_REPORTING; /* balances overflow_body's */
#endif
  signal(sig, SIG_DFL);
  raise(sig);
}

static void alt_stack(void) {
  static __thread char *mem;
  if (mem) return;
  size_t size = 64 * 1024; /* ample even for an instrumented handler */
  mem = (char *)malloc(size);
  stack_t ss = {.ss_sp = mem, .ss_size = size, .ss_flags = 0};
  sigaltstack(&ss, NULL);
}

static void *overflow_body(ko_coro *co, void *arg) {
  (void)co;
  (void)arg;
  alt_stack(); /* per thread: the threads backend runs this on its own */
#ifdef HAVE_VALGRIND_H
  /* memcheck may also report the writes into the guard page as errors;
   * here they are the point of the test, the fault is what is checked. */
  VALGRIND_DISABLE_ERROR_REPORTING;
#endif
  return (void *)(uintptr_t)dive(0);
}

typedef struct overflow_arg { const ko_backend *be; } overflow_arg;

static void overflow_child(void *p, int fd) {
  overflow_arg *oa = (overflow_arg *)p;
  report_fd = fd;
  alt_stack();
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, NULL);
  sigaction(SIGBUS, &sa, NULL);

  ko_options opt = {0};
  opt.backend = oa->be;
  opt.stack_size = 64 * 1024;
  ko_coro *co;
  if (ko_create(&co, &opt, overflow_body, NULL) != KO_OK) {
    kt_child_send(fd, "ko_create failed\n");
    return;
  }
  void *lo;
  ko_coro_stack(co, &lo, NULL);
  guard_hi = (uintptr_t)lo;
  guard_lo = guard_hi - (uintptr_t)sysconf(_SC_PAGESIZE); /* the default guard */
  ko_resume(co, NULL, NULL);
  kt_child_send(fd, "returned from the overflowing coroutine\n");
}

static void stack_overflow(kt *t) {
  if (kt_fork_broken()) {
    kt_skip(t, "it needs a child process, and here %s", kt_fork_broken());
    return;
  }
  overflow_arg oa = {t->be};
  char out[256] = {0};
  size_t got = 0;
  int timed_out = 0;
  int status = kt_fork(overflow_child, &oa, kt_under_valgrind() ? 600 : 60, out, sizeof out - 1, &got,
                       &timed_out);
  out[got] = 0;
  char *nl = strchr(out, '\n');
  if (nl) *nl = 0;
  if (!KT_CHECK(t, status != -1, "fork failed")) return;
  if (!KT_CHECK(t, !timed_out, "the overflowing child hung")) return;
  KT_CHECK(t, WIFSIGNALED(status) && (WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS),
           "child %s %d; it said \"%s\"", WIFSIGNALED(status) ? "died by signal" : "exited with",
           WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), out);
  KT_CHECK(t, strncmp(out, "fault", 5) == 0 && strstr(out, "guard=1") != NULL,
           "the fault was not on the guard page: \"%s\"", out);
  kt_note(t, "%s", out);
}
#endif

const kt_test kt_group_stack[] = {
  {"stack-deep", stack_deep},
  {"stack-longjmp", stack_longjmp},
  {"stack-overflow", stack_overflow},
  {NULL, NULL},
};

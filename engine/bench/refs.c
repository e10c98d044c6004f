/*
 * refs.c - the reference switches korutin-bench compares the backends with,
 * each as bare as it can be written: no engine, no bookkeeping.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <fenv.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#define REF_STACK (64 * 1024)

static void *map_stack(void) {
  void *p = mmap(NULL, REF_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

/* Defines `double name(int count, long round_trips, int reps)`: the
 * libkorutin table's unit for a reference switch, `count` contexts on
 * stacks of their own, their handles in one array (the cheapest place a
 * caller can keep them), resumed round-robin: round trips per second (the
 * median of reps runs), or -1. MAKE(h, top) makes the context of handle
 * slot h on the stack below top; RESUME(h) resumes it until it yields. Both
 * are written into the loops, so the timing calls nothing but the switch. */
#define KB_ROUND_ROBIN(name, MAKE, RESUME)                                                  \
  double name(int count, long round_trips, int reps) {                                      \
    void **h = (void **)calloc((size_t)count, sizeof *h);                                    \
    char **stacks = (char **)calloc((size_t)count, sizeof *stacks);                          \
    double rate = -1, v[64];                                                                 \
    int made = 0;                                                                            \
    if (h && stacks) {                                                                       \
      while (made < count && (stacks[made] = (char *)map_stack()) != NULL) {                 \
        MAKE(&h[made], stacks[made] + REF_STACK);                                            \
        RESUME(&h[made]); /* first entry, not timed */                                       \
        made++;                                                                              \
      }                                                                                      \
    }                                                                                        \
    if (made == count && reps > 0 && reps <= 64) {                                           \
      long rounds = round_trips / count > 0 ? round_trips / count : 1;                       \
      for (int r = 0; r < reps; r++) {                                                       \
        double t0 = kb_now_ns();                                                             \
        for (long k = 0; k < rounds; k++)                                                    \
          for (int i = 0; i < count; i++) RESUME(&h[i]);                                     \
        v[r] = (double)rounds * count / ((kb_now_ns() - t0) / 1e9);                          \
      }                                                                                      \
      rate = kb_median(v, reps);                                                             \
    }                                                                                        \
    for (int i = 0; i < made; i++) munmap(stacks[i], REF_STACK); /* dropped mid-loop */     \
    free(h);                                                                                 \
    free(stacks);                                                                            \
    return rate;                                                                             \
  }

/* ---------------------------------------------------- Boost jump_fcontext */
#ifdef KO_BENCH_FCONTEXT
/* Boost.Context's C-linkage entry points (boost/context/detail/fcontext.hpp),
 * declared here as backends/boost/boost.c does. */
typedef void *fcontext_t;
typedef struct { fcontext_t fctx; void *data; } transfer_t;
extern transfer_t jump_fcontext(fcontext_t const to, void *vp);
extern fcontext_t make_fcontext(void *sp, size_t size, void (*fn)(transfer_t));

static void fc_body(transfer_t t) {
  for (;;) t = jump_fcontext(t.fctx, NULL);
}

static void fc_body_flags(transfer_t t) {
  kb_raise_inexact();
  fc_body(t);
}

double kb_ref_fcontext(long n, int flags_differ) {
  char *stack = (char *)map_stack();
  if (!stack) return -1;
  fcontext_t f = make_fcontext(stack + REF_STACK, REF_STACK, flags_differ ? fc_body_flags : fc_body);
  for (long i = 0; i < n / 10 + 1; i++) f = jump_fcontext(f, NULL).fctx;
  if (flags_differ) feclearexcept(FE_ALL_EXCEPT);
  double t0 = kb_now_ns();
  for (long i = 0; i < n; i++) f = jump_fcontext(f, NULL).fctx;
  double ns = (kb_now_ns() - t0) / (2.0 * (double)n);
  munmap(stack, REF_STACK);
  return ns;
}

/* The libkorutin table's unit with nothing but jump_fcontext. */
#define FC_MAKE(h, top) (*(h) = make_fcontext((top), REF_STACK, fc_body))
#define FC_RESUME(h) (*(h) = jump_fcontext(*(h), NULL).fctx)
KB_ROUND_ROBIN(kb_ref_fcontext_rr, FC_MAKE, FC_RESUME)
#else
double kb_ref_fcontext(long n, int flags_differ) { (void)n, (void)flags_differ; return -1; }
double kb_ref_fcontext_rr(int count, long round_trips, int reps) { (void)count, (void)round_trips, (void)reps; return -1; }
#endif

/* ------------------------------------------------------------- the floor */
#if defined(__x86_64__) && !defined(_WIN32) && !defined(__APPLE__)
/* floor_x86_64.S: a switch that keeps no FP state (see there). */
void *kb_floor_jump(void **save, void *to, void *value);
void *kb_floor_make(void *top, void (*entry)(void *), void *arg);

static void *floor_main; /* the resumer's saved stack pointer */

/* A context's body: `arg` is where its own stack pointer is kept. */
static void floor_body(void *arg) {
  void **self = (void **)arg;
  for (;;) kb_floor_jump(self, floor_main, NULL);
}

double kb_ref_floor(long n) {
  char *stack = (char *)map_stack();
  if (!stack) return -1;
  void *co = NULL;
  co = kb_floor_make(stack + REF_STACK, floor_body, &co);
  for (long i = 0; i < n / 10 + 1; i++) kb_floor_jump(&floor_main, co, NULL);
  double t0 = kb_now_ns();
  for (long i = 0; i < n; i++) kb_floor_jump(&floor_main, co, NULL);
  double ns = (kb_now_ns() - t0) / (2.0 * (double)n);
  munmap(stack, REF_STACK);
  return ns;
}

/* As kb_ref_fcontext_rr, with the floor's switch (a context keeps its
 * stack pointer in its handle slot). */
#define FLOOR_MAKE(h, top) (*(h) = kb_floor_make((top), floor_body, (h)))
#define FLOOR_RESUME(h) kb_floor_jump(&floor_main, *(h), NULL)
KB_ROUND_ROBIN(kb_ref_floor_rr, FLOOR_MAKE, FLOOR_RESUME)
#else
double kb_ref_floor(long n) { (void)n; return -1; }
double kb_ref_floor_rr(int count, long round_trips, int reps) { (void)count, (void)round_trips, (void)reps; return -1; }
#endif

/* ------------------------------------------------------------ swapcontext */
#ifdef KO_BENCH_UCONTEXT
#include <ucontext.h>

static ucontext_t uc_main, uc_co;

static void uc_body(void) {
  for (;;) swapcontext(&uc_co, &uc_main);
}

double kb_ref_swapcontext(long n) {
  char *stack = (char *)map_stack();
  if (!stack || getcontext(&uc_co) != 0) return -1;
  uc_co.uc_stack.ss_sp = stack;
  uc_co.uc_stack.ss_size = REF_STACK;
  uc_co.uc_link = NULL;
  makecontext(&uc_co, uc_body, 0);
  for (long i = 0; i < n / 10 + 1; i++) swapcontext(&uc_main, &uc_co);
  double t0 = kb_now_ns();
  for (long i = 0; i < n; i++) swapcontext(&uc_main, &uc_co);
  double ns = (kb_now_ns() - t0) / (2.0 * (double)n);
  munmap(stack, REF_STACK);
  return ns;
}
#else
double kb_ref_swapcontext(long n) { (void)n; return -1; }
#endif

/* ---------------------------------------------------------- futex handoff */
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

static _Atomic int flag_main, flag_peer, stop;

static void fx_wait(_Atomic int *f) {
  while (!atomic_exchange_explicit(f, 0, memory_order_acquire))
    syscall(SYS_futex, f, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
}

static void fx_post(_Atomic int *f) {
  atomic_store_explicit(f, 1, memory_order_release);
  syscall(SYS_futex, f, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void *fx_peer(void *arg) {
  (void)arg;
  for (;;) {
    fx_wait(&flag_peer);
    if (atomic_load(&stop)) return NULL;
    fx_post(&flag_main);
  }
}

double kb_ref_futex(long n) {
  pthread_t peer;
  atomic_store(&stop, 0);
  if (pthread_create(&peer, NULL, fx_peer, NULL) != 0) return -1;
  for (long i = 0; i < n / 10 + 1; i++) fx_post(&flag_peer), fx_wait(&flag_main);
  double t0 = kb_now_ns();
  for (long i = 0; i < n; i++) {
    fx_post(&flag_peer);
    fx_wait(&flag_main);
  }
  double ns = (kb_now_ns() - t0) / (2.0 * (double)n);
  atomic_store(&stop, 1);
  fx_post(&flag_peer);
  pthread_join(peer, NULL);
  return ns;
}
#else
double kb_ref_futex(long n) { (void)n; return -1; }
#endif

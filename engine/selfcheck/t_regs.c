/*
 * t_regs.c - callee-saved registers survive a switch.
 *
 * Both sides load their own known values into the callee-saved registers
 * (rbx, rbp, r12-r15 on x86-64 System V; rbx, rbp, rdi, rsi, r12-r15 on
 * Win64; ebx, esi, edi, ebp on Win32), with an asm helper (regs_x86_64.S;
 * regs_win.S on Windows), switch to the other side, which loads different values, and
 * check theirs when they are switched back to. Several rounds, each with
 * new values, so that a backend which restores stale state is caught too.
 *
 * registers: through ko_resume/ko_yield, as a program sees it.
 * registers-raw: through the backend's own make/jump, with nothing else in
 * between: the engine's functions save some of these registers themselves,
 * which would hide a switch that forgets them.
 */
#include "kt.h"
#include "backend.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <malloc.h>
#else
#include <sys/mman.h>
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define HAVE_VALGRIND_H 1
#endif
#endif

#if defined(_WIN64)
#define HAVE_REGS_HELPER 1
#define NREGS 8
static const char *const reg_names[NREGS] = {"rbx", "rbp", "rdi", "rsi", "r12", "r13", "r14", "r15"};
#elif defined(_WIN32) && defined(__i386__)
#define HAVE_REGS_HELPER 1
#define NREGS 4
static const char *const reg_names[NREGS] = {"ebx", "esi", "edi", "ebp"};
#elif defined(__x86_64__) && !defined(__APPLE__)
#define HAVE_REGS_HELPER 1
#define NREGS 6
static const char *const reg_names[NREGS] = {"rbx", "rbp", "r12", "r13", "r14", "r15"};
#endif

#ifdef HAVE_REGS_HELPER
typedef uintptr_t reg_t; /* one callee-saved register */
void kt_regs_call(const reg_t in[NREGS], reg_t out[NREGS], void *(*fn)(void *, void *, void *), void *a, void *b);
#endif

#define ROUNDS 8
#define SKIP_WHY "its register helper (regs_x86_64.S, regs_win.S) is for x86-64 System V and Windows only"

#ifdef HAVE_REGS_HELPER
static void fill(reg_t v[NREGS], uint64_t side, int round) {
  for (int i = 0; i < NREGS; i++) v[i] = (reg_t)kt_mix(side * 1000 + (uint64_t)round, (uint64_t)i) | 1;
}

static void compare(kt *t, const char *who, int round, const reg_t want[NREGS], const reg_t got[NREGS]) {
  for (int i = 0; i < NREGS; i++)
    KT_CHECK(t, got[i] == want[i], "%s, round %d: %s is 0x%016" PRIx64 ", want 0x%016" PRIx64, who,
             round, reg_names[i], (uint64_t)got[i], (uint64_t)want[i]);
}

/* ---- through the engine */

static void *do_resume(void *co, void *t, void *unused) {
  (void)unused;
  int err = ko_resume((ko_coro *)co, NULL, NULL);
  KT_CHECK((kt *)t, err == KO_OK, "ko_resume: %s", ko_strerror(err));
  return NULL;
}

static void *do_yield(void *a, void *b, void *unused) {
  (void)a, (void)b, (void)unused;
  return ko_yield(NULL);
}

static void *regs_body(ko_coro *co, void *arg) {
  (void)co;
  kt *t = (kt *)arg;
  for (int r = 0; r < ROUNDS; r++) {
    reg_t in[NREGS], out[NREGS];
    fill(in, 2, r);
    kt_regs_call(in, out, do_yield, NULL, NULL);
    compare(t, "coroutine", r, in, out);
  }
  return NULL;
}

static void registers(kt *t) {
  ko_coro *co = kt_create(t, regs_body, t, 0);
  if (!co) return;
  for (int r = 0; r <= ROUNDS; r++) {
    reg_t in[NREGS], out[NREGS];
    fill(in, 1, r);
    kt_regs_call(in, out, do_resume, co, t);
    compare(t, "resumer", r, in, out);
  }
  KT_CHECK(t, ko_status(co) == KO_DONE);
  ko_destroy(co);
}

/* ---- through the backend alone */

typedef struct raw {
  kt *t;
  const ko_backend *be;
  void *main_ctx, *co_ctx;
} raw;

static void raw_entry(void *p) {
  raw *r = (raw *)p;
  for (int round = 0; round < ROUNDS; round++) {
    reg_t in[NREGS], out[NREGS];
    fill(in, 2, round);
    kt_regs_call(in, out, r->be->yield, r->co_ctx, r->main_ctx);
    compare(r->t, "raw context", round, in, out);
  }
  for (;;) r->be->yield(r->co_ctx, r->main_ctx, NULL); /* an entry never returns */
}

static void registers_raw(kt *t) {
  const ko_backend *be = t->be;
  size_t ctx = (be->ctx_size + 15) & ~(size_t)15, size = 256 * 1024;
#ifdef _WIN32
  raw r = {t, be, _aligned_malloc(ctx, 16), _aligned_malloc(ctx, 16)};
  char *stack = (char *)VirtualAlloc(NULL, size, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
  if (!KT_CHECK(t, r.main_ctx && r.co_ctx && stack != NULL)) return;
#else
  raw r = {t, be, aligned_alloc(16, ctx), aligned_alloc(16, ctx)};
  char *stack = (char *)mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (!KT_CHECK(t, r.main_ctx && r.co_ctx && stack != MAP_FAILED)) return;
#endif
  memset(r.main_ctx, 0, ctx); /* a zero-filled context is a valid "back" one */
  memset(r.co_ctx, 0, ctx);
#ifdef HAVE_VALGRIND_H
  unsigned vg = VALGRIND_STACK_REGISTER(stack, stack + size - 1);
#endif
  int err = be->make(r.co_ctx, stack, size, raw_entry, &r);
  if (KT_CHECK(t, err == 0, "make: %d", err)) {
    for (int round = 0; round <= ROUNDS; round++) {
      reg_t in[NREGS], out[NREGS];
      fill(in, 1, round);
      kt_regs_call(in, out, be->resume, r.main_ctx, r.co_ctx);
      compare(t, "resumer", round, in, out);
    }
    if (be->destroy) be->destroy(r.co_ctx);
  }
#ifdef HAVE_VALGRIND_H
  VALGRIND_STACK_DEREGISTER(vg);
#endif
#ifdef _WIN32
  VirtualFree(stack, 0, MEM_RELEASE);
  _aligned_free(r.main_ctx);
  _aligned_free(r.co_ctx);
#else
  munmap(stack, size);
  free(r.main_ctx);
  free(r.co_ctx);
#endif
}
#else
static void registers(kt *t) { kt_skip(t, SKIP_WHY); }
static void registers_raw(kt *t) { kt_skip(t, SKIP_WHY); }
#endif

const kt_test kt_group_regs[] = {
  {"registers", registers},
  {"registers-raw", registers_raw},
  {NULL, NULL},
};
